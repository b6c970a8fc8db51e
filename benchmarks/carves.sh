#!/usr/bin/env bash
# Train and evaluate several settings on several validation carves at once: one `bench.py --quality` run per
# (setting, carve), all in parallel. Meant for a GPU, which has room for many small runs; on a 2-core CPU run one.
#
#   benchmarks/carves.sh OUT "SEEDS" NAME=OPTIONS [NAME=OPTIONS ...] [-- BENCH_OPTIONS ...]
#   benchmarks/carves.sh outputs/gpu "3 4 5" frozen= ft01=--pixel-lr-scale=0.1 \
#       -- --device cuda --quality-minutes 3 --quality-train-arg=--num-workers=2
#
# OPTIONS are `textseg train` options, comma-separated (empty: the defaults). Each run writes OUT/NAME/seedS/ (the run
# under refine/, its evaluation under refine/eval/) and OUT/NAME/results_seedS.md, and logs to OUT/NAME/seedS.log.
# Each process gets THREADS torch threads (default: cores / runs, at least 1): with torch's default of one thread per
# core in every process, many processes oversubscribe the cores and validation slows to a crawl.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then sed -n 2,12p "$0" >&2; exit 2; fi
out=$1 seeds=$2
shift 2
configs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do configs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
runs=$(( ${#configs[@]} * $(wc -w <<<"$seeds") ))
[ "$runs" -gt 0 ] || { echo "carves.sh: no settings or no seeds" >&2; exit 2; }
per_run=$(( $(nproc) / runs ))
export OMP_NUM_THREADS=${THREADS:-$(( per_run > 0 ? per_run : 1 ))}
py=${PYTHON:-.venv/bin/python}
pids=()
for cfg in "${configs[@]}"; do
  [[ "$cfg" == *=* ]] || { echo "carves.sh: $cfg is not NAME=OPTIONS" >&2; exit 2; }
  name=${cfg%%=*} extra=()
  IFS=, read -ra options <<<"${cfg#*=}"
  for option in "${options[@]}"; do [ -n "$option" ] && extra+=("--quality-train-arg=$option"); done
  mkdir -p "$out/$name"
  for seed in $seeds; do
    "$py" benchmarks/bench.py --skip-speed --quality --quality-decoders refine --seed "$seed" \
      --quality-out "$out/$name/seed$seed" --results "$out/$name/results_seed$seed.md" ${extra[@]+"${extra[@]}"} "$@" \
      > "$out/$name/seed$seed.log" 2>&1 &
    pids+=($!)
    echo "started $name seed $seed (pid $!, $OMP_NUM_THREADS threads)"
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
for f in "$out"/*/results_seed*.md; do [ -f "$f" ] && echo "$f: $(grep -h "^| refine" "$f" | cut -d"|" -f3-9)"; done
[ "$failed" = 0 ] || { echo "carves.sh: $failed run(s) failed; see $out/*/seed*.log" >&2; exit 1; }
