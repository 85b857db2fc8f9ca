#!/usr/bin/env bash
# The README's reference study (issue 11): the digits-DG convnet plus the `cpu` panel's
# shortlist x {baseline, neurn, gray, sobel, lcn, randconv} x seeds 0 1 2, trained with the
# main job's recipe at 600 steps (the main job has 450), tested on every offline target in
# full (no --eval-limit). Model selection on source validation only; nothing is tuned on a
# target.
#
#   bash benchmarks/reference_study.sh [OUT]      (default OUT: results/reference)
#
# About 100 minutes on 2 CPU cores. Interrupt it at any point and run it again: finished
# runs are skipped and the unfinished one resumes from its last checkpoint.
set -euo pipefail
out=${1:-results/reference}
archalign shortlist --panel cpu -k 3 --out "$out/shortlist.json" --no-progress
neurn run convnet "$out/shortlist.json" --variants baseline neurn gray sobel lcn randconv \
    --seeds 0 1 2 --steps 600 --evals 5 --batch-size 64 --no-weights --out "$out/study"
