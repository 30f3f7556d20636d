// The directive parser. The scanning rules follow TORQUE's qsub (src/cmds/qsub_functions.c:
// get_script, ispbsdir, isexecutable, make_argv, process_opts); sizes and times follow
// src/lib/Libattr (to_size, decode_time); #SBATCH follows sbatch's option set.

#include "kbatch/rewrite/parser.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <string_view>

#include "directive_words.h"
#include "script_lines.h"
#include "kbatch/rewrite/units.h"

namespace kbatch::rewrite {
namespace {

/// `text` split at `separator` as std::getline splits a stream: no field after a final separator,
/// none at all for an empty text. Not a stringstream: the first stream a process builds sets up
/// the C++ locale, a millisecond of every `kbatch run` here.
std::vector<std::string> splitFields(std::string_view text, char separator) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    fields.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return fields;
}

using detail::Word;

constexpr std::string_view kDefaultPbsPrefix = "#PBS";
constexpr std::string_view kKbatchPrefix = "#KBATCH";
constexpr std::string_view kSlurmPrefix = "#SBATCH";
constexpr std::string_view kMarkerPrefix = "#KBATCH-REWRITTEN";

// TORQUE's GETOPT_ARGS ("a:A:b:c:C:d:D:e:EfF:hIj:J:k:l:m:M:nN:o:p:P:q:r:S:t:T:u:v:Vw:W:Xxz")
// split into options with and without a value, plus the paper's -B <binary>.
constexpr std::string_view kQsubOptionsWithValue = "aAbcCdDeFjJklmMNopPqrStTuvwWB";
constexpr std::string_view kQsubFlags = "EfhInVXxz";

constexpr std::string_view kTimeForm = "[[[DD:]HH:]MM:]SS[.fff]";
constexpr std::string_view kSizeForm = "<integer>[kb|mb|gb|tb|pb|b|w] (e.g. 4gb)";

bool isBlank(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && isBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && isBlank(text.back())) text.remove_suffix(1);
  return text;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

/// Where a directive came from, for error messages: "job.pbs:7" or "command line".
struct Location {
  std::string file;
  int line = 0;
  std::string describe() const {
    return line > 0 ? file + ":" + std::to_string(line) : "command line";
  }
};

[[noreturn]] void fail(const Location& where, const std::string& problem,
                       std::string_view expected) {
  std::string cause = problem;
  if (!expected.empty()) cause += " (expected " + std::string(expected) + ")";
  throw ScriptError("parse job script", where.describe(), cause);
}

/// The state that accumulates while directives are applied in order (later ones win, the command
/// line comes last), and the pieces whose final value depends on several of them.
class SpecBuilder {
 public:
  explicit SpecBuilder(JobSpec* spec) : spec_(spec) {}

  void applyQsubOption(char option, const std::string& value, std::string_view raw,
                       const Location& where);
  void applyResourceList(const std::string& list, const Location& where);
  void applySlurmDirective(const std::vector<Word>& words, std::string_view text,
                           const Location& where, const Directive& base);
  void applyKbatchDirective(const std::vector<Word>& words, const Location& where,
                            const Directive& base);
  void passThrough(std::string_view raw) { spec_->passthrough_options.emplace_back(trim(raw)); }
  void finish();

 private:
  void applyNodes(const std::string& value, const Location& where);
  void applySlurmOption(std::string_view name, const std::string& value, std::string_view raw,
                        const Location& where);

