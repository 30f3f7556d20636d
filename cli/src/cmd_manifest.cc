/// `kbatch manifest JOB_SCRIPT | [exec options] -- CMD`: prints the Pod that the Kubernetes
/// backend would create for the job, as YAML, without creating anything.

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "cmd_exec.h"
#include "cmd_k8s_options.h"
#include "command.h"
#include "kbatch/common/log.h"
#include "kbatch/k8s/backend.h"
#include "kbatch/k8s/manifest.h"
#include "kbatch/rewrite/parser.h"
#include "pod_image.h"
#include "pod_settings.h"
#include "site_policy.h"

namespace kbatch::cli {
namespace {

struct ManifestState {
  ExecFlags exec;
  K8sFlags k8s;
  std::optional<std::string> script;
  std::vector<std::string> command;
  std::optional<std::string> node;
  std::optional<std::string> as_user;
  bool json = false;
};

JobSpec jobFromScript(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("read job script", path, describeErrno(errno));
  std::stringstream content;
  content << in.rdbuf();
  const std::string text = content.str();
  rewrite::ParseOptions options;
  options.file_name = path;
  if (const char* prefix = std::getenv("PBS_DPREFIX")) options.pbs_dprefix = prefix;
  rewrite::ScriptLayout layout;
  JobSpec job = rewrite::parseJobScript(text, options, &layout);
  job.script_path = path;
  // The Pod runs the script's body with the script's shell, as `kbatch exec --job-body` would.
  std::string shell = job.shell.value_or(layout.shebang_interpreter.value_or("/bin/sh"));
  std::vector<std::string> command;
  std::istringstream words(shell);
  for (std::string word; words >> word;) command.push_back(word);
  command.push_back("-c");
  command.push_back(text.substr(layout.body_offset));
  command.push_back(std::filesystem::path(path).filename().string());
  job.command = command;
  return job;
}

void runManifest(ManifestState& state, int* exit_code) {
  // CLI11 fills SCRIPT with the first word after `--` when no script was named: a script and a
  // command together are not a valid call, and with --image a word that names no file is the
  // command, so that word belongs to the command.
  std::error_code ignored;
  const bool script_is_a_file =
      state.script && std::filesystem::is_regular_file(*state.script, ignored);
  if (state.script && (!state.command.empty() || (state.exec.image && !script_is_a_file))) {
    state.command.insert(state.command.begin(), *state.script);
    state.script.reset();
  }
  JobSpec job;
  if (state.script) {
    job = jobFromScript(*state.script);
  } else {
    if (state.command.empty()) {
      throw Error("print the Pod manifest", "kbatch manifest",
                  "name a job script, or give exec options and `-- CMD`");
    }
    job.command = state.command;
  }
  applyExecFlags(state.exec, job);
  applyBatchEnvironment(job, state.k8s);
  // The Pod `kbatch exec --backend k8s` would create, with the same site settings. A preview
  // creates nothing, so a job the policy refuses still gets its manifest, with the rule said.
  const policy::Policy& site = sitePolicy();
  k8s::PodIdentity identity{getuid(), getgid(), {}};
  policy::EvaluationContext context = policy::EvaluationContext::fromEnvironment();
  if (state.as_user) {
    // The preview is that user's job: rules that expand $USER and $HOME, and the namespace,
    // are judged for them, not for whoever runs the preview.
    const passwd* entry = getpwnam(state.as_user->c_str());
    if (entry == nullptr) throw Error("print the Pod manifest", *state.as_user, "no such user");
    identity = {entry->pw_uid, entry->pw_gid, entry->pw_name};
    context.user = entry->pw_name;
    context.uid = entry->pw_uid;
    context.home = entry->pw_dir;
  } else if (const passwd* entry = getpwuid(identity.uid)) {
    identity.user = entry->pw_name;
  }
  try {
    enforceSitePolicy(job, context, "run job");
  } catch (const Error& refusal) {
    log::warn("{}", refusal.oneLine());
  }
  if (job.image) job.image = pinnedPodImage(*job.image, site);
  job.job_id = k8s::effectiveJobId(job);
  const k8s::K8sSettings settings =
      settingsFromFlags(state.k8s, sitePodSettings(site, context, state.as_user));


  std::vector<std::string> hosts;
  for (const auto& host : job.hosts) {
    if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(host);
  }
  if (hosts.empty()) {
    char name[256] = {0};
    gethostname(name, sizeof name - 1);
    hosts.push_back(name);
  }
  std::unique_ptr<k8s::ApiClient> client;
  std::string ns = settings.namespace_name;
  if (!state.node || ns.empty()) {
    // Node lookup and the context's namespace need the cluster; an explicit --node and
    // --namespace make the manifest an offline preview.
    const k8s::ClusterAccess access = k8s::loadAccessFor(settings);
    ns = k8s::effectiveNamespace(settings, access);
    if (!state.node) client = std::make_unique<k8s::ApiClient>(access);
  }
  std::string output;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    k8s::PodPlacement placement;
    placement.batch_host = hosts[i];
    placement.node_name = state.node ? *state.node : k8s::resolveNodeName(*client, hosts[i], settings);
    placement.host_index = static_cast<int>(i);
    placement.host_count = static_cast<int>(hosts.size());
    auto pod = k8s::buildPodManifest(job, placement, identity, settings, ns);
    if (state.json) {
      all.push_back(pod);
    } else {
      if (i > 0) output += "---\n";
      output += k8s::toYaml(pod);
    }
  }
  if (state.json) output = (all.size() == 1 ? all[0] : all).dump(2) + "\n";
  std::fputs(output.c_str(), stdout);
  *exit_code = 0;
}

}  // namespace
}  // namespace kbatch::cli

KBATCH_REGISTER_COMMAND(manifest, 60, [](CLI::App& app, const kbatch::cli::GlobalOptions&, int* rc) {
  auto state = std::make_shared<kbatch::cli::ManifestState>();
  auto* manifest = app.add_subcommand(
      "manifest",
      "Print the Pod the Kubernetes backend would create: kbatch manifest JOB_SCRIPT, or "
      "kbatch manifest --image IMAGE [options] -- CMD [ARGS...]");
  kbatch::cli::addExecOptions(manifest, state->exec);
  kbatch::cli::addK8sOptions(manifest, state->k8s);
  manifest->add_option("--node", state->node,
                       "Kubernetes node to pin the Pod to (default: looked up in the cluster)");
  manifest->add_option("--as-user", state->as_user,
                       "Show the Pod as it would be for this user (default: you)");
  manifest->add_flag("--json", state->json, "JSON instead of YAML");
  manifest->add_option("SCRIPT", state->script, "The job script");
  manifest->add_option("COMMAND", state->command, "After `--`: the command and its arguments");
  manifest->callback([state, rc] { kbatch::cli::runManifest(*state, rc); });
});
