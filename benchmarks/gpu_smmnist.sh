#!/usr/bin/env bash
# SMMNIST at the recipe's model size on one GPU, in one device slot (5 to 7 minutes on an H200):
# the judge trained on 20,000 generated sequences (batch norm in its frame encoder), and beside it
# the full model and the baseline, SEEDS of each, all side by side, STEPS steps of the recipe's
# batch of 64; then each run scored by that judge (Acc / IS / H(y|x) / H(y) both ways), the latent
# probe and the reconstruction. STEPS (default 2500) replaces the recipe's 300 epochs: a reduced
# schedule, and every number it gives must be labelled so.
#
#   bash benchmarks/gpu_smmnist.sh [OUT]
#
# TRAIN_LIMIT (seconds, default 330) stops the trainings still running (SIGTERM: each writes a
# checkpoint); such a run is scored all the same, at the step it reached (its metrics.jsonl says
# which). OUT receives at most eight files, none of them checkpoints: log.txt, device.txt,
# gpu-utilisation.csv, compare.md and compare.csv (`disentangle compare`; then
# `python benchmarks/table1_summary.py OUT/compare.csv`), results.tgz (each run's eval.json,
# metrics.jsonl, recipe.toml, environment.json and logs; the judge's log) and images.tgz (seed 0's
# pictures and reports).
# PRESETS (default "full baseline") may name presets of EXTRA_PRESETS too, one per line, written as
# in table1.sh (name|key=value|key=value), e.g. the mi-mws weight at 0.1 beside the recipe's:
#   PRESETS="full mi0.1 baseline" EXTRA_PRESETS='mi0.1|regularizers.1.weight=0.1' bash benchmarks/gpu_smmnist.sh OUT
# SMOKE=1: a few steps of each at a tiny size, on DEVICE (default cuda).
set -uo pipefail
OUT=${1:-benchmarks/results/gpu-smmnist}
WORK=${WORK:-/tmp/gpu-smmnist}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-2500}
SEEDS=${SEEDS:-0 1 2}
PRESETS=${PRESETS:-full baseline}
TRAIN_LIMIT=${TRAIN_LIMIT:-330}
JUDGE_TRAIN=${JUDGE_TRAIN:-20000}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-8}
RECIPE=recipes/smmnist.toml
export DISENTANGLE_CACHE_DIR=${DISENTANGLE_CACHE_DIR:-/tmp/disentangle-cache} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
small=() judge_small=()
if [ "${SMOKE:-0}" = 1 ]; then
  small=(--set data.num_train=64 --set data.num_test=32 --set 'model.encoder.channels=[8,8,8,8]'
         --set 'model.decoder.channels=[8,8,8,8]' --set train.batch_size=16 --set train.num_workers=0)
  judge_small=(--set data.num_test=32) JUDGE_TRAIN=128 JUDGE_EPOCHS=1
fi
for preset in $PRESETS; do  # every preset known before anything starts
  [[ $preset == full || $preset == baseline ]] || grep -q "^$preset|" <<< "${EXTRA_PRESETS:-}" \
    || { echo "unknown preset $preset: full, baseline, or one of EXTRA_PRESETS (name|key=value|...)" >&2; exit 2; }
done
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
echo "=== start $(date +%T)"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
 python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)") | tee "$OUT/device.txt"
smi_pid=""
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/gpu-utilisation.csv" 2>&1 &
  smi_pid=$!
fi
SECONDS=0

disentangle judge train "$RECIPE" --set "data.num_train=$JUDGE_TRAIN" "${judge_small[@]}" --epochs "$JUDGE_EPOCHS" \
  --norm batch --device "$DEVICE" --out "$WORK/judge.pt" > "$WORK/judge.log" 2>&1 &
judge_pid=$!

runs=() logs=() pids=()
for preset in $PRESETS; do
  sets=()
  case $preset in
    full) ;;
    baseline) sets=(--set 'tasks=[]' --set 'regularizers=[]') ;;
    *) spec=$(grep -m1 "^$preset|" <<< "$EXTRA_PRESETS")
       IFS='|' read -r -a kv <<< "${spec#*|}"
       for x in "${kv[@]}"; do sets+=(--set "$x"); done ;;
  esac
  for seed in $SEEDS; do
    run="$WORK/$preset/smmnist-seed$seed"
    runs+=("$run") logs+=("$WORK/$preset-seed$seed.log")
    rm -rf "$run"; mkdir -p "$(dirname "$run")"
    timeout -s TERM "$TRAIN_LIMIT" disentangle run "$RECIPE" "${sets[@]}" "${small[@]}" --set "train.seed=$seed" \
      --set "train.max_steps=$STEPS" --set train.log_every=100 --set train.checkpoint_every=500 \
      --set 'eval.metrics=[{use="reconstruction"}]' --set eval.images=false \
      --device "$DEVICE" --run-dir "$run" > "${logs[-1]}" 2>&1 &
    pids+=($!)
  done
done
wait "${pids[@]}"
echo "=== trainings done after ${SECONDS} s"
for log in "${logs[@]}"; do echo "$(basename "$log"): $(grep -a -E 'trained|[Ss]topped|[Ee]rror' "$log" | tail -2 | tr '\n' ' ')"; done
wait "$judge_pid"
echo "=== judge done after ${SECONDS} s: $(tail -n 1 "$WORK/judge.log")"

METRICS="eval.metrics=[{use=\"judge\", path=\"$WORK/judge.pt\"}, {use=\"latent-probe\", max_sequences=512}, {use=\"reconstruction\"}, {use=\"dependence-probe\"}]"
pids=()  # (a bare `wait` would also wait for the tee above)
for run in "${runs[@]}"; do
  if [ -f "$run/checkpoints/last.pt" ]; then
    # a failed evaluation leaves the training-time eval.json aside, so no table mistakes it for a judged one
    { disentangle evaluate "$run" --set "$METRICS" --set eval.images=true --device "$DEVICE" > "$run/evaluate.log" 2>&1 \
      || { mv "$run/eval.json" "$run/eval-training.json"; echo "evaluation failed: $run/evaluate.log"; }; } &
    pids+=($!)
  else
    echo "no checkpoint: $run"
  fi
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
echo "=== evaluations done after ${SECONDS} s"
[ -n "$smi_pid" ] && kill "$smi_pid"

# the scores of each preset, mean ± std over its seeds (`disentangle compare` groups the runs by preset)
mapfile -t scored < <(for run in "${runs[@]}"; do [ -f "$run/eval.json" ] && echo "$run"; done)
[ ${#scored[@]} -gt 0 ] && disentangle compare "${scored[@]}" --out "$OUT" > /dev/null && cat "$OUT/compare.md"

# bring back what the docs need: no checkpoints, no judge weights
(cd "$WORK" && find . -maxdepth 1 -name '*.log' -print0 > /tmp/gs-files
 find . -mindepth 3 -maxdepth 3 \( -name eval.json -o -name metrics.jsonl -o -name recipe.toml -o -name environment.json -o -name evaluate.log \) -print0 >> /tmp/gs-files
 tar --null -czf "$OUT/results.tgz" -T /tmp/gs-files
 tar --exclude=checkpoints --exclude='*.pt' -czf "$OUT/images.tgz" $(find . -mindepth 2 -maxdepth 2 -name '*-seed0'))
echo "=== done after ${SECONDS} s ($(date +%T))"
