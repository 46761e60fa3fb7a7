#!/usr/bin/env bash
# Reproduces the measurement behind smrt's default VAE and sampling settings (QUALITY.md):
# the quality suite (../shared/quality) run with the release binary under each candidate setting,
# then each run summarised against none / random / SMOTE.
#
#   scripts/quality-defaults.sh PYTHON [SEED]
#
# PYTHON is a venv's python with the suite's requirements.txt installed. For a SEED other than 0
# the built-in baselines of that seed are run first (about 3 minutes). Each candidate takes
# about a minute on two cores (16 candidates).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: scripts/quality-defaults.sh PYTHON [SEED]}
SEED=${2:-0}
Q=../shared/quality
OUT=${OUT:-/tmp/smrt-quality}
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cargo build --release --quiet
BASE=$Q/baselines
if [ "$SEED" != 0 ]; then
    BASE=$OUT/baselines-s$SEED
    mkdir -p "$BASE"
    for b in none random smote; do
        [ -f "$BASE/$b.json" ] || "$PY" $Q/quality.py --balancer $b --seed "$SEED" --out "$BASE/$b.json" >/dev/null
    done
fi
# name | flags (on top of the defaults)
candidates=(
    "default|"
    "clip|--clip"
    "residual|--generation residual"
    "posterior|--generation posterior"
    "interpolate|--generation interpolate"
    "learned-variance|--likelihood gaussian-learned"
    "residual-learned-deep|--generation residual --likelihood gaussian-learned --hidden 64,32 --latent 0.5 --beta 1 --learning-rate 1e-3 --batch-size 64 --epochs 300"
    # the knobs of the defaults, one at a time
    "beta-0.03|--beta 0.03"
    "beta-0.3|--beta 0.3"
    "beta-1|--beta 1"
    "temperature-0.8|--temperature 0.8"
    "temperature-1.25|--temperature 1.25"
    "hidden-128|--hidden 128"
    "steps-3000|--min-steps 3000"
    "epochs-300|--epochs 300 --min-steps 300"
    "epochs-500|--epochs 500 --min-steps 500"
)
for c in "${candidates[@]}"; do
    name=${c%%|*}
    flags=${c#*|}
    "$PY" $Q/quality.py --seed "$SEED" --name "$name" --out "$OUT/$name-s$SEED.json" \
        --cmd "target/release/smrt balance --input {in} --output {out} --ratio {ratio} --seed {seed} --quiet --backend cpu $flags" >/dev/null
    "$PY" scripts/quality_summary.py "$OUT/$name-s$SEED.json" "$BASE"
done
