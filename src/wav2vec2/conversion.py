"""``convert``: any model :mod:`wav2vec2.loading` reads, written as our model directory or as
a HuggingFace one.

Nothing is written over what this did not write: DEST may not be the source, and each
writer replaces only an earlier output of its own (:func:`check_model_dest`,
:func:`check_hf_dest`); DEST is checked before the source is read, so a refusal is quick.
"""

from __future__ import annotations

from pathlib import Path

from wav2vec2.checkpoint.model_dir import LoadedCheckpoint, check_model_dest, save_model_dir
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.huggingface import check_hf_dest, write_hf_dir
from wav2vec2.loading import build_model, read_checkpoint

FORMATS = ("wav2vec2", "huggingface")


def is_source(src: str | Path, dest: Path) -> bool:
    """Whether DEST is the model SRC names: its folder, or the folder of its file (a fairseq
    ``.pt``, a ``config.json``). A hub id that is not a local path is never DEST."""
    src = Path(src)
    if not src.exists() or not dest.exists():
        return False
    places = {src.resolve()} | ({src.resolve().parent} if src.is_file() else set())
    return dest.resolve() in places


def convert_model(src: str | Path, dest: str | Path, to: str = "wav2vec2") -> LoadedCheckpoint:
    """Read SRC, check that its weights fit its config, and write it to DEST in format TO."""
    dest = Path(dest)
    if to not in FORMATS:
        raise Wav2Vec2Error(f"unknown format {to!r}; choose from {', '.join(FORMATS)}")
    if is_source(src, dest):
        raise Wav2Vec2Error(
            "is the model being converted; convert writes a new folder, give another DEST", dest
        )
    check_dest = check_hf_dest if to == "huggingface" else check_model_dest
    check_dest(dest)
    ckpt = read_checkpoint(src)
    model = build_model(ckpt)  # validates that weights and config agree
    if to == "huggingface":
        write_hf_dir(model.state_dict(), ckpt.config, ckpt.vocab, dest)
    else:
        save_model_dir(model, dest, ckpt.vocab)
    return ckpt
