#!/bin/bash
# policy_bench.sh [BUILD_DIR]: what the policy costs a job. As root.
#  1. `kbatch exec` start-up with a generated 200-rule site policy vs an empty one (issue 6's
#     figure), each compiled (`kbatch policy compile`, as sites run) and as YAML only: the job asks
#     for more cpus than both allow, so exec stops right after loading and evaluating (exit 125)
#     and the runs differ only in the policy. hyperfine measures each.
#  2. `kbatch policy explain` for an allowed job, the same two policies.
#  3. A micro-benchmark of load + evaluate alone (bench/policy_bench.cc), both policies, and the
#     200-rule one from its compiled form.
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
# The policies are the site policy, as jobs meet it, laid over /etc (as root, in a private mount
# namespace); compiled as an admin does (`kbatch policy compile`), and as YAML only.
# This machine's speed drifts by tens of percent over seconds, so whole hyperfine runs of one case
# after another disagree by more than what is measured here. The cases therefore take turns run by
# run (in a shuffled order each round), and each round's differences are taken within the round:
# the figure is the median of the paired differences. (Python's spawn adds the same to every case.)
echo "resources: {max_cpus: 64}" > "$work/policy-ceiling-only.yaml"
[ "$(id -u)" -eq 0 ] || { echo "policy_bench: run as root (the site policy is laid over /etc)" >&2; exit 1; }
for name in policy-200 policy-ceiling-only; do
  "$kbatch" policy compile --policy "$work/$name.yaml" >/dev/null
done
"$source_dir/tests/integration/with-site-policy.sh" "$work/policy-ceiling-only.yaml" \
  python3 - "$work" "$kbatch" "${ROUNDS:-400}" <<'PY'
import os, random, shutil, statistics, subprocess, sys, time
work, kbatch, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
# A writable /etc/kbatch inside this mount namespace only: each run gets its case's files.
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "kbatch-policy-bench", "/etc/kbatch"], check=True)
cases = {"200 compiled": ("policy-200", True), "200 yaml": ("policy-200", False),
         "empty compiled": ("policy-ceiling-only", True), "empty yaml": ("policy-ceiling-only", False)}
command = [kbatch, "exec", "--image", "registry.example.org/group198/app:1.0", "--cpus", "128", "--",
           "/bin/true"]
def install(case):
    name, compiled = cases[case]
    for leftover in ("/etc/kbatch/policy.yaml", "/etc/kbatch/policy.yaml.compiled"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    shutil.copyfile(f"{work}/{name}.yaml", "/etc/kbatch/policy.yaml")
    if compiled:
        shutil.copyfile(f"{work}/{name}.yaml.compiled", "/etc/kbatch/policy.yaml.compiled")
def run(case):
    install(case)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 125 or b"refused by the site policy" not in result.stderr:
        sys.exit(f"policy_bench: {case}: kbatch exec was expected to refuse the job: {result.stderr!r}")
    return elapsed * 1e3
for case in cases:  # warm-up, and the refusal checked once per case
    for _ in range(10):
        run(case)
    status = subprocess.run([kbatch, "policy", "check"], capture_output=True, text=True).stdout
    used = "is current" in status
    if used != cases[case][1]:
        sys.exit(f"policy_bench: {case}: the compiled policy is {'' if used else 'not '}used: {status}")
times = {case: [] for case in cases}
for _ in range(rounds):
    order = list(cases)
    random.shuffle(order)
    for case in order:
        times[case].append(run(case))
for label, big, empty in (("compiled", "200 compiled", "empty compiled"), ("YAML", "200 yaml", "empty yaml")):
    deltas = [b - e for b, e in zip(times[big], times[empty])]
    print(f"kbatch exec, {label} site policy: the 200-rule policy costs {statistics.median(deltas):.3f} ms "
          f"more per job than an empty one (median of {rounds} paired runs; "
          f"median exec {statistics.median(times[big]):.3f} ms vs {statistics.median(times[empty]):.3f} ms)")
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
"$kbatch" policy compile --policy "$work/policy-200.yaml" >/dev/null
"$work/policy_bench" "$work/policy-200.yaml" 2000 site
"$work/policy_bench" "$work/policy-empty.yaml" 2000
