#!/usr/bin/env bash
# The peer library the training-step benchmarks compare with besides transformers: fairseq,
# in a virtual environment of its own (default .peers-venv; `make peers`). It is not part of
# `make setup` or CI: the benchmarks' fairseq side is optional (--fairseq-python), and the
# build takes about 3 minutes of CPU. A no-op when fairseq is already installed there.
#
#   bash scripts/install-peers.sh [VENV]
#   .venv/bin/python benchmarks/pretrain_step.py --fairseq-python VENV/bin/python ...
#
# fairseq 0.12.2 does not build from its sdist (a file is missing); fairseq-fixed 0.12.3.1
# does. torch is this project's CPU build, pinned by constraints.txt: --no-build-isolation
# builds fairseq's extensions against it instead of fetching a CUDA torch, and --no-deps keeps
# pip from pulling torchaudio (a CUDA build here, which fails to import).
set -euo pipefail
VENV=${1:-.peers-venv}
FAIRSEQ_VERSION=0.12.3.1
FAIRSEQ=fairseq-fixed==$FAIRSEQ_VERSION
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# torch==2.13.0 (the project's pins), and the versions of everything else measured here
PINS=(-c "$ROOT/constraints.txt" -c "$ROOT/scripts/peers-constraints.txt")
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "import importlib.metadata as m, hydra, safetensors, soxr
assert m.version('fairseq-fixed') == '$FAIRSEQ_VERSION'" 2>/dev/null; then
    exit 0
fi
test -x "$PY" || python3.11 -m venv "$VENV"
"$PY" -m pip install -q --upgrade pip
# Build requirements first: fairseq's setup.py compiles Cython and C++ extensions against them.
"$PY" -m pip install -q "${PINS[@]}" torch==2.13.0 numpy cython setuptools wheel
# fairseq's runtime dependencies without torchaudio; safetensors and soxr are for the
# benchmark's fairseq worker, which renames weights with this project's
# wav2vec2.interop.fairseq (its imports need them).
"$PY" -m pip install -q "${PINS[@]}" cffi hydra-core omegaconf regex sacrebleu tqdm bitarray \
    scikit-learn packaging soundfile safetensors soxr
echo "install-peers: building $FAIRSEQ into $VENV (about 3 minutes of CPU)"
MAX_JOBS=2 nice -n 19 "$PY" -m pip install -q --no-build-isolation --no-deps "${PINS[@]}" \
    "$FAIRSEQ"
"$PY" -c "import fairseq; print('install-peers: fairseq', fairseq.__version__, 'in $VENV')"
