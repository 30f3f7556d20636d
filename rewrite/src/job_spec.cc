#include "kbatch/rewrite/job_spec.h"

namespace kbatch {

const char* toString(Backend backend) {
  switch (backend) {
    case Backend::kLocal: return "local";
    case Backend::kK8s: return "k8s";
  }
  return "unknown";
}

const char* toString(DirectiveSource source) {
  switch (source) {
    case DirectiveSource::kPbs: return "pbs";
    case DirectiveSource::kSlurm: return "slurm";
    case DirectiveSource::kKbatch: return "kbatch";
    case DirectiveSource::kCommandLine: return "command-line";
  }
  return "unknown";
}

}  // namespace kbatch
