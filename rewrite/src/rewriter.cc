#include "kbatch/rewrite/rewriter.h"

#include <cctype>
#include <filesystem>
#include <system_error>
#include <vector>

#include "directive_words.h"
#include "kbatch/common/base64.h"
#include "kbatch/rewrite/encoding.h"

namespace kbatch::rewrite {
namespace {

constexpr std::string_view kFromBinaryDirective = "#KBATCH --from-binary ";

bool isBlank(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

/// The cpus the job asks for on its node: ppn (or procs) times Slurm's cpus-per-task.
std::optional<std::uint64_t> requestedCpus(const Resources& resources) {
  std::optional<std::uint64_t> cpus;
  if (resources.ppn) cpus = static_cast<std::uint64_t>(*resources.ppn);
  else if (resources.procs && resources.nodes.value_or(1) <= 1) cpus = static_cast<std::uint64_t>(*resources.procs);
  if (resources.cpus_per_task) cpus = cpus.value_or(1) * static_cast<std::uint64_t>(*resources.cpus_per_task);
  return cpus;
}

/// The shell words of `kbatch exec ... -- <SHELL>`: a shebang's interpreter takes at most one
/// argument, as the kernel passes it ("#!/bin/bash -l -x" -> "/bin/bash" "-l -x").
std::vector<std::string> shellWords(const std::string& shell) {
  std::string_view text = shell;
  while (!text.empty() && isBlank(text.front())) text.remove_prefix(1);
  std::size_t blank = 0;
  while (blank < text.size() && !isBlank(text[blank])) ++blank;
  std::vector<std::string> words{std::string(text.substr(0, blank))};
  std::string_view argument = text.substr(blank);
  while (!argument.empty() && isBlank(argument.front())) argument.remove_prefix(1);
  while (!argument.empty() && isBlank(argument.back())) argument.remove_suffix(1);
  if (!argument.empty()) words.emplace_back(argument);
  return words;
}

std::string buildExecLine(const JobSpec& spec, const std::string& kbatch_path,
                          const std::string& delimiter,
                          const std::optional<std::string>& dependency_image) {
  std::string line = "exec " + quoteShellWord(kbatch_path) + " exec --job-body=base64";
  auto add = [&line](std::string_view flag, std::string_view value) {
    line += ' ';
    line += flag;
    line += ' ';
    line += quoteShellWord(value);
  };
  if (spec.image) add("--image", *spec.image);
  else if (dependency_image) add("--image", *dependency_image);
  if (!spec.image && spec.binary) add("--from-binary", *spec.binary);
  if (spec.backend) add("--backend", toString(*spec.backend));
  for (const auto& bind : spec.binds) {
    add("--bind", bind.source + ":" + bind.destination + (bind.read_only ? ":ro" : ""));
  }
  for (const auto& [key, value] : spec.env) add("--env", key + "=" + value);
  const Resources& resources = spec.resources;
  auto cpus = requestedCpus(resources);
  if (cpus) add("--cpus", std::to_string(*cpus));
  if (resources.mem_bytes) {
    add("--memory", std::to_string(*resources.mem_bytes));
  } else if (resources.pmem_bytes) {
    add("--memory", std::to_string(*resources.pmem_bytes * cpus.value_or(1)));
  }
  if (resources.walltime_s) add("--walltime", std::to_string(*resources.walltime_s));
  if (resources.gpus) add("--gpus", std::to_string(*resources.gpus));
  line += " --";
  for (const auto& word : shellWords(jobShell(spec))) line += ' ' + quoteShellWord(word);
  line += " <<'" + delimiter + "'";
  return line;
}

/// Removes every -B (and its value) from a #PBS directive's option text, as getopt would find
/// them; returns the text left and the binaries removed.
std::string removeBinaryOptions(std::string_view text, std::vector<std::string>* binaries) {
  std::string problem;
  auto words = detail::splitDirectiveWords(text, &problem, detail::QuoteRule::kKeepQuotes);
  if (!words) return std::string(text);  // the parser accepted it, so this cannot happen
  constexpr std::string_view kWithValue = "aAbcCdDeFjJklmMNopPqrStTuvwWB";
  constexpr std::string_view kFlags = "EfhInVXxz";
  std::string kept;
  std::size_t copied = 0;  // text before this offset is settled
  for (std::size_t i = 0; i < words->size(); ++i) {
    const auto& word = (*words)[i];
    if (word.text.size() < 2 || word.text[0] != '-' || word.text[1] == '-') break;
    bool stop = false;
    for (std::size_t c = 1; c < word.text.size(); ++c) {
      char option = word.text[c];
      if (kWithValue.find(option) != std::string_view::npos) {
        std::size_t last = i;
        std::string value = word.text.substr(c + 1);
        if (value.empty() && i + 1 < words->size()) value = (*words)[++last].text;
        if (option == 'B') {
          binaries->push_back(detail::stripEnclosingQuotes(value));
          kept.append(text.substr(copied, word.begin - copied));
          if (c > 1) kept.append(word.text.substr(0, c));  // the flags bundled before -B
          copied = (*words)[last].end;
        }
        i = last;
        break;
      }
      if (kFlags.find(option) == std::string_view::npos) {
        stop = true;  // unknown option: the rest is not qsub's to interpret
        break;
      }
    }
    if (stop) break;
  }
  kept.append(text.substr(copied));
  return kept;
}

/// The header with every #PBS -B turned into `#KBATCH --from-binary` (stock qsub refuses -B).
std::string convertBinaryDirectives(std::string_view header, const JobSpec& spec) {
  std::string result;
  std::size_t copied = 0;
  for (const auto& directive : spec.directives) {
    if (directive.source != DirectiveSource::kPbs || directive.option != "-B") continue;
    // Each directive line is converted once, however many -B it holds; its raw text starts at
    // the beginning of its line, which lies after everything already copied.
    std::size_t line_start = 0;
    int line = 1;
    for (std::size_t pos = 0; pos < header.size() && line < directive.line; ++pos) {
      if (header[pos] == '\n') {
        ++line;
        line_start = pos + 1;
      }
    }
    if (line_start < copied || header.substr(line_start, directive.raw.size()) != directive.raw) {
      continue;
    }
    std::string_view raw = header.substr(line_start, directive.raw.size());
    std::size_t indent = 0;
    while (indent < raw.size() && isBlank(raw[indent])) ++indent;
    std::string_view leading = raw.substr(0, indent);
    std::string options(raw.substr(indent + directive.prefix.size()));
    // Continuation lines are only layout: join them ("\\\n" and "\\\r\n" vanish).
    for (std::size_t pos; (pos = options.find("\\\n")) != std::string::npos;) options.erase(pos, 2);
    for (std::size_t pos; (pos = options.find("\\\r\n")) != std::string::npos;) options.erase(pos, 3);
    std::vector<std::string> binaries;
    std::string rest = removeBinaryOptions(options, &binaries);
    std::string replacement;
    bool rest_is_blank = true;
    for (char c : rest) rest_is_blank = rest_is_blank && isBlank(c);
    if (!rest_is_blank) replacement = std::string(leading) + directive.prefix + rest;
    for (const auto& binary : binaries) {
      if (!replacement.empty()) replacement += '\n';
      replacement += std::string(leading) + std::string(kFromBinaryDirective) +
                     quoteShellWord(binary);
    }
    result.append(header.substr(copied, line_start - copied));
    result += replacement;
    copied = line_start + raw.size();
  }
  result.append(header.substr(copied));
  return result;
}

}  // namespace

std::string jobShell(const JobSpec& spec) {
  if (spec.shell && !spec.shell->empty()) return *spec.shell;
  return "/bin/sh";
}

std::string currentExecutablePath() {
  std::error_code error;
  auto path = std::filesystem::canonical("/proc/self/exe", error);
  if (error) {
    throw Error("find the kbatch executable", "/proc/self/exe", error.message(),
                "pass --kbatch-path");
  }
  return path.string();
}

std::string defaultKbatchPath() {
  const std::filesystem::path self = currentExecutablePath();
  const std::filesystem::path directory = self.parent_path();
  std::vector<std::filesystem::path> candidates = {directory / "kbatch"};
  if (self.filename() == "kbatch-full") {
    // The helper lives in <prefix>/libexec/kbatch/ (or <build>/libexec/kbatch/); jobs must call
    // the user-facing <prefix>/bin/kbatch (or <build>/kbatch), never the helper itself.
    const std::filesystem::path prefix = directory.parent_path().parent_path();
    candidates.push_back(prefix / "bin" / "kbatch");
    candidates.push_back(prefix / "kbatch");
  }
  std::error_code error;
  for (const auto& candidate : candidates) {
    if (std::filesystem::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
  }
  return self.string();
}

RewriteResult rewriteJobScript(std::string_view content, const ParseOptions& parse_options,
                               const RewriteOptions& rewrite_options) {
  RewriteResult result;
  ScriptLayout layout;
  result.spec = parseJobScript(content, parse_options, &layout);
  if (layout.has_rewrite_marker) {
    // Rewriting is idempotent, but only for an intact rewritten script: a damaged one is refused.
    if (decodeRewrittenScript(content, parse_options.file_name)) {
      result.script = std::string(content);
      result.already_rewritten = true;
      return result;
    }
  }
  if (!result.spec.needs_container && rewrite_options.detect_binary) {
    if (auto binary = rewrite_options.detect_binary(result.spec,
                                                    content.substr(layout.body_offset))) {
      result.detected_binary = *binary;
      result.spec.binary = *binary;
      result.spec.needs_container = true;
    }
  }
  if (!result.spec.needs_container) {
    result.script = std::string(content);
    return result;
  }
  if (rewrite_options.kbatch_path.empty() || rewrite_options.kbatch_path[0] != '/') {
    throw Error("rewrite job script", parse_options.file_name,
                "the kbatch path '" + rewrite_options.kbatch_path + "' is not absolute",
                "compute nodes run it from the rewritten script; pass an absolute --kbatch-path");
  }
  std::string_view header = content.substr(0, layout.body_offset);
  std::string_view body = content.substr(layout.body_offset);
  const std::string digest = sha256Hex(body);
  const std::string delimiter = std::string(kBodyDelimiterPrefix) + digest.substr(0, 16);

  std::string& out = result.script;
  out.reserve(header.size() + body.size() * 4 / 3 + body.size() / 57 + 512);
  out = convertBinaryDirectives(header, result.spec);
  if (!out.empty() && out.back() != '\n') out += '\n';
  // A -B from kbatch qsub's command line is recorded too, so the script describes its job.
  for (const auto& directive : result.spec.directives) {
    if (directive.source == DirectiveSource::kCommandLine && directive.option == "-B") {
      out += std::string(kFromBinaryDirective) + quoteShellWord(directive.value) + "\n";
    }
  }
  if (result.detected_binary) {
    out += std::string(kFromBinaryDirective) + quoteShellWord(*result.detected_binary) + "\n";
  }
  out += std::string(kRewriteMarker) + digest + "\n";
  // -B: the dependency image is built once, here, and pinned by digest.
  if (!result.spec.image && result.spec.binary && rewrite_options.build_dependency_image) {
    result.dependency_image = rewrite_options.build_dependency_image(result.spec);
  }
  out += buildExecLine(result.spec, rewrite_options.kbatch_path, delimiter,
                       result.dependency_image) + "\n";
  out += encodeBase64(body, 76);
  out += delimiter + "\n";
  result.rewritten = true;
  return result;
}

std::optional<RewrittenScript> decodeRewrittenScript(std::string_view script,
                                                     std::string_view file_name) {
  auto damaged = [&](int line, const std::string& problem) {
    return ScriptError("read rewritten job script",
                       std::string(file_name) + ":" + std::to_string(line),
                       problem + " (expected the layout kbatch rewrite writes)",
                       "rewrite the original script again");
  };
  std::size_t pos = 0;
  int line_number = 0;
  auto nextLine = [&](std::string_view* line) {
    if (pos >= script.size()) return false;
    std::size_t newline = script.find('\n', pos);
    std::size_t stop = newline == std::string_view::npos ? script.size() : newline;
    *line = script.substr(pos, stop - pos);
    pos = newline == std::string_view::npos ? script.size() : newline + 1;
    ++line_number;
    return true;
  };
  std::string_view line;
  std::size_t marker_offset = 0;
  bool found = false;
  while (true) {
    std::size_t line_offset = pos;
    if (!nextLine(&line)) break;
    // The whole script is searched: directive continuation lines and -C prefixes make "the
    // header" something only the parser knows, and a rewritten script has no raw body anyway.
    if (line.substr(0, kRewriteMarker.size()) == kRewriteMarker) {
      marker_offset = line_offset;
      found = true;
      break;
    }
  }
  if (!found) return std::nullopt;

  RewrittenScript decoded;
  decoded.header = std::string(script.substr(0, marker_offset));
  decoded.body_sha256 = std::string(line.substr(kRewriteMarker.size()));
  if (decoded.body_sha256.size() != 64 ||
      decoded.body_sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw damaged(line_number, "the marker's sha256 is not 64 lower-case hex digits");
  }
  if (!nextLine(&line) || line.substr(0, 5) != "exec ") {
    throw damaged(line_number, "no `exec ... kbatch exec` line after the marker");
  }
  decoded.exec_line = std::string(line);
  const std::string opening = "<<'" + std::string(kBodyDelimiterPrefix);
  std::size_t heredoc = line.rfind(opening);
  if (heredoc == std::string_view::npos || line.back() != '\'') {
    throw damaged(line_number, "the exec line does not end in <<'KBATCH_JOB_BODY_...'");
  }
  std::string delimiter(line.substr(heredoc + 3, line.size() - heredoc - 4));
  std::size_t base64_begin = pos;
  std::size_t base64_end = std::string_view::npos;
  while (true) {
    std::size_t line_offset = pos;
    if (!nextLine(&line)) break;
    if (line == delimiter) {
      base64_end = line_offset;
      break;
    }
  }
  if (base64_end == std::string_view::npos) {
    throw damaged(line_number, "the body's here-document has no closing " + delimiter + " line");
  }
  if (pos != script.size()) throw damaged(line_number + 1, "text follows the job body");
  auto body = decodeBase64(script.substr(base64_begin, base64_end - base64_begin));
  if (!body) throw damaged(line_number, "the job body is not valid base64");
  if (sha256Hex(*body) != decoded.body_sha256) {
    throw damaged(line_number, "the job body does not match the marker's sha256");
  }
  decoded.body = std::move(*body);
  return decoded;
}

}  // namespace kbatch::rewrite
