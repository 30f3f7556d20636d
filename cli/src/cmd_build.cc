// `kbatch build --from-binary BINARY`: the paper's dependency image, built from the binary's
// resolved shared libraries (closure), from distribution packages (packages), or both (auto),
// into the image store as an OCI image (base layers + one dependency layer) tagged by the hash of
// its inputs; `--tag` names it, `--push` sends it to a registry so that other nodes pull it
// instead of rebuilding, `--json` tells the submit filter what to pin in the job script.

#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "image_site.h"
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
  bool json = false;
  std::vector<std::string> extra;
  std::string shell = "/bin/sh";
  std::optional<std::string> ld_library_path;
  std::vector<std::string> plugin_dirs;
};

/// `--push docker://HOST/REPO` without a tag is tagged with the image key, so that every
/// dependency image keeps its own tag in the site registry instead of moving `latest`.
std::string pushDestination(const std::string& text, const std::string& key) {
  std::string rest = text.rfind("docker://", 0) == 0 ? text.substr(9) : text;
  std::string last = rest.substr(rest.find('/') == std::string::npos ? 0 : rest.rfind('/') + 1);
  bool has_tag_or_digest = last.find(':') != std::string::npos || last.find('@') != std::string::npos;
  return has_tag_or_digest ? text : text + ":" + key;
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
  log::info("{} dependency image {} ({}, {})", built.reused ? "reused" : "built",
            built.key.substr(0, 12), image::toString(built.strategy), built.manifest_digest);

  image::ImageStore store(image::dependencyCacheRoot());
  std::string reference = built.store_name;
  if (options.tag) {
    store.tag(*options.tag, built.manifest_digest,
              "kbatch build --from-binary " + options.binary);
    log::info("tagged {} in the image store", *options.tag);
    reference = *options.tag;
  }
  nlohmann::json pushed = nullptr;
  if (options.push) {
    image::RegistryOptions registry;
    registry.insecure = options.insecure;
    applySiteRegistrySettings(registry);
    registry.quiet = globals.quiet || options.json;
    std::string destination = pushDestination(*options.push, built.key);
    auto result = image::pushImage(store, built.manifest_digest,
                                   image::parseDockerReference(destination), registry);
    log::info("pushed {} ({} blobs uploaded, {} already there)", destination,
              result.blobs_uploaded, result.blobs_skipped + result.blobs_mounted);
    reference = destination;
    pushed = {{"destination", destination},
              {"blobs_uploaded", result.blobs_uploaded},
              {"blobs_skipped", result.blobs_skipped},
              {"blobs_mounted", result.blobs_mounted}};
  }
  if (options.json) {
    nlohmann::json answer = {{"reference", reference},
                             {"digest", built.manifest_digest},
                             {"root", built.rootfs.string()},
                             {"cached", built.reused},
                             {"key", built.key},
                             {"strategy", image::toString(built.strategy)},
                             {"layers", built.layers},
                             {"packages", built.packages},
                             {"pushed", pushed}};
    std::printf("%s\n", answer.dump(2).c_str());
    return exit_code::kOk;
  }
  std::printf("%s\n", built.rootfs.c_str());
  if (options.tag || options.push) std::printf("%s\n", built.manifest_digest.c_str());
  return exit_code::kOk;
}

}  // namespace

KBATCH_REGISTER_COMMAND(build, 50, [](CLI::App& app, const GlobalOptions& globals, int* exit_code) {
  auto options = std::make_shared<BuildOptions>();
  auto* command = app.add_subcommand(
      "build",
      "Build a dependency image for a binary into the image store. Prints the image's root "
      "filesystem (and its manifest digest with --tag or --push), or with --json: reference, "
      "digest, root, cached, key, strategy, layers, packages, pushed");
  command->add_option("--from-binary", options->binary, "The job's executable")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--strategy", options->strategy,
                      "closure: copy libraries from this host; packages: install their Debian "
                      "packages with mmdebstrap; auto: packages, copying what no package provides")
      ->check(CLI::IsMember({"closure", "packages", "auto"}))
      ->capture_default_str();
  command->add_option("--base", options->base,
                      "Image or root filesystem whose layers come first; default: none (closure), "
                      "this machine's Debian minbase (packages)");
  command->add_option("--tag", options->tag, "Also name the image NAME in the image store");
  command->add_option("--push", options->push,
                      "Push the image to a registry: docker://HOST/REPO[:TAG] (no tag: the image "
                      "key)");
  command->add_flag("--insecure", options->insecure,
                    "Plain HTTP for --push (only to loopback and the site's insecure registries)");
  command->add_flag("--json", options->json, "Print the result as JSON");
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
