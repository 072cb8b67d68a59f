"""Reading the project's text files (manifests, labels, dictionaries, LM text) with one
clear error: a missing file, a folder, no permission, or a byte that is not UTF-8 (named
with its line) is a Wav2Vec2Error naming the file, never a bare OSError or
UnicodeDecodeError."""

from __future__ import annotations

from pathlib import Path

from wav2vec2.errors import Wav2Vec2Error


def read_lines(path: str | Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file (a trailing newline ends the last line, it does not
    start an empty one), or one Wav2Vec2Error naming the file, and for a bad byte its line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Wav2Vec2Error(f"{what} not found", path) from None
    except IsADirectoryError:
        raise Wav2Vec2Error(f"is a folder, not a {what} file", path) from None
    except OSError as exc:
        raise Wav2Vec2Error(f"cannot read {what} ({exc.strerror or exc})", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Wav2Vec2Error(f"line {line}: not UTF-8 text (byte {exc.start})", path) from None
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def text_or_file(arg: str) -> str:
    """A command's TEXT argument: the contents of the file it names (lines joined by
    spaces), or else the text itself."""
    try:
        named = Path(arg).exists()
    except (OSError, ValueError):  # too long or odd for a path: it is text
        named = False
    return " ".join(read_lines(arg, "text file")) if named else arg
