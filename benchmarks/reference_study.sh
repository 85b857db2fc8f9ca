#!/usr/bin/env bash
# The README's reference study, v2 (issue 26): the digits-DG convnet plus the `cpu` panel's
# shortlist x {baseline, neurn, randconv, prorandconv, neurn+randconv, neurn+prorandconv}
# x seeds 0 1 2 (72 runs), trained with the main job's recipe at 600 steps (the main job
# has 450), tested on every offline target in full (no --eval-limit). Model selection on
# source validation only; nothing is tuned on a target. v1 (README's table: gray, sobel and
# lcn where v2 has prorandconv and the combinations) was this command with
# `--variants baseline neurn gray sobel lcn randconv`, unsharded, into results/reference.
#
#   bash benchmarks/reference_study.sh [PART] [OUT]   (PART: 1, 2, 3 or all, the default;
#                                                       OUT: results/reference-v2)
#
# The grid is split into 3 parts (`--shard`; part I is seed I - 1 of every model and
# variant, 24 runs), each well under 3 hours on 2 CPU cores (on 2026-12-06 the whole
# grid took about 90 minutes of wall time on 2 cores shared with other work); `all` runs
# them one after the other. Every part writes to the same OUT and then tabulates every
# finished run of the whole grid, so the last one to finish writes the full tables. Parts
# may also run at once (two terminals, or machines sharing OUT: each run is claimed
# before it trains). Interrupt at any point and run the same command again: finished runs
# are skipped and the unfinished one resumes from its last checkpoint, bit-identically.
set -euo pipefail
part=${1:-all}
out=${2:-results/reference-v2}
if [[ ! $part =~ ^(1|2|3|all)$ ]]; then
    echo "reference_study.sh: PART is 1, 2, 3 or all, not '$part'" >&2
    exit 2
fi
archalign shortlist --panel cpu -k 3 --out "$out/shortlist.json" --no-progress
for shard in 0 1 2; do
    if [[ $part == all || $part == $((shard + 1)) ]]; then
        neurn run convnet "$out/shortlist.json" --variants baseline neurn randconv \
            prorandconv neurn+randconv neurn+prorandconv --seeds 0 1 2 --steps 600 \
            --evals 5 --batch-size 64 --no-weights --shard "$shard/3" --out "$out/study"
    fi
done
# the ConvNet beside the published figures, and every variant against RandConv per target
python "$(dirname "$0")/reference_published.py" "$out/study"
