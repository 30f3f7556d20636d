#include "exec_arguments.h"

#include <climits>
#include <string>
#include <string_view>

namespace kbatch::cli {
namespace {

/// A whole decimal number within int, as CLI11 reads an int option; nullopt otherwise.
std::optional<int> wholeNumber(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

/// Reads one global flag (-v, -vv, --verbose, -q, --quiet) into `line`; false for any other
/// word, and for a second -q (CLI11's to judge).
bool readGlobalFlag(std::string_view word, FrontCommandLine& line) {
  if (word == "--verbose") return ++line.verbose, true;
  if (word == "-q" || word == "--quiet") {
    if (line.quiet) return false;
    return line.quiet = true;
  }
  if (word.size() >= 2 && word[0] == '-' &&
      word.find_first_not_of('v', 1) == std::string_view::npos) {
    line.verbose += static_cast<int>(word.size() - 1);
    return true;
  }
  return false;
}

class Parser {
 public:
  Parser(int argc, const char* const* argv) : argc_(argc), argv_(argv) {}

  std::optional<FrontCommandLine> parse() {
    int i = 1;
    for (; i < argc_; ++i) {
      std::string_view word = argv_[i];
      if (word == "exec" || word == "run") break;
      if (!globalFlag(word)) return std::nullopt;
    }
    if (i == argc_) return std::nullopt;
    const bool exec = std::string_view(argv_[i]) == "exec";
    line_.command = exec ? FrontCommandLine::Command::kExec : FrontCommandLine::Command::kRun;
    ExecFlags& flags = exec ? line_.exec.flags : line_.run.flags;
    std::optional<std::string> positional;
    bool dashdash = false;
    for (++i; i < argc_; ++i) {
      std::string_view word = argv_[i];
      if (dashdash) {
        if (!exec) return std::nullopt;
        if (!line_.exec.image_word)
          line_.exec.image_word = std::string(word);
        else
          line_.exec.words.emplace_back(word);
        continue;
      }
      if (word == "--") {
        dashdash = true;
        continue;
      }
      if (word.empty() || word.front() != '-' || word == "-") {
        if (positional) return std::nullopt;  // CMD words before `--`: left to CLI11
        positional = std::string(word);
        continue;
      }
      if (globalFlag(word)) continue;
      // An option: --name=value, --name value, -B value, -Bvalue.
      std::string_view name = word;
      std::optional<std::string_view> value;
      if (word.rfind("--", 0) == 0) {
        if (auto equals = word.find('='); equals != std::string_view::npos) {
          name = word.substr(0, equals);
          value = word.substr(equals + 1);
        }
      } else if (word.size() > 2 && word.substr(0, 2) == "-B") {
        name = "-B";
        value = word.substr(2);
      }
      if (isFlag(name)) {
        if (value || !setFlag(name, flags)) return std::nullopt;
        continue;
      }
      if (!value) {
        if (i + 1 == argc_) return std::nullopt;
        value = std::string_view(argv_[++i]);
        // A value that looks like an option is CLI11's to judge.
        if (!value->empty() && value->front() == '-') return std::nullopt;
      }
      if (value->empty() || !setOption(name, std::string(*value), flags, exec)) return std::nullopt;
    }
    if (exec) {
      if (!dashdash) return std::nullopt;
      if (positional) {
        // IMAGE came before `--`; CLI11 has it so too.
        if (line_.exec.image_word)
          line_.exec.words.insert(line_.exec.words.begin(), *line_.exec.image_word);
        line_.exec.image_word = positional;
      }
    } else {
      if (!positional) return std::nullopt;
      line_.run.script = *positional;
    }
    return line_;
  }

 private:
  bool globalFlag(std::string_view word) { return readGlobalFlag(word, line_); }

  static bool isFlag(std::string_view name) {
    return name == "--cleanenv" || name == "--writable-tmpfs" || name == "--fakeroot";
  }

  static bool setOnce(bool& flag) {
    if (flag) return false;
    return flag = true;
  }

  static bool setFlag(std::string_view name, ExecFlags& flags) {
    if (name == "--cleanenv") return setOnce(flags.clean_env);
    if (name == "--writable-tmpfs") return setOnce(flags.writable_tmpfs);
    return setOnce(flags.fakeroot);
  }

  template <typename T>
  static bool setOnce(std::optional<T>& option, T value) {
    if (option) return false;
    option = std::move(value);
    return true;
  }

  bool setOption(std::string_view name, std::string value, ExecFlags& flags, bool exec) {
    if (name == "--bind" || name == "-B") return flags.binds.push_back(std::move(value)), true;
    if (name == "--env") return flags.env.push_back(std::move(value)), true;
    if (name == "--workdir") return setOnce(flags.workdir, std::move(value));
    if (name == "--image") return setOnce(flags.image, std::move(value));
    if (name == "--from-binary") return setOnce(flags.from_binary, std::move(value));
    if (name == "--memory") return setOnce(flags.memory, std::move(value));
    if (name == "--walltime") return setOnce(flags.walltime, std::move(value));
    if (name == "--backend") {
      if (value != "local" && value != "k8s") return false;
      return setOnce(flags.backend, std::move(value));
    }
    if (name == "--cpus") {
      auto number = wholeNumber(value);
      return number && *number > 0 && setOnce(flags.cpus, *number);
    }
    if (name == "--gpus") {
      auto number = wholeNumber(value);
      return number && setOnce(flags.gpus, *number);
    }
    if (name == "--job-body" && exec) return setOnce(line_.exec.job_body, std::move(value));
    return false;
  }

  int argc_;
  const char* const* argv_;
  FrontCommandLine line_;
};

}  // namespace

std::optional<FrontCommandLine> parseFrontCommandLine(int argc, const char* const* argv) {
  return Parser(argc, argv).parse();
}

log::Verbosity leadingVerbosity(int argc, const char* const* argv) {
  FrontCommandLine globals;
  int i = 1;
  while (i < argc && readGlobalFlag(argv[i], globals)) ++i;
  return globals.verbosity();
}

}  // namespace kbatch::cli
