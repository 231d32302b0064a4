#!/usr/bin/env bash
# Table 1 on one GPU in a few minutes, at a reduced schedule: Sprites (the six presets of table1.sh,
# 3 seeds each) and SMMNIST (full and baseline, seed 0), each with its judge, all sharing one GPU.
# One training process leaves most of an H100/H200 idle (the step is bound by the host, see
# docs/performance.md), so eight trainings (six Sprites presets, two SMMNIST) run side by side;
# the seeds of one preset run one after the other.
#
#   SPRITES_ROOT=/path/to/lpc-sprites bash benchmarks/gpu_table1.sh [OUT]
#
# EPOCHS (default 8) and SMMNIST_EPOCHS (default 8) replace the recipes' 300 epochs: this is a
# reduced schedule and every number it gives must be labelled so. SMMNIST=0 leaves SMMNIST out
# (benchmarks/gpu_smmnist.sh has its own pass), so the six Sprites presets have the GPU alone.
# TRAIN_LIMIT (seconds, default 330) stops the trainings that are still running (they checkpoint;
# unfinished runs are listed in unfinished.txt and not scored); the judged evaluations and the
# packing come after it, about a minute more on an H200 for 18 Sprites runs. Where one call may run
# 10 minutes at most, EPOCHS=10 SMMNIST=0 TRAIN_LIMIT=420 fits (the arithmetic: docs/results.md).
# OUT receives few files (a device slot brings back at most 8, 2 folders down), none of them
# checkpoints or judges: log.txt (this script's output, written as it goes, with the tables),
# device.txt, gpu-utilisation.csv, compare-sprites.md and compare-smmnist.md (every metric, mean ±
# std over seeds), results.tgz (per table: compare.csv, the judge's log, unfinished.txt, each
# preset's log, and each run's eval.json, metrics.jsonl, recipe and logs) and images.tgz (seed 0's
# pictures and report). `tar -xzf OUT/results.tgz -C DIR` gives DIR/sprites/compare.csv for
# benchmarks/table1_summary.py. SPRITES_SET / SMMNIST_SET add "key=value ..." overrides to every
# run of that table (the first table in docs/results.md used SPRITES_SET="tasks.0.weight=1", the
# Sprites recipe's λ2 before it was raised to 1000). SMOKE=1: a few steps of each, on DEVICE
# (default cuda).
set -uo pipefail
OUT=${1:-benchmarks/results/gpu-table1}
WORK=${WORK:-/tmp/gpu-table1}
: "${SPRITES_ROOT:?set SPRITES_ROOT to the lpc-sprites folder}"
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-8}
SMMNIST_EPOCHS=${SMMNIST_EPOCHS:-8}
TRAIN_LIMIT=${TRAIN_LIMIT:-330}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-6}
# Trained long, the SMMNIST judge memorises 5,000 sequences (docs/results.md): it trains on SMMNIST_JUDGE_TRAIN generated
# training sequences of the same data (the runs' 5,000 and more; the same test split), SMMNIST_JUDGE_EPOCHS passes.
SMMNIST_JUDGE_TRAIN=${SMMNIST_JUDGE_TRAIN:-20000}
SMMNIST_JUDGE_EPOCHS=${SMMNIST_JUDGE_EPOCHS:-8}
# Batch norm in the judge's frame encoder learns the digits faster (CPU: +11 / +14 points at 500 steps; docs/results.md).
SMMNIST_JUDGE_ARGS=${SMMNIST_JUDGE_ARGS:---norm batch}
export DISENTANGLE_CACHE_DIR=${DISENTANGLE_CACHE_DIR:-/tmp/disentangle-cache} PYTHONUNBUFFERED=1
SMMNIST=${SMMNIST:-1}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
small_s="" small_m=""
if [ "${SMOKE:-0}" = 1 ]; then
  small_s="data.max_train=64 data.max_test=32 data.resolution=32 model.encoder.channels=[8,8,8] model.decoder.channels=[8,8,8] train.max_steps=4"
  small_m="data.num_train=64 data.num_test=32 model.encoder.channels=[8,8,8,8] model.decoder.channels=[8,8,8,8] train.max_steps=4"
  JUDGE_EPOCHS=1 SMMNIST_JUDGE_EPOCHS=1 SMMNIST_JUDGE_TRAIN=128
fi
echo "=== start $(date +%T)"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
 python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)") | tee "$OUT/device.txt"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/gpu-utilisation.csv" 2>&1 &
  smi_pid=$!
fi

SECONDS=0
RECIPE=recipes/sprites.toml EXTRA="data.root=$SPRITES_ROOT train.epochs=$EPOCHS ${SPRITES_SET:-} $small_s" DEVICE=$DEVICE \
  PARALLEL=6 EVAL=later JUDGE_EPOCHS=$JUDGE_EPOCHS TRAIN_LIMIT=$TRAIN_LIMIT \
  bash benchmarks/table1.sh "$WORK/sprites" > "$WORK/sprites.log" 2>&1 &
sprites_pid=$!
sets=(sprites)
if [ "$SMMNIST" = 1 ]; then
  sets+=(smmnist)
  RECIPE=recipes/smmnist.toml EXTRA="train.epochs=$SMMNIST_EPOCHS ${SMMNIST_SET:-} $small_m" DEVICE=$DEVICE SEEDS=0 PRESETS="full baseline" \
    PARALLEL=2 EVAL=later JUDGE_EPOCHS=$SMMNIST_JUDGE_EPOCHS JUDGE_EXTRA="data.num_train=$SMMNIST_JUDGE_TRAIN" JUDGE_ARGS="$SMMNIST_JUDGE_ARGS" TRAIN_LIMIT=$TRAIN_LIMIT \
    bash benchmarks/table1.sh "$WORK/smmnist" > "$WORK/smmnist.log" 2>&1 &
  smmnist_pid=$!
fi
wait $sprites_pid ${smmnist_pid:-}
echo "=== trainings and evaluations done after ${SECONDS} s ($(date +%T))"
[ -n "${smi_pid:-}" ] && kill "$smi_pid"

for set in "${sets[@]}"; do
  echo "=== $set"
  if [ -f "$WORK/$set/compare.md" ]; then
    cp "$WORK/$set/compare.md" "$OUT/compare-$set.md"
    paper=(); [ "$set" = sprites ] && paper=(--paper dynamic)  # the paper's Acc / IS / H(y|x) / H(y)
    python3 benchmarks/table1_summary.py "$WORK/$set/compare.csv" "${paper[@]}"
  else
    tail -20 "$WORK/$set.log"
  fi
done

# bring back what the docs need in a few files: no checkpoints, no judges
cd "$WORK" || exit 1
tar --exclude=checkpoints --exclude='*.pt' --exclude=images --exclude=report.html \
  -czf "$OUT/results.tgz" "${sets[@]/%/.log}" "${sets[@]}"
pictures() {  # seed 0's pictures (and reports, unless told --exclude=report.html) into images.tgz
  tar --exclude=checkpoints --exclude='*.pt' --exclude=environment.json --exclude=eval.json \
    --exclude=metrics.jsonl --exclude=recipe.toml --exclude=sweep-done.json --exclude=evaluate.log "$@" \
    -czf "$OUT/images.tgz" $(find "${sets[@]}" -mindepth 2 -maxdepth 2 -name '*-seed0')
}
pictures
# a file over 16 MiB would not come back from a device slot: the reports hold the pictures again
[ "$(stat -c %s "$OUT/images.tgz")" -gt 15000000 ] && pictures --exclude=report.html
cd - > /dev/null
echo "=== done after ${SECONDS} s ($(date +%T)); in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