  JobSpec* spec_;
  std::optional<int> nodes_gpus_;     // gpus=G of the first nodes= request
  std::optional<int> explicit_gpus_;  // -l gpus=G, --gres=gpu:G, --gpus
};

void SpecBuilder::applyNodes(const std::string& value, const Location& where) {
  constexpr std::string_view kForm =
      "nodes={N|host}[:ppn=M][:gpus=G][:property]...[+...], e.g. nodes=2:ppn=4";
  std::vector<HostRequest> requests;
  std::size_t start = 0;
  while (true) {
    std::size_t plus = value.find('+', start);
    std::string part = value.substr(start, plus == std::string::npos ? std::string::npos
                                                                     : plus - start);
    std::vector<std::string> fields = splitFields(part, ':');
    if (part.empty() || part.back() == ':' || fields.empty() || fields[0].empty()) {
      fail(where, "empty node request in 'nodes=" + value + "'", kForm);
    }
    HostRequest request;
    if (std::all_of(fields[0].begin(), fields[0].end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      auto count = parsePositiveInt(fields[0]);
      if (!count) fail(where, "node count '" + fields[0] + "' is not a positive integer", kForm);
      request.count = *count;
    } else {
      for (char c : fields[0]) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
          fail(where, "host name '" + fields[0] + "' has the character '" + std::string(1, c) + "'",
               kForm);
        }
      }
      request.host = fields[0];
    }
    for (std::size_t i = 1; i < fields.size(); ++i) {
      const std::string& field = fields[i];
      if (field.empty()) fail(where, "empty field in 'nodes=" + value + "'", kForm);
      if (startsWith(field, "ppn=")) {
        auto ppn = parsePositiveInt(field.substr(4));
        if (!ppn) fail(where, "'" + field + "' is not a positive integer", "ppn=<M>, M >= 1");
        request.ppn = ppn;
      } else if (startsWith(field, "gpus=")) {
        auto gpus = field.substr(5) == "0" ? std::optional<int>(0) : parsePositiveInt(field.substr(5));
        if (!gpus) fail(where, "'" + field + "' is not a count", "gpus=<G>, G >= 0");
        request.gpus = gpus;
      } else {
        request.properties.push_back(field);
      }
    }
    requests.push_back(std::move(request));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  Resources& resources = spec_->resources;
  int total = 0;
  for (const auto& request : requests) total += request.count;
  resources.nodes = total;
  resources.max_nodes.reset();  // a TORQUE node list is exact
  resources.ppn = requests.front().ppn;
  nodes_gpus_ = requests.front().gpus;
  resources.node_requests = std::move(requests);
}

void SpecBuilder::applyResourceList(const std::string& list, const Location& where) {
  // qsub refuses "nodes=...,procs=..." in one list (process_opts, case 'l').
  if (list.find(",procs=") != std::string::npos && list.find("nodes=") != std::string::npos) {
    fail(where, "-l " + list + " combines nodes= and procs=", "either nodes=... or procs=N");
  }
  Resources& resources = spec_->resources;
  constexpr std::string_view kListForm = "-l NAME=VALUE[,NAME=VALUE]...";
  std::size_t start = 0;
  while (start <= list.size()) {
    // As TORQUE's add_verify_resources: NAME=VALUE items separated by ',', where a value that
    // starts with a quote runs to the next quote and may hold commas (nodes=1,other="a,b").
    std::size_t equals = list.find_first_of("=,", start);
    std::size_t comma = list.find(',', start);
    std::string name, value, item;
    const bool has_value = equals != std::string::npos && list[equals] == '=';
    if (!has_value) {
      item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? list.size() + 1 : comma + 1;
      if (item.empty()) fail(where, "empty item in '-l " + list + "'", kListForm);
      name = item;
    } else {
      name = list.substr(start, equals - start);
      std::size_t value_begin = equals + 1;
      char quote = value_begin < list.size() ? list[value_begin] : '\0';
      if (quote == '"' || quote == '\'') {
        std::size_t close = list.find_first_of("\"'", value_begin + 1);
        if (close == std::string::npos) {
          fail(where, "unmatched " + std::string(1, quote) + " quote in '-l " + list + "'",
               "-l NAME=\"VALUE\"");
        }
        value = list.substr(value_begin + 1, close - value_begin - 1);
        std::size_t after = close + 1;
        if (after < list.size() && list[after] != ',') {
          fail(where, "text after the quoted value of '" + name + "' in '-l " + list + "'",
               "-l NAME=\"VALUE\"[,NAME=VALUE]...");
        }
        start = after < list.size() ? after + 1 : list.size() + 1;
      } else {
        value = list.substr(value_begin,
                            comma == std::string::npos ? std::string::npos : comma - value_begin);
        start = comma == std::string::npos ? list.size() + 1 : comma + 1;
      }
      item = name + "=" + value;
      if (value.find_first_of("\"'") != std::string::npos) {
        fail(where, "a quote inside the value of '" + name + "' in '-l " + list + "'",
             "quote a whole value: -l NAME=\"VALUE\"");
      }
    }
    if (name.empty()) fail(where, "resource '" + item + "' has no name", "-l NAME=VALUE");
    if (name.find_first_of("\"'") != std::string::npos) {
      fail(where, "resource name " + name + " holds a quote (qsub keeps the quotes of a #PBS "
                  "directive)", "-l NAME=VALUE, or -l NAME=\"VALUE\"");
    }
    auto needValue = [&] {
      if (!has_value || value.empty()) {
        fail(where, "resource '" + name + "' has no value", "-l " + name + "=VALUE");
      }
    };
    if (name == "nodes") {
      needValue();
      applyNodes(value, where);
    } else if (name == "procs") {
      needValue();
      auto procs = parsePositiveInt(value);
      if (!procs) fail(where, "procs=" + value + " is not a positive integer", "procs=<N>");
      resources.procs = procs;
    } else if (name == "mem" || name == "pmem" || name == "vmem") {
      needValue();
      auto bytes = parseTorqueSize(value);
      if (!bytes) fail(where, "bad size '" + name + "=" + value + "'", kSizeForm);
      (name == "mem" ? resources.mem_bytes
                     : name == "pmem" ? resources.pmem_bytes : resources.vmem_bytes) = bytes;
    } else if (name == "walltime") {
      needValue();
      auto seconds = parseTorqueTime(value);
      if (!seconds) fail(where, "bad walltime '" + value + "'", kTimeForm);
      resources.walltime_s = seconds;
    } else if (name == "gpus") {
      needValue();
      auto gpus = value == "0" ? std::optional<int>(0) : parsePositiveInt(value);
      if (!gpus) fail(where, "gpus=" + value + " is not a count", "gpus=<G>, G >= 0");
      explicit_gpus_ = gpus;
    } else {
      // Other TORQUE resources are still checked where their type is known, then kept as written.
      if ((name == "pvmem" || name == "file") && !parseTorqueSize(value)) {
        fail(where, "bad size '" + name + "=" + value + "'", kSizeForm);
      }
      if ((name == "cput" || name == "pcput") && !parseTorqueTime(value)) {
        fail(where, "bad time '" + name + "=" + value + "'", kTimeForm);
      }
      auto& other = resources.other;
      auto same = std::find_if(other.begin(), other.end(),
                               [&](const auto& entry) { return entry.first == name; });
      if (same != other.end()) same->second = value;
      else other.emplace_back(name, value);
    }
  }
}

void SpecBuilder::applyQsubOption(char option, const std::string& value, std::string_view raw,
                                  const Location& where) {
  switch (option) {
    case 'N': {
      if (value.empty()) fail(where, "-N needs a job name", "-N NAME");
      // TORQUE's check_job_name: at most 256 printable characters, no blanks. A #PBS directive
      // keeps its quotes, so `-N "my job"` is refused there as it is by qsub.
      constexpr std::string_view kNameForm = "-N NAME, at most 256 printable characters, no blanks";
      if (value.size() > 256) fail(where, "job name is longer than 256 characters", kNameForm);
      for (char c : value) {
        if (std::isgraph(static_cast<unsigned char>(c)) == 0) {
          fail(where,
               "job name '" + value + "' has a blank or non-printing character" +
                   (value.find_first_of("\"'") != std::string::npos
                        ? " (qsub keeps the quotes of a #PBS directive)"
                        : ""),
               kNameForm);
        }
      }
      spec_->name = value;
      return;
    }
    case 'S': {
      // -S path[@host][,path@host...]: the entry without a host applies everywhere.
      std::string shell = value.substr(0, value.find(','));
      shell = shell.substr(0, shell.find('@'));
      if (shell.empty() || shell[0] != '/') {
        fail(where, "-S '" + value + "' is not an absolute path", "-S /path/to/shell");
      }
      spec_->shell = shell;
      return;
    }
    case 'l': applyResourceList(value, where); return;
    case 'd':
    case 'w':
      if (value.empty()) fail(where, std::string("-") + option + " needs a directory", "-d DIR");
      spec_->workdir = value;
      return;
    case 't':
      if (value.empty() || value.find_first_not_of("0123456789,-%") != std::string::npos) {
        fail(where, "bad array request '" + value + "'", "-t 1-10[%4] or -t 1,3,5-7");
      }
      spec_->array = value;
      return;
    case 'B': {
      // kbatch's own option: a quoted path (which may hold blanks) loses its quotes.
      std::string binary = detail::stripEnclosingQuotes(value);
      if (binary.empty()) fail(where, "-B needs the job's binary", "-B PATH");
      spec_->binary = binary;
      return;
    }
    case 'C':
      return;  // a -C inside the script is too late to change the prefix (qsub reads it first)
    case 'j':
      if (value != "oe" && value != "eo" && value != "n") {
        fail(where, "bad -j value '" + value + "'", "-j oe, -j eo or -j n");
      }
      break;
    case 'm':
      if (value.empty() ||
          (value != "n" && value.find_first_not_of("abe") != std::string::npos)) {
        fail(where, "bad -m value '" + value + "'", "-m n or a combination of a, b, e");
      }
      break;
    case 'p': {
      std::string_view digits = value;
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
      bool ok = !digits.empty() && digits.size() < 6 &&
                digits.find_first_not_of("0123456789") == std::string_view::npos;
      int priority = ok ? std::stoi(value) : 0;
      if (!ok || priority < -1024 || priority > 1023) {
        fail(where, "bad -p value '" + value + "'", "-p PRIORITY, -1024..1023");
      }
      break;
    }
    case 'r':
      if (value != "y" && value != "n") fail(where, "bad -r value '" + value + "'", "-r y or -r n");
      break;
    case 'k':
      if (value != "o" && value != "e" && value != "oe" && value != "eo" && value != "n") {
        fail(where, "bad -k value '" + value + "'", "-k o, e, oe, eo or n");
      }
      break;
    default: break;
  }
  passThrough(raw);
}

// sbatch's options that kbatch reads; every other option is passed through.
enum class SlurmField {
  kJobName, kNodes, kTasksPerNode, kTasks, kCpusPerTask, kMemory, kMemoryPerCpu, kTime,
  kGres, kGpus, kChdir, kArray, kOther
};
enum class Arity { kValue, kFlag, kOptional };

struct SlurmOption {
  std::string_view long_name;
  char short_name;
  Arity arity;
  SlurmField field;
};

constexpr SlurmOption kSlurmOptions[] = {
    {"job-name", 'J', Arity::kValue, SlurmField::kJobName},
    {"nodes", 'N', Arity::kValue, SlurmField::kNodes},
    {"ntasks-per-node", 0, Arity::kValue, SlurmField::kTasksPerNode},
    {"ntasks", 'n', Arity::kValue, SlurmField::kTasks},
    {"cpus-per-task", 'c', Arity::kValue, SlurmField::kCpusPerTask},
    {"mem", 0, Arity::kValue, SlurmField::kMemory},
    {"mem-per-cpu", 0, Arity::kValue, SlurmField::kMemoryPerCpu},
    {"time", 't', Arity::kValue, SlurmField::kTime},
    {"gres", 0, Arity::kValue, SlurmField::kGres},
    {"gpus", 'G', Arity::kValue, SlurmField::kGpus},
    {"gpus-per-node", 0, Arity::kValue, SlurmField::kGpus},
    {"chdir", 'D', Arity::kValue, SlurmField::kChdir},
    {"workdir", 0, Arity::kValue, SlurmField::kChdir},
    {"array", 'a', Arity::kValue, SlurmField::kArray},
    {"output", 'o', Arity::kValue, SlurmField::kOther},
    {"error", 'e', Arity::kValue, SlurmField::kOther},
    {"input", 'i', Arity::kValue, SlurmField::kOther},
    {"partition", 'p', Arity::kValue, SlurmField::kOther},
    {"account", 'A', Arity::kValue, SlurmField::kOther},
    {"qos", 'q', Arity::kValue, SlurmField::kOther},
    {"dependency", 'd', Arity::kValue, SlurmField::kOther},
    {"constraint", 'C', Arity::kValue, SlurmField::kOther},
    {"nodelist", 'w', Arity::kValue, SlurmField::kOther},
    {"exclude", 'x', Arity::kValue, SlurmField::kOther},
    {"licenses", 'L', Arity::kValue, SlurmField::kOther},
    {"clusters", 'M', Arity::kValue, SlurmField::kOther},
    {"distribution", 'm', Arity::kValue, SlurmField::kOther},
    {"begin", 'b', Arity::kValue, SlurmField::kOther},
    {"nodefile", 'F', Arity::kValue, SlurmField::kOther},
    {"mail-type", 0, Arity::kValue, SlurmField::kOther},
    {"mail-user", 0, Arity::kValue, SlurmField::kOther},
    {"export", 0, Arity::kValue, SlurmField::kOther},
    {"reservation", 0, Arity::kValue, SlurmField::kOther},
    {"comment", 0, Arity::kValue, SlurmField::kOther},
    {"signal", 0, Arity::kValue, SlurmField::kOther},
    {"wckey", 0, Arity::kValue, SlurmField::kOther},
    {"open-mode", 0, Arity::kValue, SlurmField::kOther},
    {"mincpus", 0, Arity::kValue, SlurmField::kOther},
    {"tmp", 0, Arity::kValue, SlurmField::kOther},
    {"time-min", 0, Arity::kValue, SlurmField::kOther},
    {"gpus-per-task", 0, Arity::kValue, SlurmField::kOther},
    {"cpus-per-gpu", 0, Arity::kValue, SlurmField::kOther},
    {"mem-per-gpu", 0, Arity::kValue, SlurmField::kOther},
    {"ntasks-per-core", 0, Arity::kValue, SlurmField::kOther},
    {"ntasks-per-socket", 0, Arity::kValue, SlurmField::kOther},
    {"exclusive", 0, Arity::kOptional, SlurmField::kOther},
    {"nice", 0, Arity::kOptional, SlurmField::kOther},
    {"get-user-env", 0, Arity::kOptional, SlurmField::kOther},
    {"requeue", 0, Arity::kFlag, SlurmField::kOther},
    {"no-requeue", 0, Arity::kFlag, SlurmField::kOther},
    {"hold", 'H', Arity::kFlag, SlurmField::kOther},
    {"overcommit", 'O', Arity::kFlag, SlurmField::kOther},
    {"oversubscribe", 's', Arity::kFlag, SlurmField::kOther},
    {"no-kill", 'k', Arity::kOptional, SlurmField::kOther},
    {"contiguous", 0, Arity::kFlag, SlurmField::kOther},
    {"parsable", 0, Arity::kFlag, SlurmField::kOther},
    {"wait", 'W', Arity::kFlag, SlurmField::kOther},
    {"quiet", 'Q', Arity::kFlag, SlurmField::kOther},
    {"verbose", 'v', Arity::kFlag, SlurmField::kOther},
    {"test-only", 0, Arity::kFlag, SlurmField::kOther},
    {"spread-job", 0, Arity::kFlag, SlurmField::kOther},
    {"use-min-nodes", 0, Arity::kFlag, SlurmField::kOther},
};

const SlurmOption* findSlurmLong(std::string_view name) {
  for (const auto& option : kSlurmOptions) {
    if (option.long_name == name) return &option;
  }
  return nullptr;
}

const SlurmOption* findSlurmShort(char name) {
  for (const auto& option : kSlurmOptions) {
    if (option.short_name == name) return &option;
  }
  return nullptr;
}

/// "gpu:2", "gpu:a100:2", "gpu" (1), "gres/gpu:2" -> GPU count; other gres contribute nothing.
std::optional<int> countGpusInGres(const std::string& value, bool* malformed) {
  std::optional<int> total;
  for (std::string entry : splitFields(value, ',')) {
    if (startsWith(entry, "gres/")) entry = entry.substr(5);
    std::string name = entry.substr(0, entry.find(':'));
    if (name != "gpu") continue;
    int count = 1;
    if (auto colon = entry.rfind(':'); colon != std::string::npos) {
      std::string last = entry.substr(colon + 1);
      if (!last.empty() && std::isdigit(static_cast<unsigned char>(last[0]))) {
        auto parsed = last == "0" ? std::optional<int>(0) : parsePositiveInt(last);
        if (!parsed) {
          *malformed = true;
          return std::nullopt;
        }
        count = *parsed;
      }
    }
    total = total.value_or(0) + count;
  }
  return total;
}

void SpecBuilder::applySlurmOption(std::string_view name, const std::string& value,
                                   std::string_view raw, const Location& where) {
  const SlurmOption* option = findSlurmLong(name);
  std::string display = "--" + std::string(name);
  Resources& resources = spec_->resources;
  switch (option == nullptr ? SlurmField::kOther : option->field) {
    case SlurmField::kJobName:
      if (value.empty()) fail(where, display + " needs a name", "--job-name=NAME");
      spec_->name = value;
      return;
    case SlurmField::kNodes: {
      // N or MIN-MAX (sbatch): the range is kept, and the directive goes to sbatch unchanged.
      constexpr std::string_view kNodesForm = "--nodes=N or --nodes=MIN-MAX, MIN <= MAX";
      std::size_t dash = value.find('-');
      auto nodes = parsePositiveInt(value.substr(0, dash));
      std::optional<int> most = nodes;
      if (dash != std::string::npos) most = parsePositiveInt(value.substr(dash + 1));
      if (!nodes || !most || *most < *nodes) {
        fail(where, "bad node count '" + value + "'", kNodesForm);
      }
      resources.nodes = nodes;
      resources.max_nodes = dash == std::string::npos ? std::nullopt : most;
      return;
    }
    case SlurmField::kTasksPerNode:
    case SlurmField::kTasks:
    case SlurmField::kCpusPerTask: {
      auto count = parsePositiveInt(value);
      if (!count) fail(where, display + "=" + value + " is not a positive integer", display + "=N");
      auto field = option->field;
      (field == SlurmField::kTasksPerNode ? resources.ppn
       : field == SlurmField::kTasks      ? resources.procs
                                          : resources.cpus_per_task) = count;
      return;
    }
    case SlurmField::kMemory:
    case SlurmField::kMemoryPerCpu: {
      auto bytes = parseSlurmMemory(value);
      if (!bytes) fail(where, "bad size '" + value + "'", display + "=<integer>[K|M|G|T] (default M)");
      (option->field == SlurmField::kMemory ? resources.mem_bytes : resources.pmem_bytes) = bytes;
      return;
    }
    case SlurmField::kTime: {
      bool unlimited = false;
      auto seconds = parseSlurmTime(value, &unlimited);
      if (!seconds) {
        fail(where, "bad time '" + value + "'",
             "--time=M, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED");
      }
      resources.walltime_s = unlimited ? std::nullopt : seconds;
      return;
    }
    case SlurmField::kGres: {
      bool malformed = false;
      auto gpus = countGpusInGres(value, &malformed);
      if (malformed) fail(where, "bad GPU count in '--gres=" + value + "'", "--gres=gpu[:TYPE]:N");
      if (gpus) explicit_gpus_ = gpus;
      spec_->passthrough_options.emplace_back(trim(raw));  // other gres stay the scheduler's
      return;
    }
    case SlurmField::kGpus: {
      // [TYPE:]N
      std::string count = value.substr(value.rfind(':') == std::string::npos ? 0 : value.rfind(':') + 1);
      auto gpus = count == "0" ? std::optional<int>(0) : parsePositiveInt(count);
      if (!gpus) fail(where, "bad GPU count '" + value + "'", display + "=[TYPE:]N");
      explicit_gpus_ = gpus;
      return;
    }
    case SlurmField::kChdir:
      if (value.empty()) fail(where, display + " needs a directory", "--chdir=DIR");
      spec_->workdir = value;
      return;
    case SlurmField::kArray:
      if (value.empty()) fail(where, "--array needs a range", "--array=0-15[%4]");
      spec_->array = value;
      return;
    case SlurmField::kOther:
      passThrough(raw);
      return;
  }
}

void SpecBuilder::applySlurmDirective(const std::vector<Word>& words, std::string_view text,
                                      const Location& where, const Directive& base) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    auto record = [&](std::string option, std::string value) {
      Directive directive = base;
      directive.option = std::move(option);
      directive.value = std::move(value);
      spec_->directives.push_back(std::move(directive));
    };
    auto rawFrom = [&](std::size_t first, std::size_t last) {
      return text.substr(words[first].begin, words[last].end - words[first].begin);
    };
    if (startsWith(word.text, "--") && word.text.size() > 2) {
      std::string body = word.text.substr(2);
      std::size_t equals = body.find('=');
      std::string name = body.substr(0, equals);
      const SlurmOption* option = findSlurmLong(name);
      if (equals != std::string::npos) {
        std::string value = body.substr(equals + 1);
        record("--" + name, value);
        if (option != nullptr && option->arity == Arity::kFlag) {
          fail(where, "--" + name + " takes no value", "--" + name);
        }
        applySlurmOption(name, value, rawFrom(i, i), where);
        continue;
      }
      if (option == nullptr) {
        // Unknown and without '=': its arity is unknowable, so keep the rest exactly as written.
        record("--" + name, "");
        passThrough(text.substr(word.begin));
        return;
      }
      if (option->arity == Arity::kValue) {
        if (i + 1 >= words.size()) fail(where, "--" + name + " needs a value", "--" + name + "=VALUE");
        record("--" + name, words[i + 1].text);
        applySlurmOption(name, words[i + 1].text, rawFrom(i, i + 1), where);
        ++i;
      } else {
        record("--" + name, "");
        applySlurmOption(name, "", rawFrom(i, i), where);
      }
      continue;
    }
    if (word.text.size() >= 2 && word.text[0] == '-' && word.text[1] != '-') {
      const SlurmOption* option = findSlurmShort(word.text[1]);
      if (option == nullptr) {
        record(word.text.substr(0, 2), "");
        passThrough(text.substr(word.begin));
        return;
      }
      std::string short_name = word.text.substr(0, 2);
      if (option->arity != Arity::kValue) {
        record(short_name, "");
        applySlurmOption(option->long_name, "", rawFrom(i, i), where);
        continue;
      }
      std::string value = word.text.substr(2);
      std::size_t last = i;
      if (value.empty()) {
        if (i + 1 >= words.size()) fail(where, short_name + " needs a value", short_name + " VALUE");
        value = words[++last].text;
      }
      record(short_name, value);
      applySlurmOption(option->long_name, value, rawFrom(i, last), where);
      i = last;
      continue;
    }
    // sbatch itself would refuse a stray word; keep it for the scheduler to judge.
    record("", word.text);
    passThrough(text.substr(word.begin));
    return;
  }
}

