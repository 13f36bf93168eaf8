#!/usr/bin/env bash
# Rebuilds the shipped Au147 model and everything its card (models/au147/README.md) shows, from
# nothing: data (LAMMPS MD + quench + CNA, each structure with the thermal snapshot it was quenched
# from), denoising training (each thermal snapshot rebuilt as its quench's RDF: MD-ready CVs),
# export, chart, held-out k-NN accuracy of quenched and thermal structures.
# About 1 h on 2 cores (data 30 min, training 20 min). Usage: models/au147/make.sh [WORK_DIR]
# (default build/au147-model; an interrupted run resumes where it stopped). TRAIN_SNAPSHOTS (default
# 32000) sets the size of the training set; a larger value extends a finished set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$repo/build/au147-model}
nanochart=${NANOCHART:-$repo/.venv/bin/nanochart}
[[ -x $nanochart ]] || nanochart=nanochart
mkdir -p "$work" "$here/chart"

# Training set and an in-distribution held-out set (same ladder, 250-570 K, other seed); and the
# MD-ready test: fresh MD at 300 and 450 K from every seed motif (a third seed), never trained on.
"$nanochart" generate --element Au --natoms 147 --structures "${TRAIN_SNAPSHOTS:-32000}" --seed 0 \
  --out "$work/train.extxyz"
"$nanochart" generate --element Au --natoms 147 --structures 6000 --seed 1 --out "$work/test.extxyz"
"$nanochart" generate --element Au --natoms 147 --structures 6000 --seed 2 --temperatures 300,450 \
  --out "$work/thermal_test.extxyz"
"$nanochart" train "$work/train.extxyz" --out "$work/run" --activation silu --target quench --seed 0 \
  --epochs 200 --patience 25 --batch-size 128
"$nanochart" export "$work/run/checkpoint.pt" --out "$here/au147.pt"
"$nanochart" chart "$here/au147.pt" "$work/train.extxyz" --out "$work/chart" --held-out "$work/test.extxyz"
"$nanochart" chart "$here/au147.pt" "$work/train.extxyz" --out "$work/chart_thermal" \
  --held-out "$work/thermal_test.extxyz"

cp "$work/train.labels.png" "$here/labels_per_temperature.png"
cp "$work/train.labels.txt" "$here/labels_per_temperature.txt"
cp "$work/run/loss.png" "$work/run/training.json" "$here/"
cp "$work/chart/chart_labels.png" "$work/chart/chart_families.png" "$work/chart/held_out.json" \
  "$work/chart/held_out_confusion.png" "$here/"
cp "$work/chart_thermal/held_out.json" "$here/thermal_held_out.json"
cp "$work/chart/centroids.csv" "$here/chart/"
gzip -9 -c "$work/chart/chart.csv" >"$here/chart/chart.csv.gz"
