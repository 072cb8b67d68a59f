"""Offline English text that Debian packages install: raw sentences, in document order.

Each source yields *passages*: lists of consecutive raw sentences (a fortune, a Bible
chapter, a novel's chapter, one WordNet example). Keeping document order inside a passage
lets an utterance read connected text, as audiobook recordings do.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wav2vec2.corpus.normalize import split_sentences
from wav2vec2.corpus.rdata import load_lazy_db

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Fortune files that are mostly code, ASCII art, shell jokes, or jokes about groups.
FORTUNES_SKIP = frozenset(
    "art ascii-art computers debian linux linuxcookie perl translate-me zippy ethnic".split()
)
WORDNET_DIR = Path("/usr/share/wordnet")
AUSTEN_SUBDIR = "usr/lib/R/site-library/janeaustenr/data"
# Where scripts/install-system-deps.sh unpacks r-cran-janeaustenr, and the per-user fallback.
AUSTEN_DIRS = (
    Path("/usr/local/share/wav2vec2/janeaustenr"),
    Path.home() / ".cache" / "wav2vec2" / "janeaustenr",
)


@dataclass(frozen=True)
class TextSource:
    """A text source: its name, the Debian packages that provide it, and its licence."""

    name: str
    packages: tuple[str, ...]
    licence: str


SOURCES = (
    TextSource("fortunes", ("fortunes", "fortunes-min"), "BSD-style / public domain quotations"),
    TextSource("austen", ("r-cran-janeaustenr",), "public domain text (package MIT)"),
    TextSource("kjv", ("bible-kjv", "bible-kjv-text"), "public domain text (package GPL-2+)"),
    TextSource("wordnet", ("wordnet-base",), "WordNet 3.0 licence (BSD-like)"),
)
SOURCE_NAMES = tuple(sorted(s.name for s in SOURCES))


def fortunes_passages(folder: Path = FORTUNES_DIR) -> Iterator[list[str]]:
    """Each fortune cookie (``%``-separated) minus its ``-- Author`` attribution."""
    for path in sorted(folder.iterdir()):
        if path.suffix or path.name in FORTUNES_SKIP or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for cookie in text.split("\n%\n"):
            lines = []
            for line in cookie.splitlines():
                if line.strip().startswith("--") or line.startswith(("\t", "    ")):
                    break  # attribution, or indented verse/code/dialogue layout
                lines.append(line)
            yield split_sentences(" ".join(lines))


def austen_folder() -> Path | None:
    """The unpacked r-cran-janeaustenr data folder, fetching the .deb when it is missing.

    ``apt-get download`` needs no root, so this works for any user on Debian.
    """
    for base in AUSTEN_DIRS:
        if (base / AUSTEN_SUBDIR / "Rdata.rdb").exists():
            return base / AUSTEN_SUBDIR
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return None
    target = AUSTEN_DIRS[-1]
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            ["apt-get", "download", "-qq", "r-cran-janeaustenr"], cwd=tmp, capture_output=True
        )
        debs = list(Path(tmp).glob("r-cran-janeaustenr_*.deb"))
        if got.returncode != 0 or not debs:
            return None
        unpacked = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(unpacked), str(target))
    return target / AUSTEN_SUBDIR


def austen_passages(folder: Path) -> Iterator[list[str]]:
    """Paragraphs of the six novels, one passage per chapter (headings dropped)."""
    novels = load_lazy_db(folder)
    for name in sorted(novels):
        chapter: list[str] = []
        paragraph: list[str] = []
        for line in [*novels[name], ""]:
            line = line or ""
            if re.match(r"^\s*(CHAPTER|Chapter|VOLUME|Volume)\b", line):
                yield chapter
                chapter = []
                continue
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                chapter.extend(split_sentences(" ".join(paragraph)))
                paragraph = []
        yield chapter


def kjv_passages(bible: str = "bible") -> Iterator[list[str]]:
    """The King James Bible, one passage per chapter.

    The KJV prints the divine name in small capitals (``LORD``); it is lowered to ``Lord``
    so that the acronym filter keeps those verses.
    """
    dump = subprocess.run(
        [bible, "gen1:1-rev22:21"], capture_output=True, text=True, check=True
    ).stdout
    chapter: list[str] = []
    verse: list[str] = []

    def flush() -> None:
        if verse:
            text = " ".join(verse)
            text = re.sub(r"\b(LORD|GOD|JEHOVAH|JAH)\b", lambda m: m[1].title(), text)
            chapter.extend(split_sentences(text))
            verse.clear()

    for line in dump.splitlines():
        match = re.match(r"^\s+\d+\s(.*)$", line)
        if not line.strip():
            flush()
        elif match:
            flush()
            verse.append(match.group(1))
        elif verse:  # a verse's continuation line
            verse.append(line)
        else:  # a "Genesis 1" heading, after a blank line
            yield chapter
            chapter = []
    flush()
    yield chapter


def wordnet_passages(folder: Path = WORDNET_DIR) -> Iterator[list[str]]:
    """The quoted usage examples in WordNet's glosses, each its own passage."""
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (
            (folder / f"data.{pos}").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header
            gloss = line.split("|", 1)[1]
            for example in re.findall(r'"([^"]+)"', gloss):
                example = example.strip()
                if example and example[0].islower():
                    example = example[0].upper() + example[1:]
                yield [example]


def missing_text_packages() -> list[str]:
    """Debian packages for text sources that are not installed (Austen is fetched apart)."""
    missing = []
    if not (FORTUNES_DIR / "fortunes").is_file():
        missing += ["fortunes", "fortunes-min"]
    if not shutil.which("bible") or not Path("/usr/lib/bible.data").exists():
        missing += ["bible-kjv", "bible-kjv-text"]
    if not (WORDNET_DIR / "data.noun").exists():
        missing += ["wordnet-base"]
    return missing


@functools.lru_cache(maxsize=1)
def all_passages() -> dict[str, list[list[str]]]:
    """Every source's passages, keyed by source name (read once per process; do not mutate)."""
    folder = austen_folder()
    if folder is None:
        raise FileNotFoundError("r-cran-janeaustenr")
    return {
        "fortunes": list(fortunes_passages()),
        "austen": list(austen_passages(folder)),
        "kjv": list(kjv_passages()),
        "wordnet": list(wordnet_passages()),
    }
