"""AudioDataset and the collater: resampling, filters, labels, crops, pads, bad files."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from data_support import RF, write_wave
from wav2vec2.audio import load_audio
from wav2vec2.data import batching
from wav2vec2.data.batching import TARGET_PAD, Batch, Collater, SkippedBatch
from wav2vec2.data.dataset import AudioDataset
from wav2vec2.data.manifest import letters_from_words, write_labels, write_manifest
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import Vocabulary


def test_resampling_and_downmix(tmp_path):
    a = write_wave(tmp_path / "a.wav", 8000, rate=8000)  # 1 s
    b = write_wave(tmp_path / "b.flac", 44100 // 2, rate=44100, channels=2)  # 0.5 s stereo
    assert load_audio(a).shape == (16000,)
    wave = load_audio(b)
    assert wave.ndim == 1 and wave.dtype == np.float32 and abs(len(wave) - 8000) <= 1
    # the manifest stores native frames; the dataset converts sizes to 16 kHz for batching
    write_manifest(tmp_path / "m.tsv", tmp_path, [("a.wav", 8000), ("b.flac", 22050)])
    ds = AudioDataset(tmp_path / "m.tsv", min_valid_samples=RF, pad=True, seed=0)
    assert ds.sizes.tolist() == [16000, 8000]
    assert ds[0].wave.shape == (16000,) and ds[1].wave.dtype == torch.float32


def test_filters_are_counted(corpus):
    manifest, lengths = corpus
    ds = AudioDataset(manifest, min_sample_size=4000, min_valid_samples=RF, pad=False, seed=0)
    assert len(ds) == sum(n >= 4000 for n in lengths)
    assert ds.skipped.too_short == sum(n < 4000 for n in lengths)
    assert ds.sizes.min() >= 4000


def test_labels_drop_long_and_report_bad_letters(corpus, tmp_path):
    manifest, lengths = corpus
    words = ["HELLO WORLD"] * len(lengths)
    words[3] = "CAFÉ"  # É is not in the vocabulary
    write_labels(tmp_path / "train.ltr", [letters_from_words(w) for w in words])
    vocab = Vocabulary.from_fairseq_symbols(list("|EHLOWRDCAF"))
    ds = AudioDataset(manifest, max_sample_size=6000, labels_path=tmp_path / "train.ltr",
                      vocab=vocab, min_valid_samples=RF, pad=True, seed=0)  # fmt: skip
    too_long = sum(n > 6000 for n in lengths)
    assert ds.skipped.too_long == too_long
    assert len(ds.skipped.bad_labels) == 1
    assert "train.ltr:4 (u03.wav)" in ds.skipped.bad_labels[0] and "É" in ds.skipped.bad_labels[0]
    assert len(ds) == len(lengths) - too_long - 1
    item = ds[0]
    assert item.target.tolist() == [vocab.index[c] for c in "HELLO|WORLD|"]
    assert len(item.wave) == lengths[0]  # never cropped when labelled
    batch = ds.collater()([ds[0], ds[1]])
    assert batch.targets.shape == (2, 12) and batch.target_lengths.tolist() == [12, 12]

    write_labels(tmp_path / "short.ltr", ["H E L L O |"])
    with pytest.raises(Wav2Vec2Error, match="1 lines for 12 manifest entries"):
        AudioDataset(
            manifest,
            labels_path=tmp_path / "short.ltr",
            vocab=vocab,
            min_valid_samples=RF,
            pad=True,
            seed=0,
        )


def test_crop_is_deterministic_per_seed_epoch_index(corpus):
    manifest, lengths = corpus
    ds = AudioDataset(
        manifest, max_sample_size=2000, normalize=True, min_valid_samples=RF, pad=False, seed=1
    )
    a, b = ds[(5, 0)], ds[(5, 0)]
    assert a.wave.shape == (2000,) and torch.equal(a.wave, b.wave)
    assert not torch.equal(ds[(5, 1)].wave, a.wave)  # another epoch, another crop
    other = AudioDataset(
        manifest, max_sample_size=2000, normalize=True, min_valid_samples=RF, pad=False, seed=2
    )
    assert not torch.equal(other[(5, 0)].wave, a.wave)
    ds.set_epoch(1)
    assert torch.equal(ds[5].wave, ds[(5, 1)].wave)


def test_collater_crops_to_shortest_or_pads_to_longest(corpus):
    manifest, lengths = corpus
    ds = AudioDataset(manifest, min_valid_samples=RF, pad=False, seed=0)
    items = [ds[(i, 3)] for i in (0, 4, 7)]
    crop = Collater(pad=False, seed=0)(items)
    assert crop.waveforms.shape == (3, lengths[0])  # the shortest
    assert crop.lengths.tolist() == [lengths[0]] * 3 and crop.padding_fraction == 0
    assert not crop.is_padded and crop.targets is None
    assert crop.indices.tolist() == [0, 4, 7]
    again = Collater(pad=False, seed=0)([ds[(i, 3)] for i in (0, 4, 7)])
    assert torch.equal(crop.waveforms, again.waveforms)
    # row 1 is a window of item 4 at an offset drawn from (seed, epoch, index)
    full = items[1].wave
    starts = [s for s in range(len(full) - lengths[0] + 1)
              if torch.equal(full[s : s + lengths[0]], crop.waveforms[1])]  # fmt: skip
    assert len(starts) == 1

    padded = Collater(pad=True, seed=0)(items)
    assert padded.waveforms.shape == (3, lengths[7])
    assert padded.lengths.tolist() == [lengths[0], lengths[4], lengths[7]]
    assert torch.equal(padded.waveforms[0, : lengths[0]], items[0].wave)
    assert padded.waveforms[0, lengths[0] :].abs().sum() == 0
    assert padded.is_padded and padded.num_samples == lengths[0] + lengths[4] + lengths[7]
    assert padded.padding_fraction == pytest.approx(1 - padded.num_samples / (3 * lengths[7]))
    moved = padded.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.lengths, padded.lengths)


def test_targets_are_padded_with_minus_100(corpus):
    manifest, _ = corpus
    ds = AudioDataset(manifest, min_valid_samples=RF, pad=True, seed=0)
    items = [ds[0], ds[1]]
    items = [type(it)(it.index, it.epoch, it.path, it.wave, torch.tensor(t))
             for it, t in zip(items, ([4, 5, 6], [7]))]  # fmt: skip
    batch = Collater(pad=True, seed=0)(items)
    assert batch.targets.tolist() == [[4, 5, 6], [7, TARGET_PAD, TARGET_PAD]]
    assert batch.target_lengths.tolist() == [3, 1]


@pytest.fixture
def with_bad_files(corpus, tmp_path):
    """The corpus manifest plus a corrupt file, an empty one and one that became too short."""
    manifest, lengths = corpus
    root = manifest.parent / "audio"
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    (root / "empty.wav").write_bytes(b"")
    write_wave(root / "shrunk.wav", 100)  # the manifest still says 3000
    entries = [(f"u{k:02d}.wav", n) for k, n in enumerate(lengths)]
    entries += [("corrupt.wav", 3000), ("empty.wav", 3000), ("shrunk.wav", 3000)]
    write_manifest(tmp_path / "bad.tsv", root, entries)
    return tmp_path / "bad.tsv"


def test_bad_files_are_dropped_with_a_warning(with_bad_files, caplog):
    ds = AudioDataset(with_bad_files, min_valid_samples=RF, pad=False, seed=0)
    collate = ds.collater()
    bad = [ds[i] for i in (12, 13, 14)]
    assert all(it.wave is None and it.error.startswith(it.path) for it in bad)
    assert "too short" in bad[2].error
    with caplog.at_level(logging.WARNING, logger="wav2vec2.data.batching"):
        batch = collate([ds[0], bad[0], ds[1]])
    assert batch.indices.tolist() == [0, 1]
    assert batch.dropped == (bad[0].path,)
    assert len(caplog.records) == 1 and "corrupt.wav" in caplog.records[0].getMessage()
    with caplog.at_level(logging.WARNING, logger="wav2vec2.data.batching"):
        skipped = collate(bad)  # the trainer skips the step; the reasons come with it
    assert isinstance(skipped, SkippedBatch)
    assert skipped.errors == tuple(it.error for it in bad)
    named = [r.getMessage() for r in caplog.records]
    assert len(named) == 3 and "corrupt.wav" in named[0]  # each bad file is named once


def test_bad_file_warnings_are_rate_limited(with_bad_files, caplog, monkeypatch):
    monkeypatch.setattr(batching, "WARN_LIMIT", 2)
    ds = AudioDataset(with_bad_files, min_valid_samples=RF, pad=False, seed=0)
    collate = ds.collater()
    bad = [ds[i] for i in (12, 13, 14)]
    with caplog.at_level(logging.WARNING, logger="wav2vec2.data.batching"):
        for _ in range(3):  # three epochs
            collate(bad)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and "only the first 2 are named" in messages[-1]


def test_speed_perturbation_is_drawn_per_item_and_epoch(corpus):
    manifest, lengths = corpus
    factors = (0.9, 1.0, 1.1)
    ds = AudioDataset(manifest, min_valid_samples=RF, pad=True, seed=3, speed_factors=factors)
    plain = AudioDataset(manifest, min_valid_samples=RF, pad=True, seed=3)
    seen = set()
    for epoch in range(3):
        for i in range(len(ds)):
            n = len(ds[(i, epoch)].wave)
            # each item plays at one of the factors: its length is the original / factor
            factor = min(factors, key=lambda f: abs(n - lengths[i] / f))
            assert abs(n - lengths[i] / factor) <= 2
            seen.add(factor)
            # the draw depends on (seed, epoch, index) alone: a resumed run sees the same audio
            assert torch.equal(ds[(i, epoch)].wave, ds[(i, epoch)].wave)
            if factor == 1.0:
                assert torch.equal(ds[(i, epoch)].wave, plain[(i, epoch)].wave)
    assert seen == set(factors)
    with pytest.raises(ValueError, match="speed factors"):
        AudioDataset(manifest, min_valid_samples=RF, pad=True, seed=0, speed_factors=(3.0,))


def test_training_data_keeps_what_the_models_encoder_can_frame(corpus):
    """The shortest usable utterance is the receptive field of the run's own encoder."""
    from wav2vec2.training.distributed import DistEnv
    from wav2vec2.training.recipes import pretrain_run_config
    from wav2vec2.training.runner import data_source

    manifest, lengths = corpus
    wide = [[32, 4000, 5], [32, 3, 2]]  # a receptive field of 4010 samples
    for layers in (None, wide):
        settings = {"data.num_workers": 0, "data.min_sample_size": 0, "data.max_tokens": 10**6}
        if layers:
            settings["model.feature_encoder.conv_layers"] = layers
        run = pretrain_run_config("small", settings)
        rf = run.model.feature_encoder.receptive_field
        ds = data_source(manifest, run, DistEnv(), train=True).loader.dataset
        assert ds.min_valid_samples == rf == (4010 if layers else 400)
        assert len(ds) == sum(n >= rf for n in lengths)


