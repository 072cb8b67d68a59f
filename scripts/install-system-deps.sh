#!/usr/bin/env bash
# Debian packages for the built-in speech corpus (`wav2vec2 corpus make`): TTS engines and
# voices, and offline English text; and the tool chain that builds KenLM's n-gram estimator
# (`wav2vec2 lm build`, scripts/build-kenlm.sh); Chromium and its WebDriver, which the
# service's browser test drives (tests/test_service_browser.py); and tcmalloc, which the
# `wav2vec2` command runs under when it is installed (src/wav2vec2/allocator.py). All are
# in Debian's main section.
# Idempotent and quiet: a fast no-op when everything is already installed.
set -euo pipefail

PACKAGES=(
    espeak-ng espeak-ng-data
    flite
    festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    fortunes fortunes-min
    bible-kjv bible-kjv-text
    wordnet-base
    g++ cmake python3-dev zlib1g-dev libbz2-dev liblzma-dev
    libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
    chromium chromium-driver
    libtcmalloc-minimal4
)
# Jane Austen's novels ship as R data in r-cran-janeaustenr. Installing it would pull in
# all of R, so the .deb is unpacked into this folder instead; Python reads the R data.
AUSTEN_DIR=/usr/local/share/wav2vec2/janeaustenr

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
need_austen=0
[ -d "$AUSTEN_DIR/usr" ] || need_austen=1

if [ ${#missing[@]} -eq 0 ] && [ $need_austen -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        SUDO="sudo"
    else
        echo "install-system-deps: run as root, or install: ${missing[*]} r-cran-janeaustenr" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-system-deps: installing ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $need_austen -eq 1 ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt's sandbox user must be able to write the download there
    (cd "$tmp" && apt-get download -qq r-cran-janeaustenr)
    $SUDO mkdir -p "$AUSTEN_DIR.tmp"
    $SUDO dpkg-deb -x "$tmp"/r-cran-janeaustenr_*.deb "$AUSTEN_DIR.tmp"
    $SUDO rm -rf "$AUSTEN_DIR"
    $SUDO mv "$AUSTEN_DIR.tmp" "$AUSTEN_DIR"
    rm -rf "$tmp"
fi
