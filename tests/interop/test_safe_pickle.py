"""The restricted unpickler: fairseq-style checkpoints load without their libraries, and a
pickle that would run code is refused before anything runs."""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import subprocess
import sys
import types
import typing

import numpy as np
import pytest
import torch

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.safe_pickle import safe_load


class RunsACommand:
    """Unpickling this calls os.system (the classic malicious pickle)."""

    def __init__(self, sentinel: str):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


class EvalsCode:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


class StartsAProcess:
    def __init__(self, sentinel: str):
        self.sentinel = sentinel

    def __reduce__(self):
        return (subprocess.Popen, (["touch", self.sentinel],))


def save(obj, path, fmt: str):
    if fmt == "zip":
        torch.save(obj, path)
    elif fmt == "legacy":  # torch < 1.6 (the original wav2vec 2.0 releases)
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle named .pt
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    return path


FORMATS = ["zip", "legacy", "plain"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("payload", "forbidden"),
    [
        (RunsACommand, "system"),  # posix.system on Linux
        (StartsAProcess, "subprocess.Popen"),
        (EvalsCode, "builtins.eval"),
    ],
)
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, fmt, payload, forbidden):
    sentinel = tmp_path / "SENTINEL"
    obj = payload(str(sentinel)) if payload is not EvalsCode else payload()
    # Hidden where a real checkpoint has plain data. (A bare pickle cannot hold tensors: it
    # would pickle them through torch.storage._load_from_bytes, itself refused.)
    weights = {"w": torch.zeros(2)} if fmt != "plain" else {}
    ckpt = {"model": weights, "args": argparse.Namespace(arch="wav2vec2"),
            "extra_state": {"metrics": [obj]}}  # fmt: skip
    path = save(ckpt, tmp_path / "evil.pt", fmt)
    with pytest.raises(Wav2Vec2Error) as info:
        safe_load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "refusing to load" in message and forbidden in message
    assert not sentinel.exists()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_fairseq_style_content_loads(tmp_path, fmt):
    weights = collections.OrderedDict(w=torch.randn(3, 4), b=torch.arange(4.0))
    ckpt = {
        "args": argparse.Namespace(arch="wav2vec2", latent_temp="(2,0.5,0.999995)", lr=[5e-4]),
        "model": weights,
        "param": torch.nn.Parameter(torch.ones(2)),
        "extra_state": {"best": np.float64(1.5), "array": np.zeros(3), "bytes": b"\x00\xff"},
        "types": [typing.Any, typing.Optional[int], type(None)],  # noqa: UP045
        "misc": (1, 2.5, None, True, {"a", "b"}, frozenset({1}), collections.defaultdict(list)),
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "half": torch.ones(2, dtype=torch.float16),
    }
    got = safe_load(save(ckpt, tmp_path / "ok.pt", fmt))
    assert got["args"] == {"arch": "wav2vec2", "latent_temp": "(2,0.5,0.999995)", "lr": [5e-4]}
    assert list(got["model"]) == ["w", "b"]
    assert torch.equal(got["model"]["w"], weights["w"])
    assert torch.equal(got["param"], torch.ones(2))
    assert got["extra_state"]["bytes"] == b"\x00\xff"
    assert got["misc"][:5] == (1, 2.5, None, True, {"a", "b"})
    assert got["device"] == torch.device("cpu") and got["dtype"] is torch.float16
    assert got["half"].dtype == torch.float16
    assert "numpy" in repr(got["extra_state"]["best"])  # kept as an inert stand-in


