#!/usr/bin/python3
"""Times commands in interleaved rounds: each round runs every command once, in turn, so that a
machine whose speed drifts over seconds (shared or virtual machines) slows every command alike;
hyperfine runs all of one command's runs before the next command's.

usage: interleave.py [--runs N] [--warmup N] --export-json FILE -n NAME CMD [-n NAME CMD ...]
CMD is split on whitespace (no shell), started with posix_spawn and waited for; a command that
fails stops the benchmark. The JSON has hyperfine's shape ({"results": [{"command", "mean",
"median", "min", "max", "stddev", "times"}]}), in seconds, so the callers read either; each
result also has "cpu_times" and "cpu_median": user + system CPU of the command and of the children
it waited for.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time


def run_once(argv):
    """Returns the wall time and the CPU time (user + system, every thread of the process and of
    the children it waited for), in seconds."""
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    elapsed = (time.perf_counter_ns() - start) / 1e9
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"interleave: '{' '.join(argv)}' ended with status {status}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--export-json", required=True)
    parser.add_argument("-n", nargs=2, action="append", metavar=("NAME", "CMD"), required=True)
    args = parser.parse_args()
    commands = []
    for name, text in args.n:
        argv = text.split()
        path = shutil.which(argv[0])
        if path is None:
            sys.exit(f"interleave: {argv[0]}: command not found")
        commands.append((name, [path] + argv[1:]))
    times = {name: [] for name, _ in commands}
    cpu_times = {name: [] for name, _ in commands}
    for round_number in range(args.warmup + args.runs):
        for name, argv in commands:
            elapsed, cpu = run_once(argv)
            if round_number >= args.warmup:
                times[name].append(elapsed)
                cpu_times[name].append(cpu)
    results = [{"command": name, "mean": statistics.mean(values),
                "median": statistics.median(values), "min": min(values), "max": max(values),
                "stddev": statistics.stdev(values), "times": values,
                "cpu_median": statistics.median(cpu_times[name]), "cpu_times": cpu_times[name]}
               for name, values in times.items()]
    with open(args.export_json, "w") as out:
        json.dump({"results": results, "interleaved": True, "runs": args.runs}, out)


if __name__ == "__main__":
    main()
