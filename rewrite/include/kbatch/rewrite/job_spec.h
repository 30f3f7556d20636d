#pragma once
/// JobSpec: the one value that travels between modules (DESIGN.md). `rewrite` builds it from a job
/// script; `kbatch exec` builds it from its flags and the batch job's environment. Absent values are
/// std::nullopt (null in JSON). Sizes are bytes, times are seconds.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kbatch {

/// Where a directive came from.
enum class DirectiveSource { kPbs, kSlurm, kKbatch, kCommandLine };

/// One directive as written, kept so that nothing is dropped and every error can name its line.
struct Directive {
  DirectiveSource source = DirectiveSource::kPbs;
  int line = 0;             ///< 1-based line of the script where the directive starts (0: command line)
  std::string prefix;       ///< "#PBS", "#SBATCH", "#KBATCH", or the -C / PBS_DPREFIX prefix
  std::string option;       ///< e.g. "-l", "-N", "--image", "--time"
  std::string value;        ///< the option's argument, continuation lines joined; empty if none
  std::string raw;          ///< the directive text exactly as in the script (all physical lines)
};

/// One host of an explicit node list: `nodes=host1:ppn=2+host2:ppn=2`.
struct HostRequest {
  std::string host;  ///< empty when the request was a count (`nodes=2`)
  int count = 1;     ///< how many nodes of this kind (`nodes=2:ppn=4` -> count 2)
  std::optional<int> ppn;
  std::optional<int> gpus;
  std::vector<std::string> properties;  ///< node properties, e.g. `nodes=1:bigmem`
};

struct Resources {
  std::optional<int> nodes;        ///< total node count (the minimum of a Slurm range)
  /// Slurm `--nodes=MIN-MAX`: the most nodes the job accepts; `nodes` holds MIN. The scheduler
  /// picks the count, so kbatch keeps the range instead of pretending the job gets MIN.
  std::optional<int> max_nodes;
  std::optional<int> ppn;          ///< processors per node (first node request's ppn)
  std::optional<int> procs;
  std::optional<std::uint64_t> mem_bytes;
  std::optional<std::uint64_t> pmem_bytes;
  std::optional<std::uint64_t> vmem_bytes;
  std::optional<std::uint64_t> walltime_s;
  std::optional<int> gpus;
  std::optional<int> cpus_per_task;  ///< Slurm --cpus-per-task (threads per task)
  std::vector<HostRequest> node_requests;
  /// Resources kbatch does not interpret (e.g. `-l software=matlab`), kept in order.
  std::vector<std::pair<std::string, std::string>> other;
};

/// `--bind SRC[:DST[:ro|rw]]`.
struct BindMount {
  std::string source;
  std::string destination;  ///< equals source when not given
  bool read_only = false;
};

enum class Backend { kLocal, kK8s };

struct JobSpec {
  std::string script_path;               ///< "" for stdin or for `kbatch exec`
  std::optional<std::string> name;       ///< -N / --job-name
  std::optional<std::string> shell;      ///< -S, else the shebang's interpreter
  Resources resources;
  std::optional<std::string> binary;     ///< the paper's `-B <binary>` / `#KBATCH --from-binary`
  std::optional<std::string> image;      ///< `#KBATCH --image`
  std::optional<Backend> backend;        ///< `#KBATCH --backend`; nullopt: policy default
  std::vector<BindMount> binds;          ///< `#KBATCH --bind`, `--bind`
  std::vector<std::pair<std::string, std::string>> env;  ///< `#KBATCH --env K=V`, `--env`
  std::optional<std::string> workdir;    ///< -d / --chdir / --workdir
  std::optional<std::string> array;      ///< -t / --array, as written
  std::vector<std::string> command;      ///< what runs in the container (`kbatch exec ... -- CMD`)
  bool needs_container = false;
  std::vector<Directive> directives;     ///< every directive, in script order
  /// Options kbatch does not interpret, kept verbatim (in order) for the batch system.
  std::vector<std::string> passthrough_options;

  // Batch context, filled on the compute node from the job's environment.
  std::optional<std::string> job_id;     ///< PBS_JOBID / SLURM_JOB_ID
  std::optional<std::string> array_index;
  std::optional<std::string> submit_dir; ///< PBS_O_WORKDIR / SLURM_SUBMIT_DIR
  std::vector<std::string> hosts;        ///< PBS_NODEFILE / SLURM_JOB_NODELIST, one per slot
  std::optional<std::string> user;
};

const char* toString(Backend backend);
const char* toString(DirectiveSource source);

}  // namespace kbatch
