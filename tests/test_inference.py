"""The inference engine is the API: it isolates bad inputs, and evaluation takes an engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from bad_audio import corrupt_flac
from full_disk import NO_SPACE, fill, no_space_under, snapshot, tmpfs
from hf_reference import assert_close, make_ctc, save_with_processor
from wav2vec2 import Wav2Vec2Inference
from wav2vec2.cli import main
from wav2vec2.decoding import GreedyDecoder
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.evaluation import evaluate


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    hf = make_ctc("lv60k_like")
    return Wav2Vec2Inference.from_pretrained(save_with_processor(hf, tmp_path_factory.mktemp("m")))


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """A labeled split of three readable utterances and one file that is not audio."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    names = ["a.wav", "bad.wav", "b.wav", "c.wav"]
    for name, seconds in zip(names, (1.0, 0, 1.5, 0.7)):
        if name == "bad.wav":
            (d / name).write_bytes(b"not audio at all")
            continue
        wave = (0.3 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
        sf.write(d / name, wave, 16000, subtype="PCM_16")
    rows = [str(d)] + [f"{n}\t{16000}" for n in names]
    (d / "test.tsv").write_text("\n".join(rows) + "\n")
    (d / "test.wrd").write_text("A B\nC\nD E F\nG\n")
    return d


def test_bad_input_is_reported_in_place_and_the_others_run(engine, labeled):
    paths = [labeled / n for n in ("a.wav", "bad.wav", "b.wav")]
    alone = [engine.transcribe([p])[0] for p in (paths[0], paths[2])]
    together = engine.transcribe(paths)
    assert [t.ok for t in together] == [True, False, True]
    bad = together[1]
    assert bad.source == str(paths[1]) and "bad.wav" in bad.error and "\n" not in bad.error
    assert bad.text == "" and bad.hypothesis is None
    # The good inputs come out exactly as when each runs alone.
    assert [t.text for t in (together[0], together[2])] == [t.text for t in alone]
    emissions = engine.emissions(paths)
    assert emissions[1].logits is None and emissions[1].error == bad.error
    decoded = engine.decode_emissions(emissions, engine.decoder)
    assert [t.error for t in decoded] == [t.error for t in together]
    assert [t.text for t in decoded] == [t.text for t in together]


def test_an_array_too_short_is_an_error_record(engine):
    (result,) = engine.transcribe([np.zeros(10, dtype=np.float32)])
    assert not result.ok and "too short" in result.error and result.source == "<array 0>"


def test_evaluate_takes_an_engine_and_skips_bad_files(engine, labeled, tmp_path, capsys):
    result = evaluate(engine, labeled, "test", tmp_path, progress=False)
    err = capsys.readouterr().err
    assert result.utterances == 3 and "bad.wav" in err
    summary = json.loads(result.summary_path.read_text())
    assert summary["model"] == engine.source and summary["utterances"] == 3
    assert [f["path"] for f in summary["failed"]] == [str(labeled / "bad.wav")]
    # The references stay aligned with their files once the bad one is left out.
    assert [ref for _, ref, _ in result.pairs] == ["A B", "D E F", "G"]
    # Another decoder for the same engine: the model is not reloaded.
    again = evaluate(engine, labeled, "test", tmp_path / "2", False, GreedyDecoder(engine.vocab))
    assert again.pairs == result.pairs


def test_evaluate_refuses_an_empty_split(engine, tmp_path):
    (tmp_path / "test.tsv").write_text(f"{tmp_path}\n")
    (tmp_path / "test.wrd").write_text("")
    with pytest.raises(Wav2Vec2Error, match="no utterances"):
        evaluate(engine, tmp_path, "test", tmp_path / "out", progress=False)


@pytest.fixture(scope="module")
def group_norm_dir(tmp_path_factory):
    return save_with_processor(make_ctc("base_like"), tmp_path_factory.mktemp("group"))


def test_group_norm_models_are_batched_and_each_input_comes_out_as_alone(group_norm_dir):
    engine = Wav2Vec2Inference.from_pretrained(group_norm_dir)
    rng = np.random.default_rng(1)
    waves = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (9000, 4417, 6123)]
    assert list(engine._batches([len(w) for w in waves])) == [[1, 2, 0]]  # one padded batch
    together = engine.emissions(waves)
    for i, (wave, batched) in enumerate(zip(waves, together, strict=True)):
        (alone,) = engine.emissions([wave])
        assert batched.logits.shape == alone.logits.shape
        assert_close(batched.logits, alone.logits, f"input {i} logits")
    alone_texts = [engine.transcribe([w])[0].text for w in waves]
    assert [t.text for t in engine.transcribe(waves)] == alone_texts
    assert all(alone_texts), "random model should still emit letters"