void SpecBuilder::applyKbatchDirective(const std::vector<Word>& words, const Location& where,
                                       const Directive& base) {
  constexpr std::string_view kKnown = "--image, --backend, --bind, --env or --from-binary";
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i].text;
    if (!startsWith(word, "--")) {
      fail(where, "unexpected '" + word + "' in #KBATCH directive", std::string("an option: ") +
           std::string(kKnown));
    }
    std::size_t equals = word.find('=');
    std::string name = word.substr(0, equals);
    std::string value;
    if (equals != std::string::npos) {
      value = word.substr(equals + 1);
    } else if (name == "--image" || name == "--backend" || name == "--bind" || name == "--env" ||
               name == "--from-binary") {
      if (i + 1 >= words.size()) fail(where, name + " needs a value", name + " VALUE");
      value = words[++i].text;
    } else {
      fail(where, "unknown #KBATCH option '" + name + "'", kKnown);
    }
    Directive directive = base;
    directive.option = name;
    directive.value = value;
    spec_->directives.push_back(directive);
    if (name == "--image") {
      if (value.empty() || std::any_of(value.begin(), value.end(), isBlank)) {
        fail(where, "bad image reference '" + value + "'", "--image REGISTRY/NAME[:TAG|@DIGEST]");
      }
      spec_->image = value;
    } else if (name == "--backend") {
      if (value == "local") spec_->backend = Backend::kLocal;
      else if (value == "k8s") spec_->backend = Backend::kK8s;
      else fail(where, "unknown backend '" + value + "'", "--backend local or --backend k8s");
    } else if (name == "--bind") {
      constexpr std::string_view kForm = "--bind /SRC[:/DST[:ro|rw]]";
      BindMount bind;
      std::vector<std::string> parts = splitFields(value, ':');
      if (parts.empty() || parts.size() > 3) fail(where, "bad bind '" + value + "'", kForm);
      bind.source = parts[0];
      bind.destination = parts.size() > 1 ? parts[1] : parts[0];
      if (parts.size() == 3) {
        if (parts[2] == "ro") bind.read_only = true;
        else if (parts[2] != "rw") fail(where, "bad bind mode '" + parts[2] + "'", kForm);
      }
      if (bind.source.empty() || bind.source[0] != '/' || bind.destination.empty() ||
          bind.destination[0] != '/') {
        fail(where, "bind paths must be absolute in '" + value + "'", kForm);
      }
      spec_->binds.push_back(bind);
    } else if (name == "--env") {
      std::size_t eq = value.find('=');
      std::string key = value.substr(0, eq);
      bool valid = eq != std::string::npos && !key.empty() &&
                   !std::isdigit(static_cast<unsigned char>(key[0])) &&
                   std::all_of(key.begin(), key.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                   });
      if (!valid) fail(where, "bad environment setting '" + value + "'", "--env NAME=VALUE");
      spec_->env.emplace_back(key, value.substr(eq + 1));
    } else {  // --from-binary
      if (value.empty()) fail(where, "--from-binary needs a path", "--from-binary PATH");
      spec_->binary = value;
    }
  }
}

