"""HuggingFace hub ids (``facebook/wav2vec2-base-960h``) -> a local model directory.

As with transformers, a hub id resolves through huggingface_hub into its usual cache
(``HF_HOME`` / ``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache only), so a model
downloaded once by transformers is found again here without a download. Only the files a
wav2vec2 model needs are fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

from wav2vec2.errors import Wav2Vec2Error

# "org/name", optionally "@revision" (a branch, tag or commit). Conservative on purpose: a
# mistyped local path should get "no such file", not a hub lookup.
_HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95})"
    r"(?:@(?P<revision>[A-Za-z0-9][A-Za-z0-9._/-]{0,199}))?$"
)
# Names that are files, not repositories.
_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".json", ".safetensors", ".txt", ".wav")

_METADATA_FILES = [
    "config.json",
    "vocab.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "preprocessor_config.json",
]
# Safetensors when the repo has them; the pickled weights only otherwise (many hub repos hold
# both, and there is no need to download the model twice).
_SAFETENSORS_FILES = ["*.safetensors", "*.safetensors.index.json"]
_PICKLE_FILES = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]


def looks_like_hub_id(s: str) -> bool:
    """True for ``org/name`` or ``org/name@revision``; the caller checks first that no such
    local path exists."""
    m = _HUB_ID.match(s)
    if m is None:
        return False
    repo = m.group("repo")
    return ".." not in repo and "--" not in repo and not repo.lower().endswith(_FILE_SUFFIXES)


def split_hub_id(s: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> ("org/name", "rev"); no revision -> None (the default branch)."""
    m = _HUB_ID.match(s)
    if m is None:
        raise Wav2Vec2Error("not a Hugging Face hub id (expected org/name[@revision])", s)
    return m.group("repo"), m.group("revision")


def resolve_hub_id(s: str) -> Path:
    """The local snapshot directory of a hub model, downloading it if the hub is reachable.

    Raises :class:`Wav2Vec2Error` (one line) when the model is neither cached nor reachable.
    """
    repo, revision = split_hub_id(s)
    snapshot = _download(s, repo, revision, _METADATA_FILES + _SAFETENSORS_FILES)
    if not any(snapshot.glob("*.safetensors")):
        snapshot = _download(s, repo, revision, _METADATA_FILES + _PICKLE_FILES)
    return snapshot


def _download(s: str, repo: str, revision: str | None, patterns: list[str]) -> Path:
    # Imported here: huggingface_hub is only needed for hub ids.
    from huggingface_hub import constants, errors, snapshot_download

    cache = constants.HF_HUB_CACHE
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=patterns))
    except errors.RevisionNotFoundError:
        raise Wav2Vec2Error(f"revision {revision!r} not found on the Hugging Face hub", s) from None
    except errors.GatedRepoError:
        raise Wav2Vec2Error(
            "this model is gated on the Hugging Face hub: accept its terms and log in "
            "(hf auth login), or pass a local path",
            s,
        ) from None
    except errors.RepositoryNotFoundError:
        raise Wav2Vec2Error(
            "no such model on the Hugging Face hub (or it is private: log in with "
            "hf auth login), and no such local path",
            s,
        ) from None
    except errors.IncompleteSnapshotError:
        raise Wav2Vec2Error(
            f"only partly in the local Hugging Face cache ({cache}), and the hub cannot be "
            "reached to complete it: finish the download on a connected machine",
            s,
        ) from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, OSError) as exc:
        # Offline (HF_HUB_OFFLINE=1), no network, the hub down, or a disk problem.
        cause = exc.__cause__ or exc  # huggingface_hub chains the network error
        reason = "offline mode" if constants.HF_HUB_OFFLINE else type(cause).__name__
        raise Wav2Vec2Error(
            f"not in the local Hugging Face cache ({cache}), and the hub cannot be reached "
            f"({reason}): download it on a connected machine or pass a local path",
            s,
        ) from None
    except errors.HFValidationError as exc:
        raise Wav2Vec2Error(f"not a valid Hugging Face hub id ({exc})", s) from None
