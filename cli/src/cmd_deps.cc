// `kbatch deps BINARY`: the shared libraries a binary needs, found as ld.so would find them,
// without running the binary (ldd may execute it).

#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "kbatch/common/exit_codes.h"
#include "kbatch/image/deps.h"

namespace kbatch::cli {
namespace {

struct DepsOptions {
  std::string binary;
  bool json = false;
  std::optional<std::string> ld_library_path;
  std::vector<std::string> plugin_dirs;
  bool no_packages = false;
};

nlohmann::json toJson(const image::DependencyReport& report) {
  nlohmann::json libraries = nlohmann::json::array();
  for (const auto& library : report.libraries) {
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& link : library.symlink_chain) chain.push_back(link.string());
    libraries.push_back({
        {"name", library.name},
        {"soname", library.soname ? nlohmann::json(*library.soname) : nlohmann::json()},
        {"path", library.path ? nlohmann::json(library.path->string()) : nlohmann::json()},
        {"symlink_chain", chain},
        {"found_via", image::toString(library.found_via)},
        {"needed_by", library.needed_by},
        {"package", library.package ? nlohmann::json(*library.package) : nlohmann::json()},
        {"missing", library.missing()},
    });
  }
  nlohmann::json plugins = nlohmann::json::array();
  for (const auto& plugin : report.plugins) plugins.push_back(plugin.string());
  return {
      {"binary", report.binary.string()},
      {"kind", image::describeElfKind(report.binary_info)},
      {"static", report.statically_linked()},
      {"interpreter",
       report.interpreter ? nlohmann::json(report.interpreter->string()) : nlohmann::json()},
      {"libraries", libraries},
      {"plugins", plugins},
      {"missing", report.missingNames()},
  };
}

void printText(const image::DependencyReport& report) {
  std::printf("%s: %s", report.binary.c_str(), image::describeElfKind(report.binary_info).c_str());
  if (report.statically_linked()) {
    std::printf(", statically linked\n");
    return;
  }
  std::printf(", interpreter %s\n", report.interpreter ? report.interpreter->c_str() : "(none)");
  for (const auto& library : report.libraries) {
    if (library.missing()) {
      std::printf("  %s => not found (needed by %s)\n", library.name.c_str(),
                  library.needed_by.empty() ? "?" : library.needed_by.front().c_str());
      continue;
    }
    std::printf("  %s => %s (%s", library.name.c_str(), library.path->c_str(),
                image::toString(library.found_via));
    if (library.package) std::printf(", %s", library.package->c_str());
    std::printf(")\n");
  }
}

int runDeps(const DepsOptions& options) {
  image::DependencyOptions resolve;
  resolve.ld_library_path = options.ld_library_path;
  for (const auto& dir : options.plugin_dirs) resolve.plugin_dirs.emplace_back(dir);
  resolve.lookup_packages = !options.no_packages;
  auto report = image::resolveDependencies(options.binary, resolve);
  if (options.json) {
    std::printf("%s\n", toJson(report).dump(2).c_str());
  } else {
    printText(report);
  }
  // 1 tells scripts that something is missing, the way `policy check` reports a denial.
  return report.missingNames().empty() ? exit_code::kOk : exit_code::kDenied;
}

}  // namespace

KBATCH_REGISTER_COMMAND(deps, 60, [](CLI::App& app, const GlobalOptions&, int* exit_code) {
  auto options = std::make_shared<DepsOptions>();
  auto* command = app.add_subcommand(
      "deps",
      "List the shared libraries a binary needs, resolved as ld.so would, without running it "
      "(exit 1 if any is missing)");
  command->add_option("binary", options->binary, "Executable or shared library")->required();
  command->add_flag("--json", options->json, "Machine-readable output");
  command->add_option("--ld-library-path", options->ld_library_path,
                      "The job's LD_LIBRARY_PATH (kbatch's own environment is not used)");
  command->add_option("--plugin-dir", options->plugin_dirs,
                      "Directory of dlopen()ed plugins to include with their libraries")
      ->check(CLI::ExistingDirectory);
  command->add_flag("--no-packages", options->no_packages,
                    "Do not look up the package owning each library (dpkg -S)");
  command->callback([options, exit_code] { *exit_code = runDeps(*options); });
});

}  // namespace kbatch::cli