@pytest.mark.parametrize("protocol", [0, 1, 2, 4])
def test_stand_ins_never_import_their_modules(tmp_path, protocol):
    """A pickle naming fairseq/omegaconf classes loads without importing either (in every
    pickle protocol: 0 and 1 rebuild objects through copyreg._reconstructor)."""
    modules = {n: types.ModuleType(n) for n in ("fairseq", "fairseq.data", "omegaconf")}
    dictionary_cls = type("Dictionary", (), {"__module__": "fairseq.data"})
    modules["fairseq.data"].Dictionary = dictionary_cls
    d = dictionary_cls()
    d.symbols, d.nspecial = ["<s>", "<pad>", "</s>", "<unk>", "A"], 4
    sys.modules.update(modules)
    try:
        path = tmp_path / "d.pt"
        torch.save({"task_state": {"target_dictionary": d}}, path, pickle_protocol=protocol)
    finally:
        for n in modules:
            del sys.modules[n]
    got = safe_load(path)
    assert got["task_state"]["target_dictionary"] == {"symbols": d.symbols, "nspecial": 4}
    assert "fairseq" not in sys.modules and "omegaconf" not in sys.modules


def _omegaconf_like(tmp_path):
    """A DictConfig-shaped pickle with interpolations and a missing value."""
    mods = {n: types.ModuleType(n) for n in ("omegaconf", "omegaconf.dictconfig",
                                             "omegaconf.nodes")}  # fmt: skip
    DictConfig = type("DictConfig", (), {"__module__": "omegaconf.dictconfig"})
    AnyNode = type("AnyNode", (), {"__module__": "omegaconf.nodes"})
    mods["omegaconf.dictconfig"].DictConfig, mods["omegaconf.nodes"].AnyNode = DictConfig, AnyNode

    def container(content, parent=None):
        c = DictConfig()
        c.__dict__.update(_metadata=None, _parent=parent, _content={})
        for k, v in content.items():
            if isinstance(v, dict):
                c._content[k] = container(v, c)
            else:
                node = AnyNode()
                node.__dict__.update(_val=v, _metadata=None, _parent=c)
                c._content[k] = node
        return c

    cfg = container({
        "task": {"normalize": True, "data": "???", "sample_rate": 16000},
        "model": {"normalize": "${task.normalize}", "rate": "${model.alias}",
                  "alias": "${task.sample_rate}", "path": "${nowhere.x}", "text": "a ${b}"},
    })  # fmt: skip
    sys.modules.update(mods)
    try:
        return save({"cfg": cfg}, tmp_path / "cfg.pt", "zip")
    finally:
        for n in mods:
            del sys.modules[n]


def test_omegaconf_containers_become_plain_dicts(tmp_path):
    got = safe_load(_omegaconf_like(tmp_path))["cfg"]
    assert got["task"] == {"normalize": True, "data": None, "sample_rate": 16000}
    assert got["model"] == {
        "normalize": True,  # resolved against the root, as omegaconf would
        "rate": 16000,  # through a chain of references
        "alias": 16000,
        "path": "${nowhere.x}",  # unresolvable: kept as written
        "text": "a ${b}",  # not a whole-value reference
    }


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"", "EOFError"),
        (os.urandom(4096), "truncated or corrupt"),
        (b"PK\x03\x04" + b"\x00" * 100, "truncated or corrupt"),
    ],
)
def test_corrupt_files(tmp_path, content, what):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(Wav2Vec2Error, match=what) as info:
        safe_load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_truncated_checkpoint(tmp_path, fmt):
    path = save({"model": {"w": torch.randn(256, 256)}}, tmp_path / "t.pt", fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Wav2Vec2Error, match="not a readable PyTorch checkpoint") as info:
        safe_load(path)
    assert "\n" not in str(info.value)


def test_tensors_in_a_bare_pickle_are_refused(tmp_path):
    """Pickling a tensor outside torch.save goes through torch.storage._load_from_bytes, which
    runs an unrestricted torch.load: refused like any other function."""
    path = save({"w": torch.zeros(2)}, tmp_path / "bare.pt", "plain")
    with pytest.raises(Wav2Vec2Error, match="torch.storage._load_from_bytes"):
        safe_load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(Wav2Vec2Error, match="no such file"):
        safe_load(tmp_path / "missing.pt")
    with pytest.raises(Wav2Vec2Error, match="not a file"):
        safe_load(tmp_path)
