#!/bin/bash
# The paper's Tables 1 and 2 on one node: the Fibonacci job script (Listing 2, examples/fib.pbs)
# and the compiled binary job (Listing 3, examples/fib.cpp as a.out with `#PBS -B a.out`), each run
# natively and with `kbatch run` (a container from a cached dependency image), 100 runs each,
# min/mean/max in seconds, and what the container adds over native.
# The paper's container figures were 2.90 s (script) and 8.64 s (binary); the target is < 20 ms added.
#
# usage: bench/exec_paper_tables.sh KBATCH [USER] [RUNS]
set -euo pipefail
kbatch=$(readlink -f "${1:?usage: exec_paper_tables.sh KBATCH [USER] [RUNS]}")
user=${2:-$([ "$(id -u)" -eq 0 ] && echo kbtest || id -un)}
runs=${3:-100}
examples=$(cd "$(dirname "$0")/../examples" && pwd)
work=$(mktemp -d /tmp/kbatch-paper-tables.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$examples/fib.pbs" "$examples/fib-binary.pbs" "$work/"
c++ -O2 -o "$work/a.out" "$examples/fib.cpp"
chmod -R a+rX "$work"
chown -R "$user" "$work" 2>/dev/null || true
json=$work/results.json

as_user=()
[ "$(id -un)" != "$user" ] && as_user=(runuser -u "$user" --)
cd "$work"
# Warm-up builds the dependency images once; the timed runs reuse them from the cache, as every
# job after the first does.
"${as_user[@]}" "$kbatch" run fib.pbs >/dev/null
"${as_user[@]}" "$kbatch" run fib-binary.pbs >/dev/null
"${as_user[@]}" hyperfine -N --warmup 5 --runs "$runs" --export-json "$json" \
  -n "script native" "bash fib.pbs" \
  -n "script kbatch" "$kbatch run fib.pbs" \
  -n "binary native" "./a.out" \
  -n "binary kbatch" "$kbatch run fib-binary.pbs" >&2

python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print(f"{'job':<16} {'mean s':>9} {'max s':>9} {'min s':>9}   (paper: native / container mean)")
paper = {"script": "0.024 / 2.90", "binary": "0.24 / 8.64"}
for kind in ["script", "binary"]:
    for how in ["native", "kbatch"]:
        x = r[f"{kind} {how}"]
        print(f"{kind+' '+how:<16} {x['mean']:9.4f} {x['max']:9.4f} {x['min']:9.4f}   {paper[kind] if how == 'native' else ''}")
    added = (r[f"{kind} kbatch"]["mean"] - r[f"{kind} native"]["mean"]) * 1e3
    print(f"{kind}: kbatch adds {added:.1f} ms over native (target < 20 ms)")
PY
