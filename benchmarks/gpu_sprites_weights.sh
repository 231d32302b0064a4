#!/usr/bin/env bash
# Follow-up to gpu_table1.sh on one GPU: why the MI-MWS presets lose the dynamics at 8 epochs with
# the flow-grid weight (λ2) at 1, the Sprites recipe's value before this study (it is 1000 now).
# Sprites, seed 0: the flow-grid (DFP) weight raised, the MI-MWS weight lowered, and the full model and
# the baseline trained 2.5x longer (20 epochs), side by side on one GPU, each scored by the judge;
# and the SMMNIST judge trained longer (JUDGE_EPOCHS_SMMNIST, default 30).
#   SPRITES_ROOT=/path/to/lpc-sprites bash benchmarks/gpu_sprites_weights.sh [OUT]
set -uo pipefail
OUT=${1:-benchmarks/results/gpu-weights}
WORK=${WORK:-/tmp/gpu-weights}
: "${SPRITES_ROOT:?set SPRITES_ROOT to the lpc-sprites folder}"
DEVICE=${DEVICE:-cuda}
export DISENTANGLE_CACHE_DIR=${DISENTANGLE_CACHE_DIR:-/tmp/disentangle-cache} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"; OUT=$(cd "$OUT" && pwd)
small="" je=${JUDGE_EPOCHS_SMMNIST:-30} judge_small=()
if [ "${SMOKE:-0}" = 1 ]; then
  small="data.max_train=64 data.max_test=32 data.resolution=32 model.encoder.channels=[8,8,8] model.decoder.channels=[8,8,8] train.max_steps=4"
  judge_small=(--set data.num_train=64 --set data.num_test=32) je=1
fi
SECONDS=0
disentangle judge train recipes/smmnist.toml "${judge_small[@]}" --epochs "$je" --device "$DEVICE" \
  --out "$WORK/smmnist-judge.pt" > "$OUT/smmnist-judge.log" 2>&1 &
RECIPE=recipes/sprites.toml EXTRA="data.root=$SPRITES_ROOT train.epochs=8 tasks.0.weight=1 $small" DEVICE=$DEVICE SEEDS=0 PARALLEL=6 \
  EVAL=later JUDGE_EPOCHS=${JUDGE_EPOCHS:-6} TRAIN_LIMIT=${TRAIN_LIMIT:-230} PRESETS="fg100 fg1000 mi0.1 fg1000-mi0.1 full-20 baseline-20" \
  EXTRA_PRESETS=$'fg100|tasks.0.weight=100\nfg1000|tasks.0.weight=1000\nmi0.1|regularizers.1.weight=0.1\nfg1000-mi0.1|tasks.0.weight=1000|regularizers.1.weight=0.1\nfull-20|train.epochs=20\nbaseline-20|tasks=[]|regularizers=[]|train.epochs=20' \
  bash benchmarks/table1.sh "$WORK/sprites" > "$OUT/sprites.log" 2>&1
wait
echo "=== done after ${SECONDS} s"
cd "$WORK" && find sprites \( -name '*.json' -o -name '*.toml' -o -name '*.log' -o -name '*.md' -o -name '*.csv' -o -name '*.txt' \) \
  | tar -czf "$OUT/results.tgz" -T - && tar -czf "$OUT/images.tgz" sprites/*-20/*-seed0/images 2>/dev/null
tail -3 "$OUT/smmnist-judge.log"; cat "$WORK/sprites/compare.md" | grep -E "metric|---|acc |/acc|reconstruction"
