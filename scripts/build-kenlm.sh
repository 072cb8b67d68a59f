#!/usr/bin/env bash
# KenLM's n-gram estimator (lmplz) and its binary-format converter (build_binary), built
# from the kenlm source release into VENV/bin. `wav2vec2 lm build` runs them. The kenlm
# Python module (querying) comes from pip; pip's package does not include these tools.
# Needs the tool chain from scripts/install-system-deps.sh. A no-op when both are there.
set -euo pipefail
VENV=${1:-.venv}
VERSION=0.3.0
if [ -x "$VENV/bin/lmplz" ] && [ -x "$VENV/bin/build_binary" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-kenlm: building lmplz and build_binary (KenLM $VERSION), about a minute"
"$VENV/bin/python" -m pip download -q --no-deps --no-binary kenlm "kenlm==$VERSION" -d "$work"
tar xzf "$work/kenlm-$VERSION.tar.gz" -C "$work"
if ! cmake -S "$work/kenlm-$VERSION" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    >"$work/cmake.log" 2>&1; then
    cat "$work/cmake.log" >&2
    exit 1
fi
if ! make -C "$work/build" -j"$(nproc)" lmplz build_binary >"$work/make.log" 2>&1; then
    tail -n 40 "$work/make.log" >&2
    exit 1
fi
cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$VENV/bin/"
