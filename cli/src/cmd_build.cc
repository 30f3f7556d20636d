// `kbatch build --from-binary BINARY`: the paper's dependency image, built from the binary's
// resolved shared libraries (closure), from distribution packages (packages), or both (auto).
// The root filesystem is cached by the hash of its inputs; `--tag` also imports it into the OCI
// store and `--push` sends it to a registry, so that other nodes pull it instead of rebuilding.

#include <cstdio>

#include "command.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/common/log.h"
#include "kbatch/image/dependency_image.h"
#include "kbatch/image/reference.h"
#include "kbatch/image/registry.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {
namespace {

struct BuildOptions {
  std::string binary;
  std::string strategy = "closure";
  std::optional<std::string> base;
  std::optional<std::string> tag;
  std::optional<std::string> push;
  bool insecure = false;
  std::vector<std::string> extra;
  std::string shell = "/bin/sh";
  std::optional<std::string> ld_library_path;
  std::vector<std::string> plugin_dirs;
};

/// Imports the root into the OCI store as a one-layer image (tagged when --tag is given).
image::ImageRecord importIntoStore(const image::DependencyImage& built, const BuildOptions& options,
                                   image::ImageStore& store) {
  image::NewImageRequest request;
  request.layers = {built.rootfs};
  request.config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  request.config.labels = {{"org.kbatch.dependency-key", built.key},
                           {"org.kbatch.strategy", image::toString(built.strategy)},
                           {"org.kbatch.binary", options.binary}};
  request.tag = options.tag.value_or("");
  request.source = "kbatch build --from-binary " + options.binary;
  return store.createImage(request);
}

int runBuild(const BuildOptions& options, const GlobalOptions& globals) {
  image::DependencyImageRequest request;
  request.binary = options.binary;
  request.shell = options.shell;
  for (const auto& extra : options.extra) request.extra_paths.emplace_back(extra);
  request.strategy = image::parseDependencyStrategy(options.strategy, "--strategy");
  request.base = options.base;
  request.ld_library_path = options.ld_library_path;
  for (const auto& dir : options.plugin_dirs) request.plugin_dirs.emplace_back(dir);
  request.quiet = globals.quiet;
  auto built = image::buildDependencyImageDetailed(request);
  log::info("{} dependency image {} ({})", built.reused ? "reused" : "built",
            built.key.substr(0, 12), image::toString(built.strategy));
  std::printf("%s\n", built.rootfs.c_str());
  if (!options.tag && !options.push) return exit_code::kOk;

  image::ImageStore store(image::defaultStoreRoot());
  auto record = importIntoStore(built, options, store);
  if (options.tag) log::info("tagged {} in the image store", *options.tag);
  if (options.push) {
    image::RegistryOptions registry;
    registry.insecure = options.insecure;
    registry.quiet = globals.quiet;
    auto pushed = image::pushImage(store, record.manifest_digest,
                                   image::parseDockerReference(*options.push), registry);
    log::info("pushed {} ({} blobs uploaded, {} already there)", *options.push,
              pushed.blobs_uploaded, pushed.blobs_skipped + pushed.blobs_mounted);
  }
  std::printf("%s\n", record.manifest_digest.c_str());
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(build, 50, [](CLI::App& app, const GlobalOptions& globals, int* exit_code) {
  auto options = std::make_shared<BuildOptions>();
  auto* command = app.add_subcommand(
      "build",
      "Build a dependency image for a binary. Prints the image's root filesystem, then its "
      "manifest digest when --tag or --push put it into the image store");
  command->add_option("--from-binary", options->binary, "The job's executable")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--strategy", options->strategy,
                      "closure: copy libraries from this host; packages: install their Debian "
                      "packages with mmdebstrap; auto: packages, copying what no package provides")
      ->check(CLI::IsMember({"closure", "packages", "auto"}))
      ->capture_default_str();
  command->add_option("--base", options->base,
                      "Root filesystem (or image) to put the closure on; default: an empty root");
  command->add_option("--tag", options->tag, "Store the image in the image store under this name");
  command->add_option("--push", options->push,
                      "Push the image to a registry (docker://HOST/REPO:TAG)");
  command->add_flag("--insecure", options->insecure,
                    "Plain HTTP for --push (only to the site's insecure registries)");
  command->add_option("--extra", options->extra, "Extra file, directory or tool to include");
  command->add_option("--shell", options->shell, "The job script's shell (always included)")
      ->capture_default_str();
  command->add_option("--ld-library-path", options->ld_library_path,
                      "The job's LD_LIBRARY_PATH, used to resolve libraries");
  command->add_option("--plugin-dir", options->plugin_dirs,
                      "Directory of dlopen()ed plugins to include with their libraries")
      ->check(CLI::ExistingDirectory);
  command->callback([options, &globals, exit_code] { *exit_code = runBuild(*options, globals); });
});

}  // namespace kbatch::cli
