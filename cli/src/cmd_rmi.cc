// `kbatch rmi NAME...`: remove image tags (and their unpacked roots when no other tag needs them).

#include <cstdio>
#include <memory>

#include "command.h"
#include "image_site.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {
namespace {

int runRmi(const std::vector<std::string>& names) {
  image::ImageStore store = openSiteImageStore();
  int status = exit_code::kOk;
  for (const auto& name : names) {
    if (store.removeTag(name)) {
      std::printf("removed %s\n", name.c_str());
    } else {
      std::fprintf(stderr, "kbatch: remove image '%s': no such image in %s\n", name.c_str(),
                   store.root().c_str());
      status = exit_code::kNotFound;
    }
  }
  return status;
}

}  // namespace

KBATCH_REGISTER_COMMAND(rmi, 43, [](CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto* command = app.add_subcommand(
      "rmi", "Remove images from the store (blobs are freed by `kbatch prune`)");
  command->add_option("names", *names, "Names or digests from `kbatch images`")->required();
  command->callback([names, exit_code] { *exit_code = runRmi(*names); });
});

}  // namespace kbatch::cli
