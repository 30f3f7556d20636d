#!/bin/bash
# run-fuzzer.sh FUZZER CORPUS_DIR SECONDS: a bounded libFuzzer run seeded from the committed corpus.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { echo "run-fuzzer: empty corpus $corpus" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$scratch/" "$scratch" "$corpus"
