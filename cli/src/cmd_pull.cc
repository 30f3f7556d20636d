// `kbatch pull REF`: fetch an image into the store (only the blobs it lacks) and unpack it.

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "image_site.h"
#include "kbatch/common/error.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/registry.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {
namespace {

struct PullCommandOptions {
  std::string reference;
  bool insecure = false;
  bool no_unpack = false;
  bool json = false;
  std::string max_unpacked_bytes;
};

int runPull(const PullCommandOptions& options, const GlobalOptions& globals) {
  image::ImageReference reference = image::parseImageReference(options.reference);
  image::ImageStore store = openSiteImageStore();
  image::PullOptions pull;
  pull.insecure = options.insecure;
  applySiteRegistrySettings(pull);
  pull.quiet = globals.quiet || options.json;
  pull.unpack = !options.no_unpack;
  pull.unpack_options.max_unpacked_bytes = options.max_unpacked_bytes.empty() ? 0 : image::parseByteSize(options.max_unpacked_bytes, "--max-unpacked-bytes");
  image::PullResult result = image::pullImage(store, reference, pull);
  if (options.json) {
    nlohmann::json document = {{"name", result.record.name},
                               {"manifest", result.record.manifest_digest},
                               {"rootfs", result.rootfs.string()},
                               {"blobs_downloaded", result.blobs_downloaded},
                               {"blobs_present", result.blobs_present},
                               {"bytes_downloaded", result.bytes_downloaded}};
    std::printf("%s\n", document.dump(2).c_str());
  } else {
    std::printf("%s %s\n", result.record.name.c_str(), result.record.manifest_digest.c_str());
    if (!result.rootfs.empty()) std::printf("rootfs %s\n", result.rootfs.c_str());
  }
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(pull, 40, [](CLI::App& app, const GlobalOptions& globals, int* exit_code) {
  auto options = std::make_shared<PullCommandOptions>();
  auto* command = app.add_subcommand(
      "pull", "Fetch an image into the local store (only missing layers) and unpack it");
  command->add_option("reference", options->reference,
                      "docker://HOST[:PORT]/REPO[:TAG|@sha256:...], oci:DIR[:TAG], "
                      "oci-archive:FILE[:TAG] or a root filesystem directory")
      ->required();
  command->add_flag("--insecure", options->insecure,
                    "Use plain HTTP; honoured only for loopback registries and the hosts in the site "
                    "policy's site.insecure_registries");
  command->add_flag("--no-unpack", options->no_unpack, "Store the blobs but do not unpack");
  command->add_option("--max-unpacked-bytes", options->max_unpacked_bytes,
                      "Refuse to unpack more than this (e.g. 20G); default "
                      "$KBATCH_MAX_UNPACKED_BYTES or 32G");
  command->add_flag("--json", options->json, "Machine-readable result on stdout");
  command->callback([options, &globals, exit_code] { *exit_code = runPull(*options, globals); });
});

}  // namespace kbatch::cli
