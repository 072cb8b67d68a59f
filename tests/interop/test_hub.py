"""Hugging Face hub ids resolve through huggingface_hub's usual cache, offline included.

No hub is reachable here, so the test builds a cache the way huggingface_hub lays it out
(``models--org--name/refs/main`` holding a commit hash, ``snapshots/<hash>/`` holding the
files) and reads it with ``HF_HUB_OFFLINE=1``. huggingface_hub reads its environment when it
is imported, so the lookups run in a fresh interpreter, as a user's command would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers

from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.interop.hub import looks_like_hub_id, split_hub_id

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "s",
    ["facebook/wav2vec2-base-960h", "org/name@main", "org/name@" + COMMIT, "a/b.c_d-e",
     "org/name@refs/pr/1"],
)  # fmt: skip
def test_hub_ids(s):
    assert looks_like_hub_id(s)


@pytest.mark.parametrize(
    "s",
    [
        "wav2vec2-base",  # a bare name: taken for a (missing) local path
        "./org/name",
        "/abs/name",
        "~/name",
        "org/name/extra",
        "org/../name",
        "org/name.pt",
        "models/checkpoint_best.pt",
        "run/config.json",
        "org/name@",
        "org/na me",
        "-org/name",
        "",
    ],
)
def test_not_hub_ids(s):
    assert not looks_like_hub_id(s)


def test_split_hub_id():
    assert split_hub_id("org/name") == ("org/name", None)
    assert split_hub_id("org/name@v1.0") == ("org/name", "v1.0")
    with pytest.raises(Wav2Vec2Error):
        split_hub_id("not a hub id")


def build_cache(hf_home: Path) -> Path:
    """A tiny transformers CTC model cached as tiny-org/tiny-w2v at COMMIT, branch main."""
    repo = hf_home / "hub" / "models--tiny-org--tiny-w2v"
    snapshot = repo / "snapshots" / COMMIT
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        vocab_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2),
        num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    transformers.Wav2Vec2ForCTC(config).save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)  # no newline, as huggingface_hub writes it
    return snapshot


LOOKUPS = textwrap.dedent(
    """
    import json, sys
    from wav2vec2.errors import Wav2Vec2Error
    from wav2vec2.interop.hub import resolve_hub_id
    from wav2vec2.loading import read_checkpoint

    out = {"resolved": str(resolve_hub_id("tiny-org/tiny-w2v")),
           "pinned": str(resolve_hub_id("tiny-org/tiny-w2v@" + sys.argv[1]))}
    for name, call in [("miss", lambda: resolve_hub_id("tiny-org/not-cached")),
                       ("miss_read", lambda: read_checkpoint("tiny-org/not-cached"))]:
        try:
            call()
        except Wav2Vec2Error as exc:
            out[name] = str(exc)
    ckpt = read_checkpoint("tiny-org/tiny-w2v")
    out["read"] = [ckpt.source, ckpt.config.vocab_size, ckpt.config.transformer.dim]
    print(json.dumps(out))
    """
)


def test_offline_cache_hit_and_miss(tmp_path):
    hf_home = tmp_path / "hf"
    snapshot = build_cache(hf_home)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}  # fmt: skip
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", LOOKUPS, COMMIT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert Path(out["resolved"]) == snapshot.resolve()
    assert Path(out["pinned"]) == snapshot.resolve()
    for key in ("miss", "miss_read"):
        message = out[key]
        assert "\n" not in message
        assert message.startswith("tiny-org/not-cached: not in the local Hugging Face cache")
        assert str(hf_home / "hub") in message and "offline mode" in message
        assert "download it on a connected machine or pass a local path" in message
    assert out["read"] == ["huggingface", 8, 16]