void SpecBuilder::finish() {
  Resources& resources = spec_->resources;
  resources.gpus = explicit_gpus_ ? explicit_gpus_ : nodes_gpus_;
  spec_->needs_container = spec_->image.has_value() || spec_->binary.has_value();
}

/// Applies qsub-style option words (from a #PBS line or the command line) with getopt's rules:
/// bundled flags (-Vh), attached or separate values (-lnodes=1 / -l nodes=1).
void applyQsubWords(SpecBuilder& builder, JobSpec& spec, const std::vector<Word>& words,
                    std::string_view text, const Location& where, const Directive& base) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    if (word.text.size() < 2 || word.text[0] != '-' || word.text[1] == '-') {
      // An operand or a long option: qsub would not take it from a directive; keep it verbatim.
      Directive directive = base;
      directive.value = word.text;
      spec.directives.push_back(directive);
      builder.passThrough(text.substr(word.begin));
      return;
    }
    for (std::size_t c = 1; c < word.text.size(); ++c) {
      char option = word.text[c];
      Directive directive = base;
      directive.option = std::string("-") + option;
      if (kQsubOptionsWithValue.find(option) != std::string_view::npos) {
        std::string value = word.text.substr(c + 1);
        std::size_t last = i;
        if (value.empty()) {
          if (i + 1 >= words.size()) {
            fail(where, directive.option + " needs a value", directive.option + " VALUE");
          }
          value = words[++last].text;
        }
        directive.value = value;
        spec.directives.push_back(directive);
        std::string raw = c == 1 ? std::string(text.substr(word.begin, words[last].end - word.begin))
                                 : directive.option + " " + value;
        builder.applyQsubOption(option, value, raw, where);
        i = last;
        break;
      }
      if (kQsubFlags.find(option) != std::string_view::npos) {
        spec.directives.push_back(directive);
        builder.passThrough(directive.option);
        continue;
      }
      // Not a qsub option: keep the rest as written, since what it consumes is unknowable.
      spec.directives.push_back(directive);
      builder.passThrough(c == 1 ? std::string(text.substr(word.begin))
                                 : "-" + word.text.substr(c) +
                                       std::string(text.substr(word.end)));
      return;
    }
  }
}