def test_run_data_source_keeps_what_its_encoder_can_see(tmp_path):
    """The shortest usable clip is the run's own encoder receptive field, not a fixed 400."""
    from wav2vec2.config import SMALL
    from wav2vec2.training.config import DataConfig, RunConfig, TrainConfig
    from wav2vec2.training.distributed import DistEnv
    from wav2vec2.training.runner import data_source

    root = tmp_path / "audio"
    entries = [(f"u{n}.wav", n) for n in (300, 900, 4000)]
    for name, n in entries:
        write_wave(root / name, n)
    write_manifest(tmp_path / "valid.tsv", root, entries)
    # Two strides of 5 then 2 samples: a receptive field of 15 samples.
    fe = dataclasses.replace(SMALL.feature_encoder, conv_layers=((16, 10, 5), (16, 2, 2)))
    data = DataConfig(max_tokens=100_000, min_sample_size=0, num_workers=0)
    for encoder, kept in ((SMALL.feature_encoder, [900, 4000]), (fe, [300, 900, 4000])):
        run = RunConfig("pretrain", dataclasses.replace(SMALL, feature_encoder=encoder),
                        TrainConfig(data=data))  # fmt: skip
        source = data_source(tmp_path / "valid.tsv", run, DistEnv(), train=False)
        assert sorted(source.loader.dataset.sizes.tolist()) == kept, encoder.receptive_field
