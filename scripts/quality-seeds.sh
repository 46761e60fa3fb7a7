#!/usr/bin/env bash
# The quality suite (../shared/quality) at several seeds: the built-in baselines and smrt's
# defaults (plus FLAGS) at each seed, each seed's target numbers, then every set's record across
# the seeds (scripts/quality_across_seeds.py). QUALITY.md's seven-seed table is
#
#   scripts/quality-seeds.sh PYTHON 0 1 2 3 4 5 6
#
# PYTHON is a venv's python with the suite's requirements.txt installed. Environment: OUT (the
# results' folder, default /tmp/smrt-quality-seeds; baselines already there are reused), FLAGS
# (more smrt flags), DATASETS (a --datasets list for quality.py, for example the CSVs of
# scripts/rare_class_sets.py), DATA_DIR and SUITE (quality.py's --data-dir and --suite, for
# example the folder scripts/wider_sets.py writes). Each seed takes 2-3 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: scripts/quality-seeds.sh PYTHON [SEED...]}
shift
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1 2 3 4 5 6)
Q=../shared/quality
OUT=${OUT:-/tmp/smrt-quality-seeds}
SETS=()
[ -n "${DATASETS:-}" ] && SETS=(--datasets "$DATASETS")
[ -n "${DATA_DIR:-}" ] && SETS+=(--data-dir "$DATA_DIR")
[ -n "${SUITE:-}" ] && SETS+=(--suite "$SUITE")
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cargo build --release --quiet
for s in "${SEEDS[@]}"; do
    mkdir -p "$OUT/base-s$s"
    for b in none random smote; do
        [ -f "$OUT/base-s$s/$b.json" ] || "$PY" $Q/quality.py --balancer $b --seed "$s" "${SETS[@]}" \
            --out "$OUT/base-s$s/$b.json" >/dev/null
    done
    "$PY" $Q/quality.py --seed "$s" "${SETS[@]}" --name smrt --out "$OUT/smrt-s$s.json" \
        --cmd "target/release/smrt balance --input {in} --output {out} --ratio {ratio} --seed {seed} --quiet --backend cpu ${FLAGS:-}" >/dev/null
    "$PY" scripts/quality_summary.py "$OUT/smrt-s$s.json" "$OUT/base-s$s"
done
"$PY" scripts/quality_across_seeds.py "$OUT" "${SEEDS[@]}"
