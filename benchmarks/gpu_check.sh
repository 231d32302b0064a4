#!/usr/bin/env bash
# One pass of the GPU checks and benchmarks (about 10 minutes on one H100/H200; where one call may
# run 10 minutes at most, run PARTS=1 and PARTS=2345 as two calls):
#   SPRITES_ROOT=/path/to/lpc-sprites bash benchmarks/gpu_check.sh [OUT_DIR]
# 1. throughput: the plain fp32 reference loop vs the trainer's step (and compiled, CUDA-graphed, the
#    other memory layout), paper-size Sprites model at batch 128; the fast path over batch sizes;
#    MI-MWS over M;
# 2. quality: a short Sprites schedule trained with the fp32 path, the fast path and the CUDA graph;
# 3. exact resume on the GPU: straight vs stopped-and-resumed vs a second straight run (noise floor),
#    eager, with the CUDA graph, and with train.deterministic = "on" (eager and graphed);
# 4. a torchrun launch on the GPU;
# 5. a longer Sprites run with the fast path (pictures).
# Each part has its own time limit; a failing part does not stop the others. PARTS=134 runs parts
# 1, 3 and 4 only. SMOKE=1: a few-step pass of the same commands (CPU).
# The JSON of each part (throughput-cuda.json, quality-sprites-*.json, resume-cuda*.json), device.txt
# and the runs (no checkpoints) are written under WORK (default /tmp/gpu-check) and packed into
# OUT_DIR/results.tgz after each part, beside OUT_DIR/log.txt (this script's output as it goes): two
# files, so that a device slot, which brings back at most 8, returns every part that finished even
# when the call runs out of time. `tar -xzf OUT_DIR/results.tgz -C DIR` unpacks them.
set -uo pipefail
OUT=${1:-benchmarks/results/gpu}
WORK=${WORK:-/tmp/gpu-check}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
PY=${PY:-python3}
: "${SPRITES_ROOT:?set SPRITES_ROOT to the lpc-sprites folder}"
export DISENTANGLE_CACHE_DIR=${DISENTANGLE_CACHE_DIR:-/tmp/disentangle-cache} PYTHONUNBUFFERED=1
DEV=${DEVICE:-cuda}
if [ "${SMOKE:-0}" = 1 ]; then
  TP="--steps 3 --reference-steps 2 --warmup 1 --profile --cuda-graph --layouts --batch-sizes 8,16 --set train.batch_size=8 --set data.max_train=64 --set data.max_test=32 --set data.resolution=32 --set model.encoder.channels=[8,8,8] --set model.decoder.channels=[8,8,8]"
  Q="--set train.max_steps=6 --set data.max_train=64 --set data.max_test=32 --set data.resolution=32 --set train.batch_size=8 --set model.encoder.channels=[8,8,8] --set model.decoder.channels=[8,8,8] --set eval.metrics.0.max_sequences=16"
  QS="--set train.max_steps=6 --set data.num_train=64 --set data.num_test=16 --set eval.metrics.0.max_sequences=16"
  RES=(6 3); LONG="$Q"; TL=600
else
  TP="--steps 40 --reference-steps 15 --warmup 5 --profile --compile --cuda-graph --layouts --scaling --batch-sizes 64,128,256 --set train.batch_size=128"
  Q="--set train.max_steps=1500 --set train.log_every=50"
  QS="--set train.max_steps=1000"
  RES=(300 150); LONG="--set train.epochs=20 --set train.log_every=100"; TL=1
fi
SPR="--set data.root=$SPRITES_ROOT"
PARTS=${PARTS:-12345}
# what has been written so far, without checkpoints, into one file (rewritten before each part)
pack() { tar -C "$WORK" --exclude=checkpoints --exclude='*.pt' --exclude=report.html -czf "$OUT/results.tgz" .; }
step() { pack; echo; echo "=== $1 ($(date +%T))"; }
want() { [[ "$PARTS" == *"$1"* ]]; }
lim() { echo $(( $1 * ${TL} > $1 ? $1 * TL : $1 )); }

step "device"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)") | tee "$WORK/device.txt"

want 1 && step "1. throughput" && timeout "$(lim 420)" $PY benchmarks/throughput.py recipes/sprites.toml $SPR $TP --device "$DEV" --out "$WORK/throughput-$DEV.json"

GRAPH=$([ "$DEV" = cuda ] && echo graph)
want 2 && step "2. quality: fp32 path vs fast path (vs CUDA graph), short Sprites schedule" && for v in fp32 fast $GRAPH; do
  extra=""; [ $v = fp32 ] && extra='--set train.precision="fp32" --set train.data_on_device="loader"'
  [ $v = graph ] && extra='--set train.cuda_graph="on"'
  timeout "$(lim 150)" $PY benchmarks/quality.py recipes/sprites.toml $SPR $Q $extra --device "$DEV" \
    --run-dir "$WORK/runs/sprites-$v" --out "$WORK/quality-sprites-$v.json" 2>&1 | tail -25
done

if want 3; then
step "3. exact resume on $DEV"
for mode in eager $GRAPH exact ${GRAPH:+exact-graph}; do
R="$WORK/runs/resume-$mode"; rm -rf "$R"
G=(); [[ $mode == *graph ]] && G=(--set 'train.cuda_graph="on"')
[[ $mode == exact* ]] && G+=(--set 'train.deterministic="on"')
for name in straight again; do
  timeout "$(lim 90)" $PY -m disentangle run recipes/quickstart.toml $QS "${G[@]}" --set train.max_steps=${RES[0]} \
    --set train.checkpoint_every=${RES[1]} --set eval.images=false --device "$DEV" --run-dir "$R/$name" 2>&1 | tail -2
done
timeout "$(lim 90)" $PY -m disentangle run recipes/quickstart.toml $QS "${G[@]}" --set train.max_steps=${RES[1]} \
  --set train.checkpoint_every=${RES[1]} --set eval.images=false --device "$DEV" --run-dir "$R/resumed" 2>&1 | tail -2
timeout "$(lim 90)" $PY -m disentangle run --resume "$R/resumed" --set train.max_steps=${RES[0]} --device "$DEV" 2>&1 | tail -2
suffix=${mode/eager/}; suffix=${suffix:+-$suffix}
$PY - "$R" "$WORK/resume-$DEV$suffix.json" <<'PYEOF'
import json, sys, torch
from pathlib import Path
r = Path(sys.argv[1])
load = lambda n: torch.load(r / n / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")
a, b, c = load("straight"), load("resumed"), load("again")
diff = lambda x, y: max(float((x["model"][k].float() - y["model"][k].float()).abs().max()) for k in x["model"])
out = {"steps": [a["step"], b["step"], c["step"]], "max_abs_diff_resumed_vs_straight": diff(a, b),
       "max_abs_diff_again_vs_straight": diff(a, c)}
print(out); Path(sys.argv[2]).write_text(json.dumps(out, indent=2))
PYEOF
done
fi

want 4 && step "4. torchrun on $DEV" && timeout "$(lim 90)" $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m disentangle run recipes/quickstart.toml \
  $QS --set train.max_steps=100 --set eval.images=false --device "$DEV" --run-dir "$WORK/runs/torchrun" 2>&1 | grep -v "━" | tail -40

want 5 && step "5. longer Sprites run, fast path" && timeout "$(lim 150)" $PY benchmarks/quality.py recipes/sprites.toml $SPR $LONG --device "$DEV" \
  --run-dir "$WORK/runs/sprites-long" --out "$WORK/quality-sprites-long.json" 2>&1 | tail -25
step "done"
