#!/usr/bin/env bash
# The paper's Table 1 and ablation for one video recipe: the full model, the baseline, baseline-sv
# and No-DFP / No-SCC / No-MI, 3 seeds each, scored by a judge (Acc / IS / H(y|x) / H(y)).
#
#   bash benchmarks/table1.sh [OUT]                                   # the quickstart, OUT sweeps/quickstart
#   RECIPE=recipes/sprites.toml EXTRA="data.root=/data/lpc-sprites" DEVICE=cuda bash benchmarks/table1.sh sweeps/sprites
#   RECIPE=recipes/smmnist.toml DEVICE=cuda bash benchmarks/table1.sh sweeps/smmnist
#
# Writes OUT/judge.pt (skipped when present: a judge copied there beforehand is used),
# OUT/<preset>/sweep.{csv,md} (resumable: finished runs are skipped; OUT/<preset>.log is appended to,
# so a rerun keeps the first run's training times)
# and OUT/compare.{csv,md} (`disentangle compare` over every run). PARALLEL=2 runs two
# presets at a time (on CPU one thread each: what 2 cores do best; on one GPU use PARALLEL=1); JUDGE_EPOCHS sets the judge's
# training, SEEDS the seeds; EXTRA="key=value ..." adds --set overrides to every run and the judge
# (a smoke test: EXTRA="data.num_train=64 data.num_test=32 train.max_steps=5" SEEDS=0 JUDGE_EPOCHS=1);
# JUDGE_EXTRA="key=value ..." adds overrides for the judge alone, after EXTRA: JUDGE_EXTRA="data.num_train=20000"
# JUDGE_ARGS="..." adds options of `disentangle judge train` (e.g. JUDGE_ARGS="--norm batch --pools 3")
# trains it on more generated sequences of the same data (the judge is taken: its test split is the runs').
# JUDGE_METRIC="max_sequences=500, rounds=1" sets parameters of the judge metric (default: 1,000 test
# sequences, 3 rounds; on CPU that is about 7 minutes of a core per Sprites run).
# Each run is also scored by the referee `dependence-probe` (how much z_f tells about z_1:T, on the
# posterior means; 16-30 s of a core per small Sprites run). MORE_METRICS='{use="dependence-probe",
# codes="sample"}' appends metrics to that list (a second metric of one kind is named kind-2 in
# eval.json and the tables: here dependence-probe-2, the referee on posterior draws).
# PRESETS="full baseline" runs only those presets; EXTRA_PRESETS adds presets, one per line, written
# as below (name|key=value|key=value), e.g. EXTRA_PRESETS='fg100|tasks.0.weight=100': they run after
# the six, or, where PRESETS is given, when PRESETS names them.
# EVAL=later (for a GPU, where one device runs several trainings at once): the judge trains while the
# models train; each run is evaluated with the judge after every training has finished
# (`disentangle evaluate`, PARALLEL at a time). TRAIN_LIMIT=SECONDS stops the trainings after that long
# (SIGTERM: each writes a checkpoint and stops); a run stopped before its end is not evaluated and is
# listed in OUT/unfinished.txt. Each preset's table is then OUT/<preset>/compare.{csv,md} (no sweep.*).
set -euo pipefail
OUT=${1:-sweeps/quickstart}
PARALLEL=${PARALLEL:-2}
JUDGE_EPOCHS=${JUDGE_EPOCHS:-12}
SEEDS=${SEEDS:-0,1,2}
RECIPE=${RECIPE:-recipes/quickstart.toml}
DEVICE=${DEVICE:-cpu}
extra=()
for kv in ${EXTRA:-}; do extra+=(--set "$kv"); done
judge_extra=("${extra[@]}")  # JUDGE_EXTRA: the judge's own, after EXTRA (e.g. more generated training sequences)
for kv in ${JUDGE_EXTRA:-}; do judge_extra+=(--set "$kv"); done
EVAL=${EVAL:-inline}
extra_presets=()  # EXTRA_PRESETS, one per line; by default they run after the six (their names: up to the first |)
while IFS= read -r line; do [ -n "$line" ] && extra_presets+=("$line"); done <<< "${EXTRA_PRESETS:-}"
PRESETS=${PRESETS:-full baseline baseline-sv no-dfp no-scc no-mi ${extra_presets[*]%%|*}}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

