// libFuzzer target for the directive parser and the rewriter. Properties checked on every input:
// no crash or hang; a script that needs no container comes back byte for byte; a rewritten script
// decodes to exactly the original body (the bytes after the header) and rewriting it again
// changes nothing; errors are ScriptError/Error, never anything else. The submit filter, failing
// open, with a policy check that refuses some images: it passes on the original or a complete
// rewritten script, or rejects with nothing on stdout; a refused job is never passed on.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kbatch/rewrite/job_spec_json.h"
#include "kbatch/rewrite/parser.h"
#include "kbatch/rewrite/rewriter.h"
#include "kbatch/rewrite/submit.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  kbatch::rewrite::ParseOptions options;
  options.file_name = "fuzz.pbs";
  kbatch::rewrite::RewriteOptions rewrite_options;
  rewrite_options.kbatch_path = "/usr/bin/kbatch";
  try {
    kbatch::rewrite::ScriptLayout layout;
    kbatch::JobSpec spec = kbatch::rewrite::parseJobScript(input, options, &layout);
    check(layout.body_offset <= input.size());
    (void)kbatch::rewrite::jobSpecToJson(spec);

    auto result = kbatch::rewrite::rewriteJobScript(input, options, rewrite_options);
    if (!result.rewritten) {
      check(result.script == input);
      return 0;
    }
    auto decoded = kbatch::rewrite::decodeRewrittenScript(result.script);
    check(decoded.has_value());
    check(decoded->body == input.substr(layout.body_offset));
    auto again = kbatch::rewrite::rewriteJobScript(result.script, options, rewrite_options);
    check(!again.rewritten && again.script == result.script);
  } catch (const kbatch::Error&) {
    // Malformed scripts are refused with a message; that is the expected outcome for most inputs.
  }

  kbatch::rewrite::SubmitFilterOptions filter;
  filter.on_error = kbatch::rewrite::FailureMode::kOpen;
  filter.rewrite = rewrite_options;
  bool refused = false;
  filter.check_job = [&refused](const kbatch::JobSpec& job) {
    if (job.image && job.image->find("deny") != std::string::npos) {
      refused = true;
      throw kbatch::rewrite::JobRefused("submit job", "fuzz", "refused by the site policy: x");
    }
  };
  auto filtered = kbatch::rewrite::runSubmitFilter(input, {}, filter);
  if (filtered.exit_code != 0) {
    check(filtered.output.empty());
    return 0;
  }
  check(!refused);
  if (filtered.output != input) {
    check(kbatch::rewrite::decodeRewrittenScript(filtered.output).has_value());
  }
  return 0;
}