std::vector<Word> splitOrFail(std::string_view text, const Location& where,
                              std::string_view expected,
                              detail::QuoteRule rule = detail::QuoteRule::kRemoveQuotes) {
  std::string problem;
  auto words = detail::splitDirectiveWords(text, &problem, rule);
  if (!words) fail(where, problem, expected);
  return *words;
}

/// One physical line of the script.
struct Line {
  std::string_view text;  // without "\n" and without a CR before it
  std::size_t offset;     // of its first byte
  std::size_t end;        // one past its "\n" (or the end of the content)
  bool has_newline;
  bool had_cr;
};

class LineCursor {
 public:
  explicit LineCursor(std::string_view content) : content_(content) {}
  bool next(Line* line) {
    if (pos_ >= content_.size()) return false;
    std::size_t newline = content_.find('\n', pos_);
    std::size_t stop = newline == std::string_view::npos ? content_.size() : newline;
    line->offset = pos_;
    line->has_newline = newline != std::string_view::npos;
    line->end = line->has_newline ? newline + 1 : content_.size();
    line->text = content_.substr(pos_, stop - pos_);
    line->had_cr = line->has_newline && !line->text.empty() && line->text.back() == '\r';
    if (line->had_cr) line->text.remove_suffix(1);
    pos_ = line->end;
    ++number_;
    return true;
  }
  int number() const { return number_; }

