#include "kbatch/rewrite/job_spec_json.h"

#include <nlohmann/json.hpp>

namespace kbatch::rewrite {
namespace {

// ordered_json keeps the fields in the order a reader expects (name first, directives last).
using json = nlohmann::ordered_json;

template <typename T>
json orNull(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

std::string jobSpecToJson(const JobSpec& spec, int indent) {
  const Resources& resources = spec.resources;
  json node_requests = json::array();
  for (const auto& request : resources.node_requests) {
    node_requests.push_back({{"host", request.host.empty() ? json(nullptr) : json(request.host)},
                             {"count", request.count},
                             {"ppn", orNull(request.ppn)},
                             {"gpus", orNull(request.gpus)},
                             {"properties", request.properties}});
  }
  json other = json::object();
  for (const auto& [name, value] : resources.other) other[name] = value;
  json directives = json::array();
  for (const auto& directive : spec.directives) {
    directives.push_back({{"line", directive.line},
                          {"source", toString(directive.source)},
                          {"prefix", directive.prefix},
                          {"option", directive.option},
                          {"value", directive.value},
                          {"raw", directive.raw}});
  }
  json binds = json::array();
  for (const auto& bind : spec.binds) {
    binds.push_back({{"source", bind.source},
                     {"destination", bind.destination},
                     {"read_only", bind.read_only}});
  }
  json env = json::object();
  for (const auto& [key, value] : spec.env) env[key] = value;
  json document = {
      {"script_path", spec.script_path.empty() ? json(nullptr) : json(spec.script_path)},
      {"name", orNull(spec.name)},
      {"shell", orNull(spec.shell)},
      {"resources",
       {{"nodes", orNull(resources.nodes)},
        {"max_nodes", orNull(resources.max_nodes)},
        {"ppn", orNull(resources.ppn)},
        {"procs", orNull(resources.procs)},
        {"cpus_per_task", orNull(resources.cpus_per_task)},
        {"mem_bytes", orNull(resources.mem_bytes)},
        {"pmem_bytes", orNull(resources.pmem_bytes)},
        {"vmem_bytes", orNull(resources.vmem_bytes)},
        {"walltime_s", orNull(resources.walltime_s)},
        {"gpus", orNull(resources.gpus)},
        {"node_requests", node_requests},
        {"other", other}}},
      {"binary", orNull(spec.binary)},
      {"image", orNull(spec.image)},
      {"backend", spec.backend ? json(toString(*spec.backend)) : json(nullptr)},
      {"binds", binds},
      {"env", env},
      {"workdir", orNull(spec.workdir)},
      {"array", orNull(spec.array)},
      {"needs_container", spec.needs_container},
      {"directives", directives},
      {"passthrough_options", spec.passthrough_options},
  };
  // Scripts may hold any bytes: replace invalid UTF-8 rather than fail to print the spec.
  return document.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace kbatch::rewrite
