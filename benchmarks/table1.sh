#!/usr/bin/env bash
# The paper's Table 1 and ablation for one video recipe: the full model, the baseline, baseline-sv
# and No-DFP / No-SCC / No-MI, 3 seeds each, scored by a judge (Acc / IS / H(y|x) / H(y)).
#
#   bash benchmarks/table1.sh [OUT]                                   # the quickstart, OUT sweeps/quickstart
#   RECIPE=recipes/sprites.toml EXTRA="data.root=/data/lpc-sprites" DEVICE=cuda bash benchmarks/table1.sh sweeps/sprites
#   RECIPE=recipes/smmnist.toml DEVICE=cuda bash benchmarks/table1.sh sweeps/smmnist
#
# Writes OUT/judge.pt (skipped when present), OUT/<preset>/sweep.{csv,md} (resumable: finished runs
# are skipped) and OUT/compare.{csv,md} (`disentangle compare` over every run). PARALLEL=2 runs two
# presets at a time (on CPU one thread each: what 2 cores do best; on one GPU use PARALLEL=1); JUDGE_EPOCHS sets the judge's
# training, SEEDS the seeds; EXTRA="key=value ..." adds --set overrides to every run and the judge
# (a smoke test: EXTRA="data.num_train=64 data.num_test=32 train.max_steps=5" SEEDS=0 JUDGE_EPOCHS=1).
set -euo pipefail
OUT=${1:-sweeps/quickstart}
PARALLEL=${PARALLEL:-2}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-12}
SEEDS=${SEEDS:-0,1,2}
RECIPE=${RECIPE:-recipes/quickstart.toml}
DEVICE=${DEVICE:-cpu}
extra=()
for kv in ${EXTRA:-}; do extra+=(--set "$kv"); done
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

[ -f "$OUT/judge.pt" ] || disentangle judge train "$RECIPE" "${extra[@]}" --epochs "$JUDGE_EPOCHS" --device "$DEVICE" --out "$OUT/judge.pt"

METRICS="eval.metrics=[{use=\"judge\", path=\"$OUT/judge.pt\"}, {use=\"latent-probe\", max_sequences=512}, {use=\"reconstruction\"}]"
# The recipe's [[regularizers]] without the one named, as an inline TOML list (the ablations keep
# the other regularizer with the recipe's own parameters).
without() {
  python3 - "$RECIPE" "$1" <<'PY'
import json, sys, tomllib
recipe = tomllib.load(open(sys.argv[1], "rb"))
kept = [r for r in recipe.get("regularizers", []) if r["use"] != sys.argv[2]]
print("[" + ", ".join("{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in r.items()) + "}" for r in kept) + "]")
PY
}

# preset name, then its --set arguments (docs/recipes.md, "Baselines, ablations, sweeps")
run_preset() {
  local name=$1; shift
  disentangle sweep "$RECIPE" --seeds "$SEEDS" --set "$METRICS" "${extra[@]}" "$@" --device "$DEVICE" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "finished $name"
}

presets=(
  "full"
  "baseline|tasks=[]|regularizers=[]"
  "baseline-sv|tasks=[{use=\"label-supervised\"}]|regularizers=[]"
  "no-dfp|tasks=[]"
  "no-scc|regularizers=$(without triplet-scc)"
  "no-mi|regularizers=$(without mi-mws)"
)
running=0
for spec in "${presets[@]}"; do
  IFS='|' read -r name rest <<< "$spec"
  args=()
  if [ -n "${rest:-}" ]; then
    IFS='|' read -r -a sets <<< "$rest"
    for s in "${sets[@]}"; do args+=(--set "$s"); done
  fi
  run_preset "$name" "${args[@]}" &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then wait -n; running=$((running - 1)); fi
done
wait
disentangle compare "$OUT"/*/*-seed* --out "$OUT"
echo "table: $OUT/compare.md"
