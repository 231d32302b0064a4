#!/usr/bin/env bash
# The quickstart's Table-1-style comparison: the full model, the baseline, baseline-sv and the
# ablations (No-DFP, No-SCC, No-MI), 3 seeds each, scored by a judge (Acc / IS / H(y|x) / H(y)).
#
#   bash benchmarks/quickstart_table.sh [OUT]        # default OUT: sweeps/quickstart
#
# Writes OUT/judge.pt (skipped when present), OUT/<preset>/sweep.{csv,md} (resumable: finished runs
# are skipped) and OUT/compare.{csv,md} (`disentangle compare` over every run). PARALLEL=2 runs two
# presets at a time, one thread each (what 2 CPU cores do best); JUDGE_EPOCHS sets the judge's
# training, SEEDS the seeds; EXTRA="key=value ..." adds --set overrides to every run and the judge
# (a smoke test: EXTRA="data.num_train=64 data.num_test=32 train.max_steps=5" SEEDS=0 JUDGE_EPOCHS=1).
set -euo pipefail
OUT=${1:-sweeps/quickstart}
PARALLEL=${PARALLEL:-2}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-12}
SEEDS=${SEEDS:-0,1,2}
RECIPE=${RECIPE:-recipes/quickstart.toml}
extra=()
for kv in ${EXTRA:-}; do extra+=(--set "$kv"); done
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

[ -f "$OUT/judge.pt" ] || disentangle judge train "$RECIPE" "${extra[@]}" --epochs "$JUDGE_EPOCHS" --out "$OUT/judge.pt"

METRICS="eval.metrics=[{use=\"judge\", path=\"$OUT/judge.pt\"}, {use=\"latent-probe\", max_sequences=512}, {use=\"reconstruction\"}]"
SCC='{use="triplet-scc", weight=1.0, margin=1.0}'
MI='{use="mi-mws", weight=1.0}'

# preset name, then its --set arguments (docs/recipes.md, "Baselines, ablations, sweeps")
run_preset() {
  local name=$1; shift
  disentangle sweep "$RECIPE" --seeds "$SEEDS" --set "$METRICS" "${extra[@]}" "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "finished $name"
}

presets=(
  "full"
  "baseline|tasks=[]|regularizers=[]"
  "baseline-sv|tasks=[{use=\"label-supervised\"}]|regularizers=[]"
  "no-dfp|tasks=[]"
  "no-scc|regularizers=[$MI]"
  "no-mi|regularizers=[$SCC]"
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