def test_without_exact_batching_group_norm_models_run_one_at_a_time(group_norm_dir):
    engine = Wav2Vec2Inference.from_pretrained(group_norm_dir, exact_batching=False)
    assert not engine.model.cfg.feature_encoder.masked_group_norm
    assert list(engine._batches([900, 800])) == [[1], [0]]
    # A lone input has no padding: both settings give it exactly the same numbers.
    assert torch.equal(
        engine.emissions([np.ones(900, np.float32)])[0].logits,
        Wav2Vec2Inference.from_pretrained(group_norm_dir)
        .emissions([np.ones(900, np.float32)])[0]
        .logits,
    )


def test_evaluate_skips_corrupt_and_too_short_audio_and_counts_them(
    engine, labeled, tmp_path, capsys
):
    corrupt_flac(tmp_path / "corrupt.flac")
    rf = engine.cfg.feature_encoder.receptive_field  # 60 samples for this small model
    sf.write(tmp_path / "short.wav", np.zeros(rf - 1, dtype=np.float32), 16000)
    rows = [str(tmp_path), f"{labeled / 'a.wav'}\t16000", "corrupt.flac\t16000"]
    rows.append(f"short.wav\t{rf - 1}")
    (tmp_path / "test.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "test.wrd").write_text("A B\nC\nD\n")
    result = evaluate(engine, tmp_path, "test", tmp_path / "out", progress=False)
    err = capsys.readouterr().err
    assert result.utterances == 1 and result.skipped == 2
    assert "corrupt.flac: unreadable audio" in err and "short.wav: audio is too short" in err
    summary = json.loads(result.summary_path.read_text())
    assert summary["skipped"] == 2 and len(summary["failed"]) == 2
    # The command's own line says so too.
    args = ["evaluate", engine.source, "--data", str(tmp_path), "--out", str(tmp_path / "cli")]
    assert main(args) == 0
    assert "(1 utterances, 2 skipped (listed in the summary))" in capsys.readouterr().out


def test_evaluate_refuses_outputs_in_the_way_before_running(engine, labeled, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(Wav2Vec2Error, match="file: is a file; give a folder path"):
        evaluate(engine, labeled, "test", tmp_path / "file", progress=False)
    (tmp_path / "out" / "test_summary.json").mkdir(parents=True)
    with pytest.raises(Wav2Vec2Error, match="test_summary.json: is a folder; give a file path"):
        evaluate(engine, labeled, "test", tmp_path / "out", progress=False)
    assert (tmp_path / "file").read_text() == "x"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["test_summary.json"]


def test_evaluate_on_a_full_disk_keeps_the_old_reports(engine, labeled, tmp_path, monkeypatch):
    out = tmp_path / "disk" / "eval"
    evaluate(engine, labeled, "test", out, progress=False)
    before = snapshot(out)
    no_space_under(monkeypatch, tmp_path / "disk")
    message = f"{out / 'test_utterances.tsv'}: cannot write \\({NO_SPACE}\\); what was there"
    with pytest.raises(Wav2Vec2Error, match=message):
        evaluate(engine, labeled, "test", out, progress=False)
    assert snapshot(out) == before


def test_evaluate_on_a_real_full_disk(engine, labeled, tmp_path):
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        evaluate(engine, labeled, "test", disk / "eval", progress=False)
        before = snapshot(disk)
        fill(disk)
        with pytest.raises(Wav2Vec2Error, match=f"{disk / 'eval'}.*{NO_SPACE}"):
            evaluate(engine, labeled, "test", disk / "eval", progress=False)
        assert snapshot(disk) == before


def test_the_progress_bar_ends_at_the_audio_length_when_files_run_in_chunks(engine):
    # Chunks run their context twice; the bar counts each sample of the input once.
    import io

    from tqdm import tqdm

    from wav2vec2.chunking import ChunkConfig

    before = engine.chunking
    engine.chunking = ChunkConfig(1.0, 0.25)
    rng = np.random.default_rng(1)
    waves = [
        (0.1 * rng.standard_normal(int(16_000 * s))).astype(np.float32) for s in (3.3, 0.7, 2.05)
    ]
    total = sum(len(w) for w in waves) / 16_000
    try:
        with tqdm(total=total, file=io.StringIO()) as bar:
            assert len(list(engine._emissions(waves, bar))) == 3
            assert bar.n == pytest.approx(total)
    finally:
        engine.chunking = before


@pytest.mark.parametrize("seconds", [0.5, 3.3, 61.7])
def test_each_sample_is_counted_once_over_a_files_chunks(seconds):
    from wav2vec2.chunking import ChunkConfig, plan_chunks
    from wav2vec2.config import preset
    from wav2vec2.inference import _own_samples

    encoder, n = preset("base").feature_encoder, int(16_000 * seconds)
    chunks = plan_chunks(n, ChunkConfig(20.0, 2.0), encoder, 16_000)
    own = _own_samples(chunks, n, encoder.stride)
    assert sum(own) == n and all(0 < o <= c.end - c.start for o, c in zip(own, chunks))
    assert (len(chunks) > 1) == (seconds > 24)
