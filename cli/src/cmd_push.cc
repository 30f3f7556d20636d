// `kbatch push LOCALREF docker://...`: upload an image, skipping blobs the registry has.

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

struct PushCommandOptions {
  std::string source;
  std::string destination;
  bool insecure = false;
  bool json = false;
};

int runPush(const PushCommandOptions& options, const GlobalOptions& globals) {
  image::ImageReference destination = image::parseDockerReference(options.destination);
  image::ImageStore store = openSiteImageStore();
  image::RegistryOptions registry;
  registry.insecure = options.insecure;
  applySiteRegistrySettings(registry);
  registry.quiet = globals.quiet || options.json;
  image::PushResult result = image::pushImage(store, options.source, destination, registry);
  if (options.json) {
    nlohmann::json document = {{"destination", destination.toString()},
                               {"manifest", result.manifest_digest},
                               {"blobs_uploaded", result.blobs_uploaded},
                               {"blobs_skipped", result.blobs_skipped},
                               {"blobs_mounted", result.blobs_mounted},
                               {"bytes_uploaded", result.bytes_uploaded}};
    std::printf("%s\n", document.dump(2).c_str());
  } else {
    std::printf("%s %s\n", destination.toString().c_str(), result.manifest_digest.c_str());
  }
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(push, 41, [](CLI::App& app, const GlobalOptions& globals, int* exit_code) {
  auto options = std::make_shared<PushCommandOptions>();
  auto* command = app.add_subcommand(
      "push", "Upload an image to a registry (blobs it already has are skipped)");
  command->add_option("source", options->source,
                      "A name or digest from `kbatch images`, oci:DIR[:TAG], oci-archive:FILE, or a "
                      "root filesystem directory (pushed as a one-layer image)")
      ->required();
  command->add_option("destination", options->destination, "docker://HOST[:PORT]/REPO[:TAG]")
      ->required();
  command->add_flag("--insecure", options->insecure,
                    "Use plain HTTP; honoured only for loopback registries and the hosts in the site "
                    "policy's site.insecure_registries");
  command->add_flag("--json", options->json, "Machine-readable result on stdout");
  command->callback([options, &globals, exit_code] { *exit_code = runPush(*options, globals); });
});

}  // namespace kbatch::cli