train_judge() {
  # a judge put in OUT beforehand (e.g. one trained for an earlier table of the same data) is used as is
  if [ -f "$OUT/judge.pt" ] && [ ! -f "$OUT/judge.log" ]; then echo "judge: $OUT/judge.pt (given, not trained here)"; return; fi
  [ -f "$OUT/judge.pt" ] || disentangle judge train "$RECIPE" "${judge_extra[@]}" --epochs "$JUDGE_EPOCHS" ${JUDGE_ARGS:-} --device "$DEVICE" --out "$OUT/judge.pt" > "$OUT/judge.log" 2>&1
  echo "judge: $(tail -n 1 "$OUT/judge.log")"
}
judge_metric=""  # JUDGE_METRIC: more parameters of the judge metric
[ -n "${JUDGE_METRIC:-}" ] && judge_metric=", $JUDGE_METRIC"
more_metrics=""  # MORE_METRICS: more metrics, appended to the list
[ -n "${MORE_METRICS:-}" ] && more_metrics=", $MORE_METRICS"
METRICS="eval.metrics=[{use=\"judge\", path=\"$OUT/judge.pt\"$judge_metric}, {use=\"latent-probe\", max_sequences=512}, {use=\"reconstruction\"}, {use=\"dependence-probe\"}$more_metrics]"
# a bad JUDGE_METRIC / MORE_METRICS is named now, not after the trainings (EVAL=later reads METRICS last)
disentangle validate "$RECIPE" "${extra[@]}" --set "$METRICS" > /dev/null || exit 2
judge_pid=none
if [ "$EVAL" = later ]; then
  train_judge & judge_pid=$!
  RUN_METRICS=(--set 'eval.metrics=[{use="reconstruction"}]' --set eval.images=false)
else
  train_judge
  RUN_METRICS=(--set "$METRICS")
fi
# the runs of the folders given that finished and were scored (sweep-done.json and eval.json)
scored() { for run in "$@"; do [ -f "$run/sweep-done.json" ] && [ -f "$run/eval.json" ] && echo "$run"; done; }
# wait until fewer than PARALLEL jobs (the judge's aside) are running
throttle() { while [ "$(jobs -rp | grep -cvx "$judge_pid")" -ge "$PARALLEL" ]; do sleep 1; done; }
limit=()
[ -n "${TRAIN_LIMIT:-}" ] && limit=(timeout -s TERM "$TRAIN_LIMIT")
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
  if "${limit[@]}" disentangle sweep "$RECIPE" --seeds "$SEEDS" "${RUN_METRICS[@]}" "${extra[@]}" "$@" --device "$DEVICE" --out "$OUT/$name" >> "$OUT/$name.log" 2>&1
  then echo "finished $name"; else echo "stopped $name (see $OUT/$name.log)"; fi
}

presets=(
  "full"
  "baseline|tasks=[]|regularizers=[]"
  "baseline-sv|tasks=[{use=\"label-supervised\"}]|regularizers=[]"
  "no-dfp|tasks=[]"
  "no-scc|regularizers=$(without triplet-scc)"
  "no-mi|regularizers=$(without mi-mws)"
)
presets+=("${extra_presets[@]}")
for spec in "${presets[@]}"; do
  IFS='|' read -r name rest <<< "$spec"
  [[ " $PRESETS " == *" $name "* ]] || continue
  args=()
  if [ -n "${rest:-}" ]; then
    IFS='|' read -r -a sets <<< "$rest"
    for s in "${sets[@]}"; do args+=(--set "$s"); done
  fi
  run_preset "$name" "${args[@]}" &
  throttle
done
wait  # the trainings (and the judge)
if [ "$EVAL" = later ]; then
  : > "$OUT/unfinished.txt"
  for run in "$OUT"/*/*-seed*; do
    if [ ! -f "$run/sweep-done.json" ]; then echo "$run" >> "$OUT/unfinished.txt"; continue; fi
    # a failed evaluation leaves the training-time eval.json aside, so no table mistakes it for a judged one
    (disentangle evaluate "$run" --set "$METRICS" --set eval.images=true --device "$DEVICE" > "$run/evaluate.log" 2>&1 \
      || { mv "$run/eval.json" "$run/eval-training.json"; echo "evaluation failed: $run/evaluate.log"; }) &
    throttle
  done
  wait
  # each preset's own table, from the judged eval.json (the sweep's held only the training-time metrics)
  for dir in "$OUT"/*/; do
    mapfile -t runs < <(scored "$dir"*-seed*)
    rm -f "$dir/sweep.csv" "$dir/sweep.md"
    [ ${#runs[@]} -gt 0 ] && disentangle compare "${runs[@]}" --out "$dir" > /dev/null
  done
fi
mapfile -t evaluated < <(scored "$OUT"/*/*-seed*)
disentangle compare "${evaluated[@]}" --out "$OUT"
echo "table: $OUT/compare.md"
