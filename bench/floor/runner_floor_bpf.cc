// runner_floor_bpf FILE: writes the BPF program kbatch loads for its built-in default seccomp
// profile (runner::compileSeccompFilter, the same call the runner and `kbatch policy compile`
// make) as raw struct sock_filter[], for runner_floor --seccomp. Built by bench/runner_floor.sh.
#include <cstdio>

#include "kbatch/policy/seccomp_profile.h"
#include "kbatch/runner/seccomp_filter.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: runner_floor_bpf FILE\n");
    return 2;
  }
  const auto filter = kbatch::runner::compileSeccompFilter(kbatch::policy::defaultSeccompProfile());
  std::FILE* out = std::fopen(argv[1], "wb");
  if (out == nullptr ||
      std::fwrite(filter.program.data(), sizeof filter.program[0], filter.program.size(), out) !=
          filter.program.size() ||
      std::fclose(out) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::printf("%zu BPF instructions\n", filter.program.size());
  return 0;
}
