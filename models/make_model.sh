#!/usr/bin/env bash
# The recipe every shipped model shares, from nothing: data (LAMMPS MD + quench + CNA, each
# structure with the thermal snapshot it was quenched from), denoising trainings (MD-ready CVs),
# export, chart with named families, held-out k-NN accuracy of quenched structures and of thermal
# snapshots from fresh 300 and 450 K MD, the off-chart warnings (novelty calibrated on the held-out
# set), and the accuracy on structures made elsewhere (out of distribution). models/NAME/make.sh
# calls it, then adds what only its model has.
#
# Usage: models/make_model.sh ELEMENT NATOMS [WORK_DIR]   (model folder: models/<element><natoms>;
# default WORK_DIR build/<element><natoms>-model; an interrupted run resumes where it stopped, and
# finished trainings are kept). Environment:
#   TRAIN_SNAPSHOTS  snapshots sampled for training, before duplicates go (32000)
#   TEST_SNAPSHOTS   snapshots of each held-out set (6000)
#   SEEDS            trainings from different initial weights; the lowest validation loss ships ("0 1")
#   FAR_OFF          extxyz of structures unlike the data, for the novelty's far-off figure (none)
#   SUPERVISION      weight of the training's label term, `nanochart train --supervision` (0: off)
#   COMPACTNESS      weight of the term that gathers each label, `nanochart train --compactness` (0: off)
#   CUT_STARTS       1: the training set also starts MD from random cuts of larger motifs
#                    (`nanochart generate --cut-starts`); the held-out sets stay as without (0)
#   MODEL_DIR        where the model file, chart and card figures go (models/<element><natoms>):
#                    another folder builds a candidate without touching the shipped model
#   NANOCHART, PYTHON  the executables (default: the repository's .venv, else PATH)
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 ELEMENT NATOMS [WORK_DIR]" >&2
  exit 2
fi
element=$1
natoms=$2
name=$(echo "$element" | tr '[:upper:]' '[:lower:]')$natoms
models=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$models/.." && pwd)
here=${MODEL_DIR:-$models/$name}
work=${3:-$repo/build/$name-model}
nanochart=${NANOCHART:-$repo/.venv/bin/nanochart}
[[ -x $nanochart ]] || nanochart=nanochart
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3
seeds=${SEEDS:-0 1}
supervision=${SUPERVISION:-0}
compactness=${COMPACTNESS:-0}
cut_starts=()
[[ ${CUT_STARTS:-0} == 1 ]] && cut_starts=(--cut-starts)
mkdir -p "$work" "$here/chart"

# Training set and an in-distribution held-out set (the default ladder, 0.19-0.43 of the bulk
# melting point; another seed), and the MD-ready test: fresh MD at 300 and 450 K from every seed
# motif (a third seed), never trained on.
"$nanochart" generate --element "$element" --natoms "$natoms" --structures "${TRAIN_SNAPSHOTS:-32000}" \
  --seed 0 "${cut_starts[@]}" --out "$work/train.extxyz"
"$nanochart" generate --element "$element" --natoms "$natoms" --structures "${TEST_SNAPSHOTS:-6000}" \
  --seed 1 --out "$work/test.extxyz"
"$nanochart" generate --element "$element" --natoms "$natoms" --structures "${TEST_SNAPSHOTS:-6000}" \
  --seed 2 --temperatures 300,450 --out "$work/thermal_test.extxyz"

best=""
for seed in $seeds; do
  run=$work/run_seed$seed
  if [[ ! -f $run/training.json ]]; then
    resume=()
    [[ -f $run/checkpoint.pt ]] && resume=(--resume)
    "$nanochart" train "$work/train.extxyz" --out "$run" --activation silu --target quench --seed "$seed" \
      --epochs 200 --patience 25 --batch-size 128 --supervision "$supervision" \
      --compactness "$compactness" "${resume[@]}"
  fi
  best=$("$python" -c 'import json, sys
runs = [p for p in sys.argv[1:] if p]
print(min(runs, key=lambda p: json.load(open(p + "/training.json"))["validation_loss"]))' "$best" "$run")
done
echo "shipping   $best (lowest validation loss of seeds $seeds)"
ln -sfn "$(basename "$best")" "$work/run"
"$nanochart" export "$work/run/checkpoint.pt" --out "$here/$name.pt"
"$nanochart" chart "$here/$name.pt" "$work/train.extxyz" --out "$work/chart" --held-out "$work/test.extxyz"
# Off-chart warnings: the novelty reference (the chart's training CVs) calibrated on the held-out
# set, quenches and thermal snapshots pooled, checked on the fresh 300 / 450 K set. Written into
# the model file.
far_off=()
[[ -n ${FAR_OFF:-} ]] && far_off=(--far-off "$FAR_OFF")
"$nanochart" calibrate-novelty "$here/$name.pt" --chart "$work/chart" --held-out "$work/test.extxyz" \
  --check "$work/thermal_test.extxyz" "${far_off[@]}" --report "$work/novelty.json"
"$nanochart" chart "$here/$name.pt" "$work/train.extxyz" --out "$work/chart_thermal" \
  --held-out "$work/thermal_test.extxyz"
# Out of distribution: MD at 300 and 450 K from motifs made by a procedure the data never used
# (models/elsewhere.py: larger ase.cluster motifs cut to the atoms nearest their centre), scored on
# the chart without retraining.
"$python" "$models/elsewhere.py" "$work" --element "$element" --natoms "$natoms"
"$nanochart" generate --element "$element" --natoms "$natoms" --seed-structures "$work/elsewhere_starts.extxyz" \
  --temperatures 300,450 --structures 800 --seed 3 --out "$work/elsewhere.extxyz"
"$nanochart" evaluate "$here/$name.pt" "$work/elsewhere.extxyz" --chart "$work/chart" --out "$work/elsewhere"

cp "$work/train.labels.png" "$here/labels_per_temperature.png"
cp "$work/train.labels.txt" "$here/labels_per_temperature.txt"
cp "$work/run/loss.png" "$work/run/training.json" "$work/novelty.json" "$here/"
cp "$work/chart/chart_labels.png" "$work/chart/chart_families.png" "$work/chart/held_out.json" \
  "$work/chart/held_out_confusion.png" "$here/"
[[ -f $work/chart/families.md ]] && cp "$work/chart/families.md" "$work/chart/families.json" "$here/"
cp "$work/chart_thermal/held_out.json" "$here/thermal_held_out.json"
cp "$work/elsewhere/evaluation.json" "$here/elsewhere.json"
cp "$work/elsewhere/evaluation_confusion.png" "$here/elsewhere_confusion.png"
cp "$work/chart/centroids.csv" "$here/chart/"
gzip -9 -c "$work/chart/chart.csv" >"$here/chart/chart.csv.gz"
# A card written from these files (models/card.py) for the models that have no hand-written one.
if [[ ${CARD:-0} == 1 ]]; then
  "$python" "$models/card.py" "$here" --train-snapshots "${TRAIN_SNAPSHOTS:-32000}" \
    --test-snapshots "${TEST_SNAPSHOTS:-6000}"
fi
