#!/bin/bash
# policy_bench.sh [BUILD_DIR]: what the policy costs a job.
#  1. `kbatch exec` start-up with a generated 200-rule policy vs an empty one (issue 6's figure):
#     the policy arrives as the tightening overlay ($KBATCH_POLICY_OVERLAY, read on top of the site
#     policy), and the job asks for more cpus than both allow, so exec stops right after loading
#     and evaluating (exit 125) and the two runs differ only in the policy. hyperfine measures both.
#  2. `kbatch policy explain` for an allowed job, the same two policies.
#  3. A micro-benchmark of load + evaluate alone (bench/policy_bench.cc), both policies.
# Target: < 1 ms per job. The machine may be shared: the script prints `uptime` with the figures.
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

uptime
# 1. kbatch exec: the same ceiling in both files, so both deny the 128-cpu job at the same rule.
echo "resources: {max_cpus: 64}" > "$work/overlay-empty.yaml"
exec_args=(exec --image registry.example.org/group198/app:1.0 --cpus 128 -- /bin/true)
for overlay in policy-200.yaml overlay-empty.yaml; do
  if KBATCH_POLICY_OVERLAY=$work/$overlay "$kbatch" "${exec_args[@]}" 2> "$work/exec.err"; then
    echo "policy_bench: kbatch exec was expected to refuse the job" >&2; exit 1
  fi
  grep -q "refused by the site policy" "$work/exec.err" ||
    { echo "policy_bench: unexpected exec failure: $(cat "$work/exec.err")" >&2; exit 1; }
done
hyperfine --warmup 20 --runs 300 -N -i --export-json "$work/exec.json" \
  -n "exec, 200-rule policy" "env KBATCH_POLICY_OVERLAY=$work/policy-200.yaml $kbatch ${exec_args[*]}" \
  -n "exec, empty policy" "env KBATCH_POLICY_OVERLAY=$work/overlay-empty.yaml $kbatch ${exec_args[*]}"
python3 - "$work/exec.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
big, empty = results[0]["mean"], results[1]["mean"]
print(f"kbatch exec: the 200-rule policy costs {(big - empty) * 1e3:.3f} ms more per job than an "
      f"empty one ({big * 1e3:.3f} ms vs {empty * 1e3:.3f} ms, ratio {big / empty:.3f})")
PY

# 2. kbatch policy explain
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

# 3. load + evaluate alone
# As kbatch is built: spdlog and fmt come from libkbatch_common.a (common/CMakeLists.txt), and
# yaml-cpp is linked statically when the build does (KBATCH_STATIC_CXX).
yaml_cpp=-lyaml-cpp
grep -q '^KBATCH_STATIC_CXX:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null &&
  yaml_cpp=$(sed -n 's/^KBATCH_YAML_CPP_ARCHIVE:FILEPATH=//p' "$build/CMakeCache.txt")
g++ -std=c++20 -O2 -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -I"$source_dir/policy/include" \
  -I"$source_dir/common/include" -I"$source_dir/rewrite/include" "$source_dir/bench/policy_bench.cc" \
  "$build/policy/libkbatch_policy.a" "$build/rewrite/libkbatch_rewrite.a" \
  "$build/common/libkbatch_common.a" "$yaml_cpp" -lcrypto -o "$work/policy_bench"
"$work/policy_bench" "$work/policy-200.yaml" 2000
"$work/policy_bench" "$work/policy-empty.yaml" 2000
