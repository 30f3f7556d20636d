#include "kbatch/policy/seccomp_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <vector>

#include "kbatch/common/error.h"
#include "text_checks.h"

namespace kbatch::policy {
namespace {

using nlohmann::json;

const std::map<std::string, SeccompAction>& actionsByName() {
  static const std::map<std::string, SeccompAction> kActions = {
      {"SCMP_ACT_ALLOW", SeccompAction::kAllow},
      {"SCMP_ACT_ERRNO", SeccompAction::kErrno},
      {"SCMP_ACT_KILL", SeccompAction::kKill},
      {"SCMP_ACT_KILL_THREAD", SeccompAction::kKill},
      {"SCMP_ACT_KILL_PROCESS", SeccompAction::kKillProcess},
      {"SCMP_ACT_TRAP", SeccompAction::kTrap},
      {"SCMP_ACT_LOG", SeccompAction::kLog}};
  return kActions;
}

const std::vector<std::string>& comparisonNames() {
  static const std::vector<std::string> kOps = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                                                "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                                "SCMP_CMP_MASKED_EQ"};
  return kOps;
}

class ProfileReader {
 public:
  explicit ProfileReader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& cause,
                         const std::string& hint = {}) const {
    throw Error("read seccomp profile", origin_, field + ": " + cause, hint);
  }

  void checkKeys(const json& object, const std::string& field,
                 const std::vector<std::string>& known) const {
    if (!object.is_object()) fail(field, "expected an object, found " + typeName(object));
    for (const auto& [key, value] : object.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      auto suggestion = detail::closestMatch(key, known);
      fail(field.empty() ? key : field + "." + key, "unknown field",
           suggestion ? "did you mean '" + *suggestion + "'?" : std::string());
    }
  }

  static std::string typeName(const json& value) { return value.type_name(); }

  std::string string(const json& value, const std::string& field) const {
    if (!value.is_string()) fail(field, "expected a string, found " + typeName(value));
    return value.get<std::string>();
  }

  unsigned long long unsignedNumber(const json& value, const std::string& field,
                                    unsigned long long max) const {
    if (!value.is_number_unsigned()) {
      fail(field, "expected a non-negative integer, found " + typeName(value));
    }
    auto number = value.get<unsigned long long>();
    if (number > max) fail(field, "must be at most " + std::to_string(max));
    return number;
  }

  SeccompAction action(const json& value, const std::string& field) const {
    std::string name = string(value, field);
    auto found = actionsByName().find(name);
    if (found != actionsByName().end()) return found->second;
    if (name == "SCMP_ACT_TRACE" || name == "SCMP_ACT_NOTIFY") {
      fail(field, name + " needs a tracer or a notification agent, which kbatch does not run");
    }
    std::vector<std::string> names;
    for (const auto& [known, unused] : actionsByName()) names.push_back(known);
    auto suggestion = detail::closestMatch(name, names);
    fail(field, "unknown action '" + name + "'",
         suggestion ? "did you mean '" + *suggestion + "'?" : std::string());
  }

  SeccompProfile read(const json& root) const {
    checkKeys(root, "", {"defaultAction", "defaultErrnoRet", "architectures", "archMap",
                         "syscalls", "flags", "listenerPath", "listenerMetadata"});
    SeccompProfile profile;
    profile.origin = origin_;
    if (!root.contains("defaultAction")) fail("defaultAction", "missing");
    profile.default_action = action(root["defaultAction"], "defaultAction");
    if (root.contains("defaultErrnoRet")) {
      profile.default_errno_ret =
          static_cast<int>(unsignedNumber(root["defaultErrnoRet"], "defaultErrnoRet", 4095));
    }
    if (root.contains("flags") && !root["flags"].empty()) {
      fail("flags", "seccomp filter flags are not supported (the runner sets its own)");
    }
    if (root.contains("listenerPath") || root.contains("listenerMetadata")) {
      fail("listenerPath", "user-space notification is not supported");
    }
    if (root.contains("architectures")) {
      const auto& list = root["architectures"];
      if (!list.is_array()) fail("architectures", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i) {
        profile.architectures.push_back(
            string(list[i], "architectures[" + std::to_string(i) + "]"));
      }
    }
    if (root.contains("archMap")) {
      // Docker's format: each entry names an architecture and the ones it can also run.
      const auto& list = root["archMap"];
      if (!list.is_array()) fail("archMap", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i) {
        std::string field = "archMap[" + std::to_string(i) + "]";
        checkKeys(list[i], field, {"architecture", "subArchitectures"});
        if (!list[i].contains("architecture")) fail(field + ".architecture", "missing");
        profile.architectures.push_back(string(list[i]["architecture"], field + ".architecture"));
        if (list[i].contains("subArchitectures")) {
          const auto& subs = list[i]["subArchitectures"];
          if (!subs.is_array()) fail(field + ".subArchitectures", "expected an array");
          for (std::size_t k = 0; k < subs.size(); ++k) {
            profile.architectures.push_back(
                string(subs[k], field + ".subArchitectures[" + std::to_string(k) + "]"));
          }
        }
      }
    }
    for (const auto& arch : profile.architectures) {
      if (arch.rfind("SCMP_ARCH_", 0) != 0) {
        fail("architectures", "'" + arch + "' is not an SCMP_ARCH_* name");
      }
    }
    if (root.contains("syscalls")) {
      const auto& list = root["syscalls"];
      if (!list.is_array()) fail("syscalls", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i) {
        profile.rules.push_back(readRule(list[i], "syscalls[" + std::to_string(i) + "]"));
      }
    }
    return profile;
  }

