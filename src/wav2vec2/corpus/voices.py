"""The TTS voices of Debian's main section, grouped by the speaker who was recorded.

Splits are made over *speakers*, not voices: one recorded person can reach us through two
engines (slt through flite and festival's HTS voice, kal through flite's kal16 and festival's
diphone voice), and holding out a voice but not its speaker would leak that person into
training. espeak-ng's formant voices are not recordings; each accent x variant pair is
treated as its own speaker, and whole *variants* (timbres) are held out for dev and test,
so a held-out espeak speaker shares neither timbre nor accent-timbre pairing with training.
"""

from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

# espeak-ng's English accents (language codes).
ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# Voice variants (timbres) and the split each belongs to. The novelty variants (whisper,
# croak, robots) are left out: no recorded speech sounds like them.
ESPEAK_VARIANT_SPLIT = {
    **{v: "train" for v in ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3")},
    **{v: "dev" for v in ("m7", "f4")},
    **{v: "test" for v in ("m8", "f5")},
}
# The recorded speakers and their split. slt is the only recorded woman, so she trains.
RECORDED_SPEAKER_SPLIT = {
    "kal": "train",
    "slt": "train",
    "rms": "train",
    "ked": "dev",
    "awb": "test",
}
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Voice:
    """One way to make speech: an engine, its voice name, and the speaker behind it.

    ``rate`` scales speaking speed (1.0 = the engine's default); for espeak-ng, ``pitch``
    is its 0-99 pitch setting. Both are a speaker's base; utterances jitter around them.
    """

    engine: str  # "espeak", "flite" or "festival"
    name: str  # the engine's own name: "en-us+m3", "slt", "cmu_us_slt_arctic_hts"
    speaker: str  # the underlying speaker: "espeak-en-us-m3", "slt"
    rate: float = 1.0
    pitch: int = 50

    @property
    def id(self) -> str:
        """A file-name-safe identifier, unique across voices."""
        return f"{self.engine}-{self.name.replace('+', '-').replace('_', '-')}"

    @property
    def recorded(self) -> bool:
        return self.engine != "espeak"


def _espeak_voice(accent: str, variant: str) -> Voice:
    # A fixed base speed and pitch per speaker, from a hash of its name (not from the seed):
    # each synthetic speaker keeps one identity across corpora and seeds.
    h = zlib.crc32(f"{accent}+{variant}".encode())
    rate = 0.88 + 0.24 * ((h & 0xFFFF) / 0xFFFF)  # x espeak's 175 wpm: 154..196 wpm
    pitch = 35 + (h >> 16) % 31  # 35..65
    return Voice("espeak", f"{accent}+{variant}", f"espeak-{accent}-{variant}", rate, pitch)


def all_voices() -> tuple[Voice, ...]:
    """Every voice, in a fixed order."""
    recorded = (
        Voice("flite", "kal16", "kal"),
        Voice("festival", "kal_diphone", "kal"),
        Voice("flite", "slt", "slt"),
        Voice("festival", "cmu_us_slt_arctic_hts", "slt"),
        Voice("flite", "rms", "rms"),
        Voice("festival", "ked_diphone", "ked"),
        Voice("flite", "awb", "awb"),
    )
    espeak = tuple(_espeak_voice(a, v) for v in ESPEAK_VARIANT_SPLIT for a in ESPEAK_ACCENTS)
    return recorded + espeak


def split_of(voice: Voice) -> str:
    """The split ("train", "dev" or "test") that a voice's speaker belongs to."""
    if voice.recorded:
        return RECORDED_SPEAKER_SPLIT[voice.speaker]
    return ESPEAK_VARIANT_SPLIT[voice.name.split("+")[1]]


def voices_by_split() -> dict[str, tuple[Voice, ...]]:
    return {s: tuple(v for v in all_voices() if split_of(v) == s) for s in SPLITS}


# Debian packages that provide each engine, and what shows that they are installed.
ENGINE_PACKAGES = {
    "espeak": ("espeak-ng", "espeak-ng-data"),
    "flite": ("flite",),
    "festival": ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"),
}
ENGINE_LICENCES = {
    "espeak": "GPL-3+ (espeak-ng, espeak-ng-data)",
    "flite": "BSD-style (flite: Carnegie Mellon University licence; voices CMU ARCTIC, free use)",
    "festival": "X11-style (festival); voices: kal/ked diphones free, cmu_us_slt_arctic_hts BSD",
}
_FESTIVAL_VOICE_DIRS = {
    "festvox-kallpc16k": "english/kal_diphone",
    "festvox-kdlpc16k": "english/ked_diphone",
    "festvox-us-slt-hts": "us/cmu_us_slt_arctic_hts",
}


def missing_engine_packages() -> list[str]:
    """Debian packages the TTS engines need that are not installed."""
    missing = []
    if not shutil.which("espeak-ng"):
        missing += list(ENGINE_PACKAGES["espeak"])
    if not shutil.which("flite"):
        missing.append("flite")
    if not shutil.which("festival"):
        missing.append("festival")
    for package, sub in _FESTIVAL_VOICE_DIRS.items():
        if not (Path("/usr/share/festival/voices") / sub).is_dir():
            missing.append(package)
    return missing
