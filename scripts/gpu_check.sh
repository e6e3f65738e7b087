#!/usr/bin/env bash
# The GPU check in two halves (issue 26; ../shared/notes/gpu-runs.md says what the GPU
# machine has): `prepare` here, `run` there, with gpu_data/ carried along.
#
#   bash scripts/gpu_check.sh prepare      # here: Kodak images + the missing wheels -> gpu_data/
#   bash scripts/gpu_check.sh run          # there: install the wheels, build, check -> $OUT
#
# `run` installs the cp312 wheels the GPU machine lacks (ml-collections, constriction,
# bjontegaard, submitit) into gpu_data/site with pip --no-index, builds the C
# extensions, runs `python -m experiments.gpu_check` on gpu_data/kodak (full-size
# images, 4 lambdas, 10k steps, stopping 60 s before CHECK_LIMIT_S = 540 s) and leaves
# $OUT/check.tar.gz. Extra arguments after `run` go to experiments.gpu_check (e.g.
# --steps=200 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=gpu_data
case "${1:-}" in
  prepare)
    mkdir -p "$DATA/kodak" "$DATA/wheels"
    cp ../shared/data/kodak/kodim*.png "$DATA/kodak/"
    python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform any -d "$DATA/wheels" \
        ml-collections constriction bjontegaard submitit
    du -sh "$DATA"
    ;;
  run)
    shift
    OUT="${OUT:-runs/gpu_out}"
    mkdir -p "$OUT"
    python3 -m pip install --quiet --no-index --no-deps --target "$DATA/site" "$DATA"/wheels/*.whl
    export PYTHONPATH="$PWD:$PWD/$DATA/site${PYTHONPATH:+:$PYTHONPATH}"
    python3 setup.py -q build_ext --inplace >/dev/null 2>&1 || echo "no C extensions (numba path)"
    python3 -c 'import jax; print("devices:", jax.devices())'
    python3 -m experiments.gpu_check --images="$DATA/kodak/*.png" --out="$OUT/check" \
        --time_limit_s="${CHECK_LIMIT_S:-540}" --reserve_s=60 "$@"
    ;;
  *) echo "usage: $0 prepare | run [gpu_check args]" >&2; exit 2 ;;
esac
