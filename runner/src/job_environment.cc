// The job's environment and batch context (see job_environment.h).

#include "kbatch/runner/job_environment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "kbatch/common/error.h"
#include "kbatch/common/read_all.h"

extern char** environ;

namespace kbatch::runner {
namespace {

/// Host variables never passed: they name host libraries, which in the image are absent or
/// different, and would load host code into the container's processes.
constexpr std::string_view kNeverPassed[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"};

/// What `--cleanenv` keeps, besides PBS_* and SLURM_*.
constexpr std::string_view kCleanEnvKept[] = {"PATH", "HOME", "USER", "TERM", "LANG"};

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool isValidName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

const std::string* lookup(const std::map<std::string, std::string>& environment,
                          const std::string& name) {
  auto it = environment.find(name);
  return it == environment.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace

std::map<std::string, std::string> environmentFromEntries(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> environment;
  for (const auto& entry : entries) {
    auto equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) continue;
    environment[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  return environment;
}

std::map<std::string, std::string> currentEnvironment() {
  std::vector<std::string> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    entries.emplace_back(*entry);
  }
  return environmentFromEntries(entries);
}

std::pair<std::string, std::string> parseEnvAssignment(std::string_view assignment) {
  auto equals = assignment.find('=');
  std::string name(assignment.substr(0, equals));
  if (equals == std::string_view::npos || !isValidName(name)) {
    throw Error("parse --env", std::string(assignment),
                equals == std::string_view::npos ? "missing '='" : "'" + name + "' is not a valid variable name",
                "use --env NAME=VALUE with NAME made of letters, digits and '_'");
  }
  return {name, std::string(assignment.substr(equals + 1))};
}

std::vector<std::string> buildJobEnvironment(
    const std::map<std::string, std::string>& caller_environment, bool clean_env,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::map<std::string, std::string> job;
  for (const auto& [name, value] : caller_environment) {
    bool pass;
    if (clean_env) {
      pass = startsWith(name, "PBS_") || startsWith(name, "SLURM_") ||
             std::find(std::begin(kCleanEnvKept), std::end(kCleanEnvKept), name) !=
                 std::end(kCleanEnvKept);
    } else {
      pass = std::find(std::begin(kNeverPassed), std::end(kNeverPassed), name) ==
             std::end(kNeverPassed);
    }
    if (pass) job[name] = value;
  }
  for (const auto& [name, value] : overrides) {
    if (!isValidName(name)) {
      throw Error("set environment variable", name, "not a valid variable name");
    }
    job[name] = value;
  }
  if (job.find("PATH") == job.end() || job["PATH"].empty()) job["PATH"] = std::string(kDefaultPath);
  std::vector<std::string> entries;
  entries.reserve(job.size());
  for (const auto& [name, value] : job) entries.push_back(name + "=" + value);
  return entries;
}

std::vector<std::string> expandSlurmHostList(std::string_view list) {
  std::vector<std::string> hosts;
  std::size_t i = 0;
  auto bad = [&](const std::string& cause) {
    return Error("parse SLURM_JOB_NODELIST", std::string(list), cause);
  };
  while (i < list.size()) {
    // One item: a prefix, optionally one [ranges] group, optionally a suffix, up to a top-level ','.
    std::size_t open = std::string_view::npos;
    std::size_t j = i;
    int depth = 0;
    for (; j < list.size(); ++j) {
      if (list[j] == '[') {
        if (depth++ > 0) throw bad("nested '['");
        if (open == std::string_view::npos) open = j;
        else throw bad("more than one [..] group in one host name");
      } else if (list[j] == ']') {
        if (--depth < 0) throw bad("']' without '['");
      } else if (list[j] == ',' && depth == 0) {
        break;
      }
    }
    if (depth != 0) throw bad("'[' without ']'");
    std::string_view item = list.substr(i, j - i);
    i = j + 1;
    if (item.empty()) continue;
    if (open == std::string_view::npos) {
      hosts.emplace_back(item);
      continue;
    }
    std::size_t item_open = item.find('[');
    std::size_t item_close = item.find(']');
    std::string prefix(item.substr(0, item_open));
    std::string suffix(item.substr(item_close + 1));
    std::string_view ranges = item.substr(item_open + 1, item_close - item_open - 1);
    std::size_t k = 0;
    while (k <= ranges.size()) {
      std::size_t comma = ranges.find(',', k);
      if (comma == std::string_view::npos) comma = ranges.size();
      std::string_view range = ranges.substr(k, comma - k);
      k = comma + 1;
      if (range.empty()) throw bad("empty range");
      std::size_t dash = range.find('-');
      std::string_view first = range.substr(0, dash);
      std::string_view last = dash == std::string_view::npos ? first : range.substr(dash + 1);
      auto isNumber = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        });
      };
      if (!isNumber(first) || !isNumber(last) || first.size() > 9 || last.size() > 9) {
        throw bad("range '" + std::string(range) + "' is not N or N-M");
      }
      long from = std::stol(std::string(first));
      long to = std::stol(std::string(last));
      if (to < from) throw bad("range '" + std::string(range) + "' runs backwards");
      if (to - from > 100000) throw bad("range '" + std::string(range) + "' is too large");
      for (long n = from; n <= to; ++n) {
        std::string number = std::to_string(n);
        // Zero padding as written: n[01-10] -> n01 ... n10.
        if (number.size() < first.size()) number.insert(0, first.size() - number.size(), '0');
        hosts.push_back(prefix + number + suffix);
      }
    }
  }
  return hosts;
}

void fillBatchContext(JobSpec& job, const std::map<std::string, std::string>& environment) {
  auto first = [&](std::initializer_list<const char*> names) -> const std::string* {
    for (const char* name : names) {
      if (const std::string* value = lookup(environment, name)) return value;
    }
    return nullptr;
  };
  if (!job.job_id) {
    if (auto* value = first({"PBS_JOBID", "SLURM_JOB_ID", "SLURM_JOBID"})) job.job_id = *value;
  }
  if (!job.array_index) {
    if (auto* value = first({"PBS_ARRAYID", "PBS_ARRAY_INDEX", "SLURM_ARRAY_TASK_ID"})) {
      job.array_index = *value;
    }
  }
  if (!job.submit_dir) {
    if (auto* value = first({"PBS_O_WORKDIR", "SLURM_SUBMIT_DIR"})) job.submit_dir = *value;
  }
  if (!job.name) {
    if (auto* value = first({"PBS_JOBNAME", "SLURM_JOB_NAME"})) job.name = *value;
  }
  if (!job.user) {
    if (auto* value = first({"PBS_O_LOGNAME", "SLURM_JOB_USER", "USER"})) job.user = *value;
  }
  if (!job.resources.ppn) {
    if (auto* value = first({"PBS_NUM_PPN", "SLURM_CPUS_ON_NODE"})) {
      try {
        int ppn = std::stoi(*value);
        if (ppn > 0) job.resources.ppn = ppn;
      } catch (const std::exception&) {
        throw Error("read batch context", *value, "PBS_NUM_PPN / SLURM_CPUS_ON_NODE is not a number");
      }
    }
  }
  if (job.hosts.empty()) {
    if (auto* nodefile = lookup(environment, "PBS_NODEFILE")) {
      int fd = ::open(nodefile->c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        throw Error("read PBS_NODEFILE", *nodefile, "cannot open it: " + describeErrno(errno),
                    "unset PBS_NODEFILE when not inside a batch job");
      }
      std::string text;
      try {
        text = readToEnd(fd, "read PBS_NODEFILE", *nodefile);
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
      std::size_t start = 0;
      while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) job.hosts.push_back(text.substr(start, end - start));
        start = end + 1;
      }
    } else if (auto* nodelist = first({"SLURM_JOB_NODELIST", "SLURM_NODELIST"})) {
      job.hosts = expandSlurmHostList(*nodelist);
    }
  }
}

}  // namespace kbatch::runner
