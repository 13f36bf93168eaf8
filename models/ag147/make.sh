#!/usr/bin/env bash
# Rebuilds the shipped Ag147 model and its card (README.md, written by models/card.py) from nothing:
# models/make_model.sh with data sized for a 2-core machine. Usage: models/ag147/make.sh [WORK_DIR]
# (default build/ag147-model; resumes if interrupted). TRAIN_SNAPSHOTS (12000), TEST_SNAPSHOTS (3000),
# SEEDS ("0 1") as in make_model.sh.
set -euo pipefail
TRAIN_SNAPSHOTS=${TRAIN_SNAPSHOTS:-12000} TEST_SNAPSHOTS=${TEST_SNAPSHOTS:-3000} CARD=1 \
  exec "$(dirname "$0")/../make_model.sh" Ag 147 "$@"