 private:
  std::string_view content_;
  std::size_t pos_ = 0;
  int number_ = 0;
};

/// `prefix` followed by a blank or the end, after leading blanks; returns what follows it.
std::optional<std::string_view> matchWordPrefix(std::string_view line, std::string_view prefix) {
  std::string_view rest = line;
  while (!rest.empty() && isBlank(rest.front())) rest.remove_prefix(1);
  if (!startsWith(rest, prefix)) return std::nullopt;
  rest.remove_prefix(prefix.size());
  if (!rest.empty() && !isBlank(rest.front())) return std::nullopt;
  return rest;
}

/// TORQUE's ispbsdir(): leading blanks, then the prefix (a plain string compare, so "#PBS-N x"
/// matches too); an empty prefix never matches.
std::optional<std::string_view> matchPbsPrefix(std::string_view line, std::string_view prefix) {
  if (prefix.empty()) return std::nullopt;
  std::string_view rest = line;
  while (!rest.empty() && isBlank(rest.front())) rest.remove_prefix(1);
  if (!startsWith(rest, prefix)) return std::nullopt;
  return rest.substr(prefix.size());
}

}  // namespace

namespace detail {

bool isExecutableLine(std::string_view line) {
  if (startsWith(line, ":") || startsWith(line, "#!")) return false;
  std::string_view rest = trim(line);
  return !rest.empty() && rest[0] != '#';
}

}  // namespace detail

