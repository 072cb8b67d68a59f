"""Word n-gram language models for beam search, estimated with KenLM.

``build_ngram`` runs KenLM's ``lmplz`` (modified Kneser-Ney smoothing, Heafield et al. 2013)
on a text file of sentences, one per line, and ``build_binary`` on its ARPA output. An LM
directory holds:

- ``lm.bin``: the KenLM binary model (what the decoder loads; ``lm.arpa`` also works);
- ``lexicon.txt``: every word of the text with its spelling in the
  flashlight/torchaudio/fairseq lexicon format, ``WORD<TAB>W O R D |``;
- ``lm.json``: how it was made (order, text, sentence and word counts).

These three are all that ``build_ngram`` writes or replaces. It also deletes ``tuned.json``
(weights that ``wav2vec2 lm tune`` chose for the LM it replaces, :mod:`wav2vec2.tuned_weights`):
they belong to the old LM. Other files in the directory stay as they are.

The text must be written as the transcripts are (the built-in corpus: upper case, words
separated by spaces). The lexicon keeps every word; the decoder uses those that the model's
vocabulary can spell.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from wav2vec2.atomic import atomic_files, check_replaceable_dir
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import WORD_DELIMITER

MODEL_FILES = ("lm.bin", "lm.arpa")  # in the order the decoder looks for them
LEXICON_FILE = "lexicon.txt"
INFO_FILE = "lm.json"
TUNED_FILE = "tuned.json"  # written by `lm tune`; deleted when the LM is rebuilt


@dataclass(frozen=True)
class NgramInfo:
    order: int
    text: str
    sentences: int
    words: int  # running words
    vocabulary: int  # distinct words (lexicon entries)


def find_tool(name: str) -> str:
    """KenLM's command-line tools: beside this Python (the venv's bin, where
    ``scripts/build-kenlm.sh`` puts them), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise Wav2Vec2Error(
            f"KenLM's {name} is not installed; build it with `bash scripts/build-kenlm.sh` "
            "(`make lm-tools`)"
        )
    return found


def spelling(word: str) -> list[str]:
    """A word's letters followed by the word delimiter, as CTC letter models emit it."""
    return [*word, WORD_DELIMITER]


def write_lexicon(words: list[str], path: Path) -> None:
    path.write_text("".join(f"{w}\t{' '.join(spelling(w))}\n" for w in words), encoding="utf-8")


def read_lexicon(path: Path) -> list[tuple[str, list[str]]]:
    """(word, spelling) pairs; the spelling may omit the trailing word delimiter."""
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 2:
            raise Wav2Vec2Error(f"line {n}: expected a word and its spelling", path)
        entries.append((parts[0], parts[1:]))
    return entries


def _reason(stderr: bytes) -> str:
    """Why a KenLM tool stopped. Its exceptions print ``FILE:LINE in FUNCTION threw
    FDException because `ret < 1'.`` and, on the next line, the message ("No space left on
    device in ... while writing 15260 bytes"); threads may print other lines after it, so
    the message is looked for rather than taken from the end."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line] or ["(no output)"]
    threw = [i for i, line in enumerate(lines) if " threw " in line]
    if not threw:
        return lines[-1]
    return lines[threw[-1] + 1] if threw[-1] + 1 < len(lines) else lines[threw[-1]]


def _run(cmd: list[str], out_dir: Path, stage: Path, **kw) -> None:
    """Run a KenLM tool; on failure, a one-line error naming OUT_DIR with the tool's reason,
    paths in the temporary stage given as OUT_DIR's."""
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, **kw)
    if proc.returncode != 0:
        reason = _reason(proc.stderr)
        for form in (str(stage.resolve()), str(stage)):  # as the tool or the user gave it
            reason = reason.replace(form, str(out_dir))
        raise Wav2Vec2Error(
            f"{Path(cmd[0]).name} failed: {reason}; nothing in the LM directory was changed",
            out_dir,
        )


def _is_lm_dir(path: Path) -> bool:
    return (path / INFO_FILE).is_file()


