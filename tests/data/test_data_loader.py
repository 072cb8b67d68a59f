"""The DataLoader: workers give the same batches as the main process, bad files never crash."""

from __future__ import annotations

import torch

from data_support import RF
from wav2vec2.data.batching import Batch
from wav2vec2.data.dataset import AudioDataset
from wav2vec2.data.loader import build_loader
from wav2vec2.data.manifest import write_manifest
from wav2vec2.data.sampler import BucketBatchSampler


def batches(manifest, num_workers, epochs=(0, 1), resume_after=None, **ds_kw):
    ds = AudioDataset(
        manifest, max_sample_size=5000, min_valid_samples=RF, pad=False, seed=11, **ds_kw
    )

    def new_sampler():
        return BucketBatchSampler(ds.sizes, max_tokens=12_000, max_sample_size=5000, seed=11)

    sampler = new_sampler()
    out = batches_from(ds, sampler, epochs, num_workers, stop_after=resume_after)
    if resume_after is not None:
        # a new process resumes from the checkpointed sampler state
        state = sampler.state_dict()
        sampler = new_sampler()
        sampler.load_state_dict(state)
        out += batches_from(ds, sampler, epochs, num_workers)
    return out


def batches_from(ds, sampler, epochs, num_workers, stop_after=None):
    loader = build_loader(ds, sampler, num_workers=num_workers)
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        for batch in loader:
            out.append(batch)
            sampler.advance()
            if len(out) == stop_after:
                return out
    return out


def same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x.waveforms, y.waveforms) and torch.equal(x.indices, y.indices)
        for x, y in zip(a, b)
    )


def test_workers_match_main_process_and_resume(corpus):
    manifest, _ = corpus
    reference = batches(manifest, 0)
    assert len(reference) > 4
    assert same(batches(manifest, 2), reference)
    assert same(batches(manifest, 2, resume_after=3), reference)  # mid epoch 0


def test_bad_file_in_a_worker_is_dropped(tmp_path, corpus):
    manifest, lengths = corpus
    root = manifest.parent / "audio"
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    entries = [(f"u{k:02d}.wav", n) for k, n in enumerate(lengths)] + [("corrupt.wav", 3000)]
    write_manifest(tmp_path / "bad.tsv", root, entries)
    out = batches(tmp_path / "bad.tsv", 2, epochs=(0,))
    dropped = [p for b in out if isinstance(b, Batch) for p in b.dropped]
    assert [p.rsplit("/", 1)[-1] for p in dropped] == ["corrupt.wav"]
    seen = sorted(i for b in out if isinstance(b, Batch) for i in b.indices.tolist())
    assert seen == list(range(len(lengths)))  # everything else arrived
