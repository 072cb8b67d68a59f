"""What to transcribe: files, folders (searched recursively by audio extension) and
manifests (``.tsv``, as ``manifest`` and ``corpus`` write them), each input with the name its
output file takes under ``--output-dir``; and what to align: a manifest's utterances with
their transcripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wav2vec2.data.manifest import read_labels, read_manifest
from wav2vec2.data.manifest_builder import find_audio
from wav2vec2.errors import Wav2Vec2Error

# what libsndfile reads (mp3 since libsndfile 1.1, opus inside ogg)
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus", "aiff", "aif", "au", "caf")


@dataclass(frozen=True)
class Input:
    path: Path  # the audio file
    name: PurePosixPath  # relative output name without extension: "a", "spk1/a"


def expand_inputs(sources: list[str | Path]) -> list[Input]:
    """Files stay as given (a missing one too: its reader reports it); a folder is searched
    recursively; a ``.tsv`` manifest lists its files. Output names keep the part of the path
    below the folder or manifest root, so that files with one name in two folders do not
    collide; a collision that remains is an error before any work is done."""
    out: list[Input] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = find_audio(source, AUDIO_EXTENSIONS)
            if not found:
                raise Wav2Vec2Error(
                    f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder", source
                )
            out += [Input(p, _name(p.relative_to(source))) for p in found]
        elif source.suffix.lower() == ".tsv":
            root, entries = read_manifest(source)
            out += [Input(Path(root) / rel, _name(PurePosixPath(rel))) for rel, _ in entries]
        else:
            out.append(Input(source, _name(PurePosixPath(source.name))))
    seen: dict[PurePosixPath, Path] = {}
    for item in out:
        if item.name in seen and seen[item.name] != item.path:
            raise Wav2Vec2Error(
                f"two inputs would write the same output {item.name}: {seen[item.name]} and "
                f"{item.path}; transcribe them in separate runs or from their folders",
                item.path,
            )
        seen[item.name] = item.path
    return out


def labeled_inputs(manifest: str | Path) -> list[tuple[Input, str]]:
    """A manifest's utterances, each with its transcript from the ``.wrd`` file beside it
    (``SPLIT.tsv`` -> ``SPLIT.wrd``: one line per entry, in order, as fairseq keeps them)."""
    inputs = expand_inputs([manifest])
    labels = Path(manifest).with_suffix(".wrd")
    if not labels.exists():
        raise Wav2Vec2Error(f"no transcripts: expected {labels.name} beside the manifest", manifest)
    lines = read_labels(labels, len(inputs))
    return list(zip(inputs, lines, strict=True))


def _name(relative) -> PurePosixPath:
    """A relative name that stays inside the output folder (no root, no ``..``)."""
    parts = [p for p in Path(relative).parts if p not in ("..", ".") and p != Path(p).anchor]
    rel = PurePosixPath(*parts) if parts else PurePosixPath("audio")
    return rel.with_suffix("") if rel.suffix else rel
