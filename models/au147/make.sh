#!/usr/bin/env bash
# Rebuilds the shipped Au147 model and everything its card (models/au147/README.md) shows, from
# nothing: the shared recipe (models/make_model.sh: data, denoising trainings, export, chart,
# held-out and thermal accuracy, off-chart warnings, structures made elsewhere), with structures
# made by procedures the data never used for the novelty's far-off figure (far_off.py); then what
# limits the thermal accuracy (thermal_ceiling.py). About 1 h 15 min on 2 cores (data 30 min, two
# trainings 25 min, the rest 15 min).
# Usage: models/au147/make.sh [WORK_DIR] (default build/au147-model; an interrupted run resumes
# where it stopped). TRAIN_SNAPSHOTS (default 32000) sets the size of the training set; a larger
# value extends a finished set. SEEDS (default "0 1"): the trainings to choose from. SUPERVISION
# (default 1): weight of the training's label term (`nanochart train --supervision`; 0 trains
# without labels, as the models before 2026-12-03). CUT_STARTS=1 adds MD from random cuts of larger
# motifs to the training set; COMPACTNESS (default 0) weighs the label-gathering term (`nanochart
# train --compactness`); MODEL_DIR builds a candidate elsewhere than models/au147 (all as in
# models/make_model.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${MODEL_DIR:-$here}
work=${1:-$repo/build/au147-model}
nanochart=${NANOCHART:-$repo/.venv/bin/nanochart}
[[ -x $nanochart ]] || nanochart=nanochart
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3
mkdir -p "$work"

"$python" "$here/far_off.py" "$work"
FAR_OFF=$work/far_off.extxyz TRAIN_SNAPSHOTS=${TRAIN_SNAPSHOTS:-32000} TEST_SNAPSHOTS=6000 \
  SUPERVISION=${SUPERVISION:-1} "$here/../make_model.sh" Au 147 "$work"

"$python" "$here/thermal_ceiling.py" "$work" --variants

cp "$work/thermal_ceiling.json" "$out/"