std::string effectivePbsPrefix(const ParseOptions& options) {
  if (options.directive_prefix) return *options.directive_prefix;
  if (!options.command_line.empty()) {
    auto command_line = parseQsubCommandLine(options.command_line);
    if (command_line.prefix) return *command_line.prefix;
  }
  if (options.pbs_dprefix) return *options.pbs_dprefix;
  return std::string(kDefaultPbsPrefix);
}

QsubCommandLine parseQsubCommandLine(const std::vector<std::string>& arguments) {
  QsubCommandLine result;
  Location where{"command line", 0};
  bool options_ended = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (options_ended || argument.size() < 2 || argument[0] != '-') {
      // glibc's getopt permutes, so options may follow the script; the first operand is it.
      if (!result.script_index) {
        result.script_index = i;
        result.script_index_without_binary = result.arguments_without_binary.size();
      }
      result.arguments_without_binary.push_back(argument);
      continue;
    }
    if (argument == "--") {
      options_ended = true;
      result.arguments_without_binary.push_back(argument);
      continue;
    }
    if (argument[1] == '-') {  // --version, --about: qsub's own
      Directive directive{DirectiveSource::kCommandLine, 0, "", argument, "", argument};
      result.options.push_back(directive);
      result.arguments_without_binary.push_back(argument);
      continue;
    }
    std::string kept = "-";
    std::size_t consumed_next = 0;
    for (std::size_t c = 1; c < argument.size(); ++c) {
      char option = argument[c];
      Directive directive{DirectiveSource::kCommandLine, 0, "", std::string("-") + option, "", ""};
      if (kQsubOptionsWithValue.find(option) != std::string_view::npos) {
        std::string value = argument.substr(c + 1);
        if (value.empty()) {
          if (i + 1 >= arguments.size()) {
            fail(where, directive.option + " needs a value", directive.option + " VALUE");
          }
          value = arguments[i + 1];
          consumed_next = 1;
        }
        directive.value = value;
        directive.raw = directive.option + " " + value;
        result.options.push_back(directive);
        if (option == 'B') {
          result.binary = value;
        } else {
          if (option == 'C') result.prefix = value;
          kept += argument.substr(c);
          if (consumed_next) {
            result.arguments_without_binary.push_back(kept);
            result.arguments_without_binary.push_back(value);
            kept = "-";
          }
        }
        break;
      }
      if (option == 'I') result.interactive = true;
      directive.raw = directive.option;
      result.options.push_back(directive);
      kept += option;
    }
    if (kept != "-") result.arguments_without_binary.push_back(kept);
    i += consumed_next;
  }
  return result;
}

