#include "submit_site.h"

#include <filesystem>
#include <system_error>

#include "kbatch/policy/policy.h"
#include "site_policy.h"

namespace kbatch::cli {

rewrite::FailureMode siteSubmitFilterMode() {
  return sitePolicy().submit_filter_mode == policy::SubmitFilterMode::kFailOpen
             ? rewrite::FailureMode::kOpen
             : rewrite::FailureMode::kClosed;
}

rewrite::BinaryDetector siteBinaryDetector(bool forced, const std::string& kbatch_path) {
  rewrite::DetectOptions options;
  options.kbatch_path = kbatch_path;
  std::error_code error;
  options.submit_directory = std::filesystem::current_path(error);
  options.enabled = [forced] {
    const policy::Policy& site = sitePolicy();
    bool any_missing = !site.compute_nodes.missing_libraries.empty();
    for (const auto& overlay : site.also_required) {
      any_missing = any_missing || !overlay.compute_nodes.missing_libraries.empty();
    }
    return (forced || site.submit_filter_detect) && any_missing;
  };
  options.node_lacks = [](const std::string& library, std::string* why) {
    const policy::LibraryPattern* pattern = policy::findMissingLibrary(sitePolicy(), library);
    if (pattern == nullptr) return false;
    *why = "compute_nodes.missing_libraries '" + pattern->glob + "' at " + pattern->where.toString();
    return true;
  };
  return rewrite::makeBinaryDetector(std::move(options));
}

}  // namespace kbatch::cli
