"""Weights tuned for an LM: ``tuned.json`` in the LM directory, written by ``wav2vec2 lm
tune`` and read wherever ``--lm DIR`` is given without ``--lm-weight``/``--word-score``.

The LM weight and word score that fit depend on the LM, the acoustic model and the search
(lexicon or lexicon-free), so the file records all three, with the data it was tuned on and
every grid point's WER. It belongs to its LM: ``lm build`` deletes it when it replaces the
LM (:mod:`wav2vec2.ngram`). Weights tuned for the other search are not used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.beam_search import BeamSearchConfig
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.ngram import TUNED_FILE

WEIGHTS = ("lm_weight", "word_score")


@dataclass(frozen=True)
class GridPoint:
    lm_weight: float
    word_score: float
    wer: float


@dataclass(frozen=True)
class TunedWeights:
    lm_weight: float
    word_score: float
    search: str  # "lexicon" or "lexicon-free" (BeamSearchConfig.search)
    model: str  # the model they were tuned for (model_id)
    data: str
    split: str
    wer: float  # at the chosen point
    beam: int
    beam_threshold: float
    grid: tuple[GridPoint, ...]  # every point tried, in order

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def model_id(source: str | Path) -> str:
    """A model as tuned.json names it: its absolute path when it is a local path (the same
    model however the path was typed), else as given."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else str(source)


def tuned_path(lm_dir: str | Path) -> Path:
    return Path(lm_dir) / TUNED_FILE


def write_tuned(lm_dir: str | Path, tuned: TunedWeights) -> Path:
    path = tuned_path(lm_dir)
    write_text_atomic(path, tuned.to_json())
    return path


def read_tuned(lm_dir: str | Path) -> TunedWeights | None:
    """LM_DIR's tuned weights, None when it has none; an unreadable file is an error (it
    would otherwise be silently ignored, and the defaults used)."""
    path = tuned_path(lm_dir)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["grid"] = tuple(GridPoint(**p) for p in record["grid"])
        return TunedWeights(**record)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise Wav2Vec2Error(
            f"not a tuned-weights file ({type(exc).__name__}: {exc}); run `wav2vec2 lm tune` "
            "again or delete it",
            path,
        ) from None


def with_tuned_weights(
    lm_dir: str | Path,
    config: BeamSearchConfig,
    given: tuple[str, ...] = (),
    model: str | Path | None = None,
) -> tuple[BeamSearchConfig, str | None]:
    """CONFIG with the weights not named in GIVEN (``lm_weight``, ``word_score``: set by the
    caller, they win) taken from LM_DIR's tuned.json when it has weights for CONFIG's search.
    Returns the config, its ``weights_from`` filled in, and a line for the user: which tuned
    weights are used (and that they were tuned for another model than MODEL), or why the
    tuned.json there is not used; None when there is nothing to say."""
    missing = [w for w in WEIGHTS if w not in given]
    tuned = read_tuned(lm_dir) if missing else None
    path, note = tuned_path(lm_dir), None
    if tuned is not None and tuned.search != config.search:
        how = "--lexicon-free" if config.lexicon_free else "without --lexicon-free"
        note = (
            f"not using {path}: its weights were tuned for {tuned.search} search, not "
            f"{config.search} (tune them with `wav2vec2 lm tune {how}`); using "
            f"lm_weight={config.lm_weight:g}, word_score={config.word_score:g}"
        )
        tuned = None
    sources = {w: "given" if w in given else "defaults" for w in WEIGHTS}
    values = {}
    if tuned is not None:
        values = {w: getattr(tuned, w) for w in missing}
        sources.update({w: str(path.resolve()) for w in missing})
        shown = ", ".join(f"{w}={v:g}" for w, v in values.items())
        note = f"using tuned weights from {path}: {shown}"
        if given:
            note += f" ({', '.join(given)} as given)"
        if model is not None and model_id(model) != tuned.model:
            note += f"; they were tuned for another model, {tuned.model}"
    return replace(config, **values, weights_from=_provenance(sources)), note


def _provenance(sources: dict[str, str]) -> str:
    """{weight: where it came from} -> one string: the place, or each place with its weights
    ("/lm/tuned.json (lm_weight); given (word_score)")."""
    places = list(dict.fromkeys(sources.values()))
    if len(places) == 1:
        return places[0]
    return "; ".join(
        f"{place} ({', '.join(w for w, p in sources.items() if p == place)})" for place in places
    )
