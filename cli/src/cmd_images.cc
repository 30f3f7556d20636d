// `kbatch images`: the images in the store (and the site cache), as a table or JSON.

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "image_site.h"
#include "kbatch/common/bytes.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {
namespace {

int runImages(bool json) {
  image::ImageStore store = openSiteImageStore();
  auto records = store.listImages();
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& record : records) {
      auto root = store.findUnpackedRoot(record.manifest_digest);
      list.push_back({{"name", record.name},
                      {"manifest", record.manifest_digest},
                      {"size", record.size},
                      {"created", record.created},
                      {"source", record.source},
                      {"site_cache", record.from_site_cache},
                      {"rootfs", root ? nlohmann::json(root->string()) : nlohmann::json()}});
    }
    std::printf("%s\n", list.dump(2).c_str());
    return exit_code::kOk;
  }
  size_t width = 4;
  for (const auto& record : records) width = std::max(width, record.name.size());
  std::printf("%-*s  %-12s  %10s  %-8s  %s\n", static_cast<int>(width), "NAME", "DIGEST", "SIZE",
              "UNPACKED", "CREATED");
  for (const auto& record : records) {
    bool unpacked = store.findUnpackedRoot(record.manifest_digest).has_value();
    std::printf("%-*s  %-12s  %10s  %-8s  %s%s\n", static_cast<int>(width), record.name.c_str(),
                record.manifest_digest.substr(7, 12).c_str(), formatBytes(record.size).c_str(),
                unpacked ? "yes" : "no", record.created.c_str(),
                record.from_site_cache ? "  (site cache)" : "");
  }
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(images, 42, [](CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto json = std::make_shared<bool>(false);
  auto* command = app.add_subcommand("images", "List the images in the local store");
  command->add_flag("--json", *json, "Machine-readable output");
  command->callback([json, exit_code] { *exit_code = runImages(*json); });
});

}  // namespace kbatch::cli