JobSpec parseJobScript(std::string_view content, const ParseOptions& options,
                       ScriptLayout* layout) {
  JobSpec spec;
  SpecBuilder builder(&spec);
  ScriptLayout local_layout;
  ScriptLayout& out = layout != nullptr ? *layout : local_layout;
  out = ScriptLayout{};
  out.body_offset = content.size();

  const std::string pbs_prefix = effectivePbsPrefix(options);
  LineCursor cursor(content);
  Line line;
  bool first = true;
  while (cursor.next(&line)) {
    Location where{options.file_name, cursor.number()};
    if (line.had_cr && options.reject_dos_line_endings) {
      fail(where, "the line ends in CR LF (DOS/Windows format), which qsub refuses",
           "Unix line endings; convert with dos2unix");
    }
    if (first && startsWith(line.text, "#!")) {
      std::string_view interpreter = trim(line.text.substr(2));
      if (!interpreter.empty()) out.shebang_interpreter = std::string(interpreter);
    }
    first = false;

    enum class Kind { kPbs, kKbatch, kSlurm, kNone } kind = Kind::kNone;
    std::optional<std::string_view> rest;
    std::string_view prefix;
    if ((rest = matchPbsPrefix(line.text, pbs_prefix))) {
      kind = Kind::kPbs;
      prefix = pbs_prefix;
    } else if (startsWith(trim(line.text), kMarkerPrefix)) {
      out.has_rewrite_marker = true;
      continue;
    } else if ((rest = matchWordPrefix(line.text, kKbatchPrefix))) {
      kind = Kind::kKbatch;
      prefix = kKbatchPrefix;
    } else if ((rest = matchWordPrefix(line.text, kSlurmPrefix))) {
      kind = Kind::kSlurm;
      prefix = kSlurmPrefix;
    }
    if (kind == Kind::kNone) {
      if (detail::isExecutableLine(line.text)) {
        out.body_offset = line.offset;
        out.body_line = cursor.number();
        break;
      }
      continue;
    }

    // A directive ending in a backslash continues on the next line (qsub's get_script).
    std::string text(*rest);
    std::size_t raw_begin = line.offset;
    Line last = line;
    while (!text.empty() && text.back() == '\\' && last.has_newline) {
      text.pop_back();
      if (!cursor.next(&last)) {
        fail(where, "the directive continues (ends in \\) past the end of the script",
             "a continuation line after a trailing backslash");
      }
      if (last.had_cr && options.reject_dos_line_endings) {
        fail(Location{options.file_name, cursor.number()},
             "the line ends in CR LF (DOS/Windows format), which qsub refuses",
             "Unix line endings; convert with dos2unix");
      }
      text.append(last.text);
    }
    std::string_view raw = content.substr(raw_begin, last.offset + last.text.size() - raw_begin);

    Directive base;
    base.line = where.line;
    base.prefix = std::string(prefix);
    base.raw = std::string(raw);
    switch (kind) {
      case Kind::kPbs: {
        base.source = DirectiveSource::kPbs;
        auto words = splitOrFail(text, where, "#PBS -OPTION VALUE ...",
                                 detail::QuoteRule::kKeepQuotes);
        applyQsubWords(builder, spec, words, text, where, base);
        break;
      }
      case Kind::kKbatch: {
        base.source = DirectiveSource::kKbatch;
        auto words = splitOrFail(text, where, "#KBATCH --OPTION VALUE ...");
        builder.applyKbatchDirective(words, where, base);
        break;
      }
      case Kind::kSlurm: {
        base.source = DirectiveSource::kSlurm;
        auto words = splitOrFail(text, where, "#SBATCH --OPTION=VALUE ...");
        builder.applySlurmDirective(words, text, where, base);
        break;
      }
      case Kind::kNone: break;
    }
  }
  if (options.reject_dos_line_endings) {
    // qsub's isWindowsFormat() looks at every line, body included.
    while (cursor.next(&line)) {
      if (line.had_cr) {
        fail(Location{options.file_name, cursor.number()},
             "the line ends in CR LF (DOS/Windows format), which qsub refuses",
             "Unix line endings; convert with dos2unix");
      }
    }
  }

  // The command line comes last: its options override the script's, as with qsub.
  if (!options.command_line.empty()) {
    auto command_line = parseQsubCommandLine(options.command_line);
    Location where{options.file_name, 0};
    for (const auto& option : command_line.options) {
      if (option.option.size() == 2) {
        std::vector<Word> words{{option.option, 0, option.option.size()}};
        std::string text = option.option;
        if (!option.value.empty() || kQsubOptionsWithValue.find(option.option[1]) != std::string_view::npos) {
          words.push_back({option.value, text.size() + 1, text.size() + 1 + option.value.size()});
          text += " " + option.value;
        }
        applyQsubWords(builder, spec, words, text, where, option);
      } else {
        spec.directives.push_back(option);
        builder.passThrough(option.raw);
      }
    }
  }
  if (!spec.shell && out.shebang_interpreter) spec.shell = out.shebang_interpreter;
  builder.finish();
  return spec;
}

JobSpec parseJobScript(std::string_view content, const ParseOptions& options) {
  return parseJobScript(content, options, nullptr);
}

JobSpec parseJobScriptFile(const std::filesystem::path& path, const ParseOptions& options) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    int err = errno;
    throw Error("read job script", path.string(), describeErrno(err), {},
                err == ENOENT ? exit_code::kNotFound : exit_code::kKbatchError);
  }
  std::string content((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  ParseOptions file_options = options;
  if (file_options.file_name == "STDIN") file_options.file_name = path.string();
  JobSpec spec = parseJobScript(content, file_options);
  spec.script_path = path.string();
  return spec;
}

}  // namespace kbatch::rewrite
