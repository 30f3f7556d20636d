// `kbatch prune`: free blobs and roots that no tag reaches, and leftovers of interrupted pulls.

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "image_site.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {
namespace {

int runPrune(bool json) {
  image::ImageStore store = openSiteImageStore();
  image::PruneReport report = store.prune();
  if (json) {
    nlohmann::json document = {{"blobs_removed", report.blobs_removed},
                               {"roots_removed", report.roots_removed},
                               {"temporaries_removed", report.temporaries_removed},
                               {"roots_in_use", report.roots_in_use},
                               {"bytes_freed", report.bytes_freed}};
    std::printf("%s\n", document.dump(2).c_str());
  } else {
    std::printf("removed %llu blob(s), %llu unpacked root(s), %llu leftover(s); freed %llu bytes\n",
                static_cast<unsigned long long>(report.blobs_removed),
                static_cast<unsigned long long>(report.roots_removed),
                static_cast<unsigned long long>(report.temporaries_removed),
                static_cast<unsigned long long>(report.bytes_freed));
    if (report.roots_in_use > 0) {
      std::printf("kept %llu unpacked root(s) that running jobs use; prune again after them\n",
                  static_cast<unsigned long long>(report.roots_in_use));
    }
  }
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(prune, 44, [](CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto json = std::make_shared<bool>(false);
  auto* command = app.add_subcommand(
      "prune", "Remove unreferenced blobs and unpacked roots (waits for running pulls)");
  command->add_flag("--json", *json, "Machine-readable output");
  command->callback([json, exit_code] { *exit_code = runPrune(*json); });
});

}  // namespace kbatch::cli
