#!/bin/bash
# policy_bench.sh [BUILD_DIR]: what the policy costs a job.
#  1. `kbatch policy explain` for one job with a generated 200-rule policy vs an empty policy,
#     measured together by hyperfine (the difference is load + evaluate, as part of process start).
#  2. A micro-benchmark of load + evaluate alone (bench/policy_bench.cc), both policies.
# Target: < 1 ms per job. (`kbatch exec` does not read the policy yet; once it does, time
# `kbatch exec` the same way.)
set -euo pipefail
here=$(dirname "$0")
source_dir=$(cd "$here/.." && pwd)
build=$(cd "${1:-$source_dir/build}" && pwd)
kbatch=${KBATCH:-$build/kbatch}
[ -x "$kbatch" ] || { echo "policy_bench: no kbatch in $build" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "policy_bench: hyperfine is not installed" >&2; exit 1; }

# The loader refuses files under world-writable directories (/tmp), so work in the build tree.
work=$build/policy-bench
rm -rf "$work" && mkdir -p "$work" && chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# 200 rules: 120 image patterns, 76 bind rules, 4 resource ceilings.
{
  echo "version: 1"
  echo "images:"
  echo "  registries: [registry.example.org, docker.io]"
  echo "  allowed:"
  for i in $(seq 0 119); do echo "    - \"registry.example.org/group$((i * 2))/*\""; done
  echo "binds:"
  echo "  allowed:"
  echo "    - { path: \$HOME, access: rw }"
  echo "    - { path: \$PBS_O_WORKDIR, access: rw }"
  for i in $(seq 0 73); do echo "    - { path: /project/p$((i * 3))/shared, access: rw }"; done
  echo "resources: {max_cpus: 64, max_memory: 256G, max_walltime: \"72:00:00\", max_gpus: 4}"
} > "$work/policy-200.yaml"
echo "# empty policy: the built-in defaults" > "$work/policy-empty.yaml"
echo "generated policy: $(grep -c '^    - ' "$work/policy-200.yaml") list rules + 4 ceilings"

job_args=(--image registry.example.org/group198/app:1.0 --bind /home/alice/run/data:/data:ro
          --workdir /home/alice/run --cpus 8 --memory 8gb --walltime 1:00:00)
export PBS_O_WORKDIR=/home/alice/run
# Both policies allow this job (the 200-rule one through pattern group198 and $PBS_O_WORKDIR), so
# both runs evaluate every rule that applies; explain would exit 1 on a denial and stop the script.
"$kbatch" policy explain --policy "$work/policy-200.yaml" "${job_args[@]}" | tail -1
"$kbatch" policy explain --policy "$work/policy-empty.yaml" "${job_args[@]}" | tail -1

hyperfine --warmup 20 --runs 300 -N --export-json "$work/hyperfine.json" \
  -n "explain, 200-rule policy" "$kbatch policy explain --policy $work/policy-200.yaml ${job_args[*]}" \
  -n "explain, empty policy" "$kbatch policy explain --policy $work/policy-empty.yaml ${job_args[*]}"
python3 - "$work/hyperfine.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
big, empty = results[0]["mean"], results[1]["mean"]
print(f"200-rule policy costs {(big - empty) * 1e3:.3f} ms more per job than an empty one "
      f"({big * 1e3:.3f} ms vs {empty * 1e3:.3f} ms, ratio {big / empty:.3f})")
PY

g++ -std=c++20 -O2 -I"$source_dir/policy/include" -I"$source_dir/common/include" \
  -I"$source_dir/rewrite/include" "$source_dir/bench/policy_bench.cc" \
  "$build/policy/libkbatch_policy.a" "$build/rewrite/libkbatch_rewrite.a" \
  "$build/common/libkbatch_common.a" -lyaml-cpp -lspdlog -lfmt -o "$work/policy_bench"
"$work/policy_bench" "$work/policy-200.yaml" 2000
"$work/policy_bench" "$work/policy-empty.yaml" 2000
