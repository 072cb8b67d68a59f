"""Atomic writes: complete or untouched, no leftovers, and the user's umask respected."""

import os
import stat
from pathlib import Path

import pytest
import torch

from wav2vec2 import SMALL, Wav2Vec2Model
from wav2vec2.atomic import (
    atomic_dir,
    atomic_files,
    atomic_write,
    check_dir_dest,
    check_file_dest,
    replace_dir,
    write_npy_atomic,
    write_safetensors_atomic,
    write_text_atomic,
)
from wav2vec2.checkpoint import training_state as ckpt
from wav2vec2.data.sampler import BucketBatchSampler
from wav2vec2.errors import Wav2Vec2Error


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_text_lands_whole_with_the_umask_mode(tmp_path, umask_022):
    path = tmp_path / "sub" / "report.json"
    write_text_atomic(path, "ünïcode\nline\n")
    assert path.read_bytes() == "ünïcode\nline\n".encode()
    # tempfile.mkstemp would have left it 0600: unreadable to a service or a colleague
    assert _mode(path) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    # one clear line naming the file (the CLI prints it), never the bare OSError
    with pytest.raises(Wav2Vec2Error, match=r"model.safetensors: cannot write \(No space left"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_a_file_refused_inside_a_folder_names_the_folder(tmp_path):
    dest = tmp_path / "update_00000003"

    def fail(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    # the file's own folder is a temporary one that is gone by the time the user reads it:
    # the file is named inside the folder asked for
    with pytest.raises(Wav2Vec2Error) as info, atomic_dir(dest) as tmp:
        atomic_write(tmp / "model.safetensors", fail)
    assert str(info.value) == (
        f"{dest / 'model.safetensors'}: cannot write (No space left on device); what was there "
        "before is unchanged"
    )
    assert list(tmp_path.iterdir()) == []


def test_replace_dir_swaps_and_puts_the_old_one_back_on_failure(tmp_path, monkeypatch):
    dest, new = tmp_path / "lm", tmp_path / ".tmp-new"
    dest.mkdir()
    (dest / "info.json").write_text("old")
    new.mkdir()
    (new / "info.json").write_text("new")

    real_rename = Path.rename

    def rename(self, target):
        if self == new:
            raise OSError("cross-device link")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="cross-device"):
        replace_dir(new, dest)
    assert (dest / "info.json").read_text() == "old"  # put back, not left under a hidden name
    monkeypatch.setattr(Path, "rename", real_rename)

    replace_dir(new, dest)
    assert (dest / "info.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm"]


def test_checkpoints_are_readable_by_others(tmp_path, umask_022):
    model = Wav2Vec2Model(SMALL)
    sampler = BucketBatchSampler([16000], max_tokens=16000, max_sample_size=None, seed=0)
    state = ckpt.TrainerState(1, 0, 0, None, [], {})
    opt = torch.optim.AdamW(model.parameters())
    path = ckpt.save_checkpoint(
        tmp_path, model, opt, None, sampler, state, vocab=None, run_config={}
    )
    best = ckpt.mark_best(tmp_path, path)
    for folder in (path, best):
        assert _mode(folder) == 0o755  # mkdtemp would make it 0700
        assert all(_mode(f) == 0o644 for f in folder.iterdir())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best", path.name]


def test_atomic_files_land_together_and_touch_nothing_else(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "lm.bin").write_text("old")
    with atomic_files(folder) as stage:
        (stage / "lm.bin").write_text("new")
        (stage / "lexicon.txt").write_text("new")
        (stage / "scratch").mkdir()  # scratch space: deleted, not moved
    assert {p.name: p.read_text() for p in folder.iterdir()} == {
        "notes.txt": "mine", "lm.bin": "new", "lexicon.txt": "new",
    }  # fmt: skip
    # One file that cannot land (a folder in its place): none lands, and no stage is left.
    (folder / "lexicon.txt").unlink()
    (folder / "lexicon.txt").mkdir()
    with pytest.raises(Wav2Vec2Error, match="lm/lexicon.txt: is a folder; give a file path"):
        with atomic_files(folder) as stage:
            (stage / "lm.bin").write_text("newer")
            (stage / "lexicon.txt").write_text("newer")
    assert (folder / "lm.bin").read_text() == "new"
    assert sorted(p.name for p in folder.iterdir()) == ["lexicon.txt", "lm.bin", "notes.txt"]


def test_a_failure_names_the_destination_not_the_temporary_stage(tmp_path):
    def full(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    # A folder this call created goes again with the failure.
    with pytest.raises(Wav2Vec2Error, match=r"^\S+/new/a.txt: cannot write \(No space left"):
        with atomic_files(tmp_path / "new") as stage:
            atomic_write(stage / "a.txt", full)
    assert not (tmp_path / "new").exists()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("old")
    with pytest.raises(Wav2Vec2Error, match=r"^\S+/model/weights: cannot write \(No space") as e:
        with atomic_dir(tmp_path / "model") as tmp:
            atomic_write(tmp / "weights", full)
    assert ".tmp-" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (tmp_path / "model" / "config.json").read_text() == "old"


def test_outputs_in_the_way_are_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(Wav2Vec2Error, match="folder: is a folder; give a file path"):
        check_file_dest(tmp_path / "folder")
    with pytest.raises(Wav2Vec2Error, match=r"file/out.npy: \S+/file is a file, not a folder"):
        check_file_dest(tmp_path / "file" / "out.npy")
    with pytest.raises(Wav2Vec2Error, match="file: is a file; give a folder path"):
        check_dir_dest(tmp_path / "file")
    with pytest.raises(Wav2Vec2Error, match="file is a file, not a folder"):
        check_dir_dest(tmp_path / "file" / "sub" / "dir")
    check_file_dest(tmp_path / "new" / "deeper" / "out.npy")  # absent parents are fine
    assert (tmp_path / "file").read_text() == "x"


def test_safetensors_and_npy_report_a_full_disk_as_such(tmp_path, monkeypatch):
    import numpy as np
    from safetensors import SafetensorError

    def serialize_fails(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")  # fmt: skip

    monkeypatch.setattr("safetensors.torch.save_file", serialize_fails)
    with pytest.raises(Wav2Vec2Error, match=r"w.safetensors: cannot write \(No space left on"):
        write_safetensors_atomic(tmp_path / "w.safetensors", {"a": torch.zeros(2)})
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_npy_atomic(tmp_path / "f.npy", array)
    assert np.array_equal(np.load(tmp_path / "f.npy"), array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]


def test_errors_cross_process_boundaries_whole():
    """A worker pool pickles a worker's exception back to the parent; one that cannot be
    rebuilt there leaves the pool waiting forever (corpus make on a full disk hung so)."""
    import pickle

    from wav2vec2.atomic import WriteFailed
    from wav2vec2.training.trainer import TrainingStopped

    for error in (
        Wav2Vec2Error("bad", "/x.wav"),
        WriteFailed("No space left on device", "/out/a.flac"),
        TrainingStopped("stopped"),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__