def build_ngram(
    text: str | Path, out_dir: str | Path, order: int = 4, memory: str = "20%"
) -> NgramInfo:
    """Estimate an ORDER-gram LM on TEXT into OUT_DIR. Its files are built aside and put in
    place together once all are complete, replacing only their namesakes: a failed build
    leaves the earlier LM, and other files in OUT_DIR are never touched."""
    text, out_dir = Path(text), Path(out_dir)
    if not 1 < order <= 9:
        raise Wav2Vec2Error(f"--order must be between 2 and 9, got {order}")
    if not text.is_file():
        raise Wav2Vec2Error("text file not found", text)
    counts: Counter[str] = Counter()
    sentences = 0
    try:
        with text.open(encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if words:
                    sentences += 1
                    counts.update(words)
    except UnicodeDecodeError as exc:
        raise Wav2Vec2Error(f"not UTF-8 text ({exc.reason} at byte {exc.start})", text) from None
    if not sentences:
        raise Wav2Vec2Error("no text: every line is empty", text)
    # OUT_DIR is written into only if it is an earlier LM (or empty): a mistyped --out must
    # not mix an LM into someone's data folder.
    check_replaceable_dir(out_dir, _is_lm_dir, "an LM directory")
    lmplz, build_binary = find_tool("lmplz"), find_tool("build_binary")
    with atomic_files(out_dir) as stage:
        scratch = stage / "kenlm"  # lmplz's sort files and the ARPA text; deleted, not moved
        scratch.mkdir()
        arpa = scratch / "lm.arpa"
        # --discount_fallback: small texts have too few singletons for the Kneser-Ney
        # discounts; lmplz then uses fixed ones instead of failing.
        cmd = [lmplz, "-o", str(order), "-S", memory, "-T", str(scratch), "--discount_fallback"]
        with text.open("rb") as stdin, arpa.open("wb") as stdout:
            _run(cmd, out_dir, stage, stdin=stdin, stdout=stdout)
        _run([build_binary, str(arpa), str(stage / "lm.bin")], out_dir, stage)
        write_lexicon(sorted(counts), stage / LEXICON_FILE)
        info = NgramInfo(order, str(text.resolve()), sentences, sum(counts.values()), len(counts))
        (stage / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    _forget_tuned(out_dir)
    return info


def _forget_tuned(lm_dir: Path) -> None:
    """Delete the weights tuned for the LM just replaced: used with the new LM, they would
    pass for tuned when they are not."""
    try:
        (lm_dir / TUNED_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise Wav2Vec2Error(
            f"the LM was rebuilt, but the weights tuned for the old one could not be deleted "
            f"({exc.strerror or exc}): delete the file",
            lm_dir / TUNED_FILE,
        ) from None


def ensure_ngram(text: str | Path, out_dir: str | Path, order: int = 4) -> NgramInfo:
    """The LM in OUT_DIR when ``build_ngram`` finished one there from TEXT with ORDER (a run
    that resumes keeps it), else one built now."""
    info = read_info(out_dir)
    if info is None or info.text != str(Path(text).resolve()) or info.order != order:
        info = build_ngram(text, out_dir, order=order)
    return info


def read_info(lm_dir: str | Path) -> NgramInfo | None:
    """What ``build_ngram`` recorded in LM_DIR, or None when it holds no complete LM."""
    try:
        lm_files(lm_dir)
        return NgramInfo(**json.loads((Path(lm_dir) / INFO_FILE).read_text()))
    except (Wav2Vec2Error, OSError, ValueError, TypeError):
        return None


def lm_files(lm_dir: str | Path) -> tuple[Path, Path]:
    """(model, lexicon) of an LM directory, or a one-line error naming what is missing."""
    lm_dir = Path(lm_dir)
    if not lm_dir.is_dir():
        raise Wav2Vec2Error("LM directory not found", lm_dir)
    model = next((lm_dir / m for m in MODEL_FILES if (lm_dir / m).is_file()), None)
    if model is None:
        raise Wav2Vec2Error(f"no {' or '.join(MODEL_FILES)} in the LM directory", lm_dir)
    lexicon = lm_dir / LEXICON_FILE
    if not lexicon.is_file():
        raise Wav2Vec2Error(f"no {LEXICON_FILE} in the LM directory", lm_dir)
    return model, lexicon
