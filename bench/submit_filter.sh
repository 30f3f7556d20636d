#!/bin/sh
# Submit-filter latency: runs `kbatch submit-filter` (TORQUE's SUBMITFILTER contract: script on
# stdin, new script on stdout) over a generated corpus of realistic job scripts and compares the
# median per-script time with `cat`, the passthrough floor, measured in the same run.
#
# Usage: bench/submit_filter.sh [KBATCH] [COUNT]
#   KBATCH defaults to build/kbatch-submit (the lean submit-path executable), COUNT (>= 1000 for
#   the issue's figure) to 1000. Pass build/kbatch to measure the full executable.
# Target (issue 2): under 1 ms per script; native jobs within 2x of cat.
set -eu
kbatch=${1:-build/kbatch-submit}
count=${2:-1000}
[ -x "$kbatch" ] || { echo "submit_filter.sh: no kbatch executable at $kbatch" >&2; exit 1; }
command -v python3 >/dev/null || { echo "submit_filter.sh: python3 is needed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$kbatch" "$count" "$work" <<'PY'
import os, random, statistics, subprocess, sys, time

kbatch, count, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(2)  # fixed seed: the same corpus on every run

BODY_LINES = [
    'cd "$PBS_O_WORKDIR"', 'module load gcc/12 openmpi', 'export OMP_NUM_THREADS=${PBS_NUM_PPN:-1}',
    'mpirun -np $PBS_NP ./solver input.dat > out.$PBS_JOBID', 'echo "started at $(date)"',
    'for f in data/*.csv; do python3 analyse.py "$f"; done', "awk '{s+=$1} END {print s}' sums.txt",
    'cat <<EOF > params.in\nsteps = 1000\ndt = 0.01\nEOF', 'srun ./sim --steps 1000',
    'if [ -f checkpoint ]; then ./resume checkpoint; fi', 'tar czf results.tgz results/',
    'rsync -a results/ "$HOME/archive/$PBS_JOBID/"', 'sleep 1', 'echo done',
]

def pbs_header(rng):
    lines = ['#PBS -N job%d' % rng.randrange(10000),
             '#PBS -l nodes=%d:ppn=%d' % (rng.choice([1, 1, 2, 4]), rng.choice([1, 4, 8, 16])),
             '#PBS -l walltime=%02d:%02d:00' % (rng.randrange(48), rng.randrange(60)),
             '#PBS -l mem=%dgb' % rng.choice([1, 2, 4, 16]),
             '#PBS -q %s' % rng.choice(['batch', 'long', 'gpu'])]
    if rng.random() < 0.5:
        lines += ['#PBS -j oe', '#PBS -m abe', '#PBS -M user@example.org']
    return lines

def slurm_header(rng):
    return ['#SBATCH --job-name=sim%d' % rng.randrange(10000),
            '#SBATCH -N %d' % rng.choice([1, 2]),
            '#SBATCH --ntasks-per-node=%d' % rng.choice([1, 8, 32]),
            '#SBATCH --time=%d:00:00' % rng.randrange(1, 24),
            '#SBATCH --mem=%dG' % rng.choice([2, 8, 32]),
            '#SBATCH --partition=batch', '#SBATCH -o out-%j.log']

scripts = {'native': [], 'container': []}
for i in range(count):
    kind = 'container' if rng.random() < 0.3 else 'native'
    header = pbs_header(rng) if rng.random() < 0.7 else slurm_header(rng)
    if kind == 'container':
        header.append(rng.choice(['#KBATCH --image registry.example.org/ml/pytorch:2.1',
                                  '#PBS -B ./a.out']))
    body = [rng.choice(BODY_LINES) for _ in range(rng.randrange(5, 120))]
    text = '#!/bin/bash\n' + '\n'.join(header) + '\n\n' + '\n'.join(body) + '\n'
    path = os.path.join(work, '%s-%04d.pbs' % (kind, i))
    with open(path, 'w') as handle:
        handle.write(text)
    scripts[kind].append(path)

def run_once(argv, path):
    with open(path, 'rb') as stdin:
        start = time.perf_counter_ns()
        result = subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter_ns() - start
    if result.returncode != 0:
        sys.exit('%s failed on %s with exit %d' % (argv[0], path, result.returncode))
    return elapsed

def median_ms(argv, paths):
    # Interleaving is done by the caller; here each script is timed once.
    return [run_once(argv, path) / 1e6 for path in paths]

filter_argv = [kbatch, 'submit-filter', '--kbatch-path=/usr/bin/kbatch']
results = {}
for kind in ('native', 'container'):
    kb, ct = [], []
    for path in scripts[kind]:
        # Alternate the two commands script by script so that drift on a shared machine hits both.
        ct.append(run_once(['cat'], path) / 1e6)
        kb.append(run_once(filter_argv, path) / 1e6)
    results[kind] = (statistics.median(kb), statistics.median(ct), len(kb))

all_kb = []
print('submit-filter latency over %d scripts (median per script, wall clock incl. process start)'
      % count)
print('%-10s %6s %12s %10s %7s' % ('kind', 'n', 'kbatch ms', 'cat ms', 'ratio'))
for kind, (kb, ct, n) in results.items():
    print('%-10s %6d %12.3f %10.3f %7.2f' % (kind, n, kb, ct, kb / ct))
PY
