#include "kbatch/k8s/gc.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "kbatch/k8s/manifest.h"

namespace kbatch::k8s {
namespace {

struct CommandResult {
  int exit_status = -1;
  std::string out;
  std::string err;
};

/// Runs argv without a shell, capturing stdout and stderr.
CommandResult runCommand(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw Error("run", argv[0], describeErrno(errno));
  }
  pid_t pid = fork();
  if (pid < 0) throw Error("run", argv[0], describeErrno(errno));
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  // Outputs are small (one job): read stdout to its end, then stderr.
  for (auto [fd, into] : {std::pair{out_pipe[0], &result.out}, std::pair{err_pipe[0], &result.err}}) {
    char buffer[4096];
    for (;;) {
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      into->append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string firstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(no output)" : line;
}

}  // namespace

BatchJobState probeJobWithQstat(const std::string& qstat, const std::string& job_id) {
  const CommandResult result = runCommand({qstat, job_id});
  if (result.exit_status == 127 && result.out.empty() && result.err.empty()) {
    throw Error("ask the batch system about job", job_id, "cannot run '" + qstat + "'");
  }
  if (result.exit_status != 0) {
    // TORQUE: "qstat: Unknown Job Id 123.head" (exit 153). Slurm's wrapper prints nothing.
    if (result.err.find("Unknown Job") != std::string::npos ||
        (result.out.empty() && result.err.empty())) {
      return BatchJobState::kGone;
    }
    throw Error("ask the batch system about job", job_id,
                qstat + " exited with " + std::to_string(result.exit_status) + ": " +
                    firstLine(result.err.empty() ? result.out : result.err));
  }
  // Brief format: "Job id  Name  User  Time Use  S  Queue"; find the job's line.
  const std::string short_id = job_id.substr(0, job_id.find('.'));
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> columns;
    for (std::string word; words >> word;) columns.push_back(word);
    if (columns.size() < 6) continue;
    const std::string listed = columns[0].substr(0, columns[0].find('.'));
    if (listed != short_id) continue;
    return columns[4] == "C" ? BatchJobState::kGone : BatchJobState::kAlive;
  }
  return BatchJobState::kGone;
}

GcReport collectGarbage(ApiClient& client, const std::string& namespace_name,
                        const BatchJobProbe& probe, bool dry_run) {
  const std::string base = namespace_name.empty()
                               ? std::string("/api/v1/pods")
                               : "/api/v1/namespaces/" + urlEncode(namespace_name) + "/pods";
  const nlohmann::json list =
      client.get(base + "?labelSelector=" +
                 urlEncode(std::string(kManagedByLabel) + "=" + kManagedByValue));
  GcReport report;
  for (const auto& pod : list["items"]) {
    const auto& meta = pod["metadata"];
    const std::string where = meta.value("namespace", "") + "/" + meta.value("name", "");
    const std::string job_id =
        meta.contains("annotations") ? meta["annotations"].value(kJobIdAnnotation, "") : "";
    if (job_id.empty()) {
      report.errors.push_back(where + ": no " + std::string(kJobIdAnnotation) +
                              " annotation; left alone");
      continue;
    }
    BatchJobState state;
    if (job_id.rfind("exec-", 0) == 0) {
      const std::string phase = pod.contains("status") ? pod["status"].value("phase", "") : "";
      state = phase == "Succeeded" || phase == "Failed" ? BatchJobState::kGone
                                                        : BatchJobState::kAlive;
    } else {
      try {
        state = probe(job_id);
      } catch (const Error& error) {
        report.errors.push_back(where + ": " + error.oneLine());
        continue;
      }
    }
    const std::string entry = where + " (job " + job_id + ")";
    if (state == BatchJobState::kAlive) {
      report.kept.push_back(entry);
      continue;
    }
    if (!dry_run) {
      try {
        client.remove("/api/v1/namespaces/" + urlEncode(meta.value("namespace", "")) + "/pods/" +
                          urlEncode(meta.value("name", "")),
                      {{"kind", "DeleteOptions"},
                       {"apiVersion", "v1"},
                       {"preconditions", {{"uid", meta.value("uid", "")}}}});
      } catch (const ApiError& error) {
        if (error.httpStatus() != 404) {
          report.errors.push_back(where + ": " + error.oneLine());
          continue;
        }
      }
    }
    report.deleted.push_back(entry);
  }
  return report;
}

}  // namespace kbatch::k8s