 private:
  SeccompRule readRule(const json& entry, const std::string& field) const {
    checkKeys(entry, field,
              {"names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"});
    SeccompRule rule;
    for (const char* conditional : {"includes", "excludes"}) {
      if (entry.contains(conditional) && !entry[conditional].empty()) {
        fail(field + "." + conditional,
             "conditional rules are not supported: both backends must enforce the same filter",
             "flatten the profile for the capabilities and architectures your site uses");
      }
    }
    if (entry.contains("names")) {
      const auto& names = entry["names"];
      if (!names.is_array()) fail(field + ".names", "expected an array");
      for (std::size_t k = 0; k < names.size(); ++k) {
        rule.names.push_back(string(names[k], field + ".names[" + std::to_string(k) + "]"));
      }
    }
    if (entry.contains("name")) rule.names.push_back(string(entry["name"], field + ".name"));
    if (rule.names.empty()) fail(field + ".names", "a rule must name at least one syscall");
    for (const auto& name : rule.names) {
      bool plausible = !name.empty() && name.size() < 64 &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                       });
      if (!plausible) fail(field + ".names", "'" + name + "' is not a syscall name");
    }
    if (!entry.contains("action")) fail(field + ".action", "missing");
    rule.action = action(entry["action"], field + ".action");
    rule.errno_ret = 1;
    if (entry.contains("errnoRet")) {
      rule.errno_ret =
          static_cast<int>(unsignedNumber(entry["errnoRet"], field + ".errnoRet", 4095));
    }
    if (entry.contains("comment")) rule.reason = string(entry["comment"], field + ".comment");
    if (entry.contains("args")) {
      const auto& args = entry["args"];
      if (!args.is_array()) fail(field + ".args", "expected an array");
      for (std::size_t k = 0; k < args.size(); ++k) {
        std::string arg_field = field + ".args[" + std::to_string(k) + "]";
        checkKeys(args[k], arg_field, {"index", "value", "valueTwo", "op"});
        SeccompArg arg;
        if (!args[k].contains("index")) fail(arg_field + ".index", "missing");
        arg.index = static_cast<unsigned>(unsignedNumber(args[k]["index"], arg_field + ".index", 5));
        if (args[k].contains("value")) {
          arg.value = unsignedNumber(args[k]["value"], arg_field + ".value", ~0ULL);
        }
        if (args[k].contains("valueTwo")) {
          arg.value_two = unsignedNumber(args[k]["valueTwo"], arg_field + ".valueTwo", ~0ULL);
        }
        if (!args[k].contains("op")) fail(arg_field + ".op", "missing");
        arg.op = string(args[k]["op"], arg_field + ".op");
        const auto& ops = comparisonNames();
        if (std::find(ops.begin(), ops.end(), arg.op) == ops.end()) {
          auto suggestion = detail::closestMatch(arg.op, ops);
          fail(arg_field + ".op", "unknown comparison '" + arg.op + "'",
               suggestion ? "did you mean '" + *suggestion + "'?" : std::string());
        }
        rule.args.push_back(std::move(arg));
      }
    }
    return rule;
  }

  std::string origin_;
};

}  // namespace

std::string writeOciSeccompJson(const SeccompProfile& profile) {
  // Ordered as the OCI runtime spec lists the fields, for people reading the file.
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  root["defaultAction"] = toOciName(profile.default_action);
  if (profile.default_action == SeccompAction::kErrno) {
    root["defaultErrnoRet"] = profile.default_errno_ret;
  }
  root["architectures"] = profile.architectures;
  nlohmann::ordered_json syscalls = nlohmann::ordered_json::array();
  for (const auto& rule : profile.rules) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["names"] = rule.names;
    entry["action"] = toOciName(rule.action);
    if (rule.action == SeccompAction::kErrno) entry["errnoRet"] = rule.errno_ret;
    if (!rule.args.empty()) {
      nlohmann::ordered_json args = nlohmann::ordered_json::array();
      for (const auto& arg : rule.args) {
        args.push_back(nlohmann::ordered_json{{"index", arg.index},
                        {"value", arg.value},
                        {"valueTwo", arg.value_two},
                        {"op", arg.op}});
      }
      entry["args"] = std::move(args);
    }
    syscalls.push_back(std::move(entry));
  }
  root["syscalls"] = std::move(syscalls);
  return root.dump(2) + "\n";
}

SeccompProfile readOciSeccompJson(std::string_view text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& error) {
    auto where = detail::positionOfOffset(text, error.byte > 0 ? error.byte - 1 : 0);
    throw Error("read seccomp profile",
                origin + ":" + std::to_string(where.line) + ":" + std::to_string(where.column),
                "not valid JSON");
  } catch (const json::exception& error) {
    // E.g. out_of_range 406, a number too large for any JSON number type (found by fuzzing).
    throw Error("read seccomp profile", origin, std::string("not usable JSON: ") + error.what());
  }
  return ProfileReader(origin).read(root);
}

}  // namespace kbatch::policy
