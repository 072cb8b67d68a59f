"""The console command end to end: info, features, transcribe, convert, and its errors
(a full disk and outputs in the way included)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers

from full_disk import NO_SPACE, fill, no_space_under, snapshot, tmpfs
from hf_reference import make_ctc, save_with_processor
from wav2vec2.audio import load_audio
from wav2vec2.cli import main


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    hf = make_ctc("lv60k_like")
    return save_with_processor(hf, tmp_path_factory.mktemp("hf")), hf


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    a = (0.3 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(d / "a.wav", a, 16000, subtype="PCM_16")
    # 44.1 kHz stereo FLAC: resampled and downmixed on load
    b = 0.3 * rng.standard_normal((30000, 2))
    sf.write(d / "b.flac", b, 44100)
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def hf_reference_output(hf, wave: np.ndarray):
    x = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
    with torch.no_grad():
        return hf(x, output_hidden_states=True)


def test_info(capsys, hf_dir):
    code, out, _ = run(capsys, "info", hf_dir[0])
    assert code == 0
    assert "huggingface" in out and "receptive field" in out and "frames/s" in out
    n = (
        sum(p.numel() for p in hf_dir[1].parameters())
        - hf_dir[1].wav2vec2.masked_spec_embed.numel()
    )
    assert f"{n + hf_dir[1].wav2vec2.masked_spec_embed.numel():,}" in out


@pytest.mark.parametrize("layer", [None, 0, 2])
def test_features_match_transformers(capsys, tmp_path, hf_dir, audio_files, layer):
    out_path = tmp_path / "f.npy"
    extra = [] if layer is None else ["--layer", layer]
    code, _, _ = run(capsys, "features", hf_dir[0], audio_files / "b.flac", "-o", out_path, *extra)
    assert code == 0
    feats = np.load(out_path)
    ref = hf_reference_output(hf_dir[1], load_audio(audio_files / "b.flac"))
    expected = ref.hidden_states[layer] if layer is not None else None
    if expected is None:  # final output = after the last LayerNorm (pre-LN model)
        with torch.no_grad():
            wave = load_audio(audio_files / "b.flac")
            x = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
            expected = hf_dir[1].wav2vec2(x).last_hidden_state
    assert feats.dtype == np.float32 and feats.shape == tuple(expected.shape[1:])
    assert np.abs(feats - expected[0].numpy()).max() < 1e-4


def test_transcribe_plain_and_json(capsys, hf_dir, audio_files):
    files = [audio_files / "a.wav", audio_files / "b.flac"]
    code, out, _ = run(capsys, "transcribe", hf_dir[0], *files)
    assert code == 0
    rows = [line.split("\t") for line in out.split("\n")[:-1]]  # several files: path<TAB>text
    assert [path for path, _ in rows] == [str(f) for f in files]
    processor = transformers.Wav2Vec2Processor.from_pretrained(hf_dir[0])
    texts = [text for _, text in rows]
    for text, path in zip(texts, files):
        ids = hf_reference_output(hf_dir[1], load_audio(path)).logits.argmax(-1)[0]
        assert text == " ".join(processor.decode(ids).split())
    code, out, _ = run(capsys, "transcribe", hf_dir[0], files[1])  # one file: the text alone
    assert out == texts[1] + "\n"
    code, out, _ = run(capsys, "transcribe", hf_dir[0], *files, "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in records] == texts
    assert (
        records[1]["path"].endswith("b.flac") and abs(records[1]["duration"] - 30000 / 44100) < 1e-3
    )


def test_transcribe_reports_bad_file_and_keeps_others(capsys, hf_dir, audio_files):
    code, out, err = run(
        capsys, "transcribe", hf_dir[0], audio_files / "broken.wav", audio_files / "a.wav"
    )
    assert code == 2
    # one line per input, in order: the bad file's line is empty, the good one is still there
    rows = [line.split("\t") for line in out.split("\n")[:-1]]
    assert [path for path, _ in rows] == [str(audio_files / n) for n in ("broken.wav", "a.wav")]
    assert rows[0][1] == ""
    assert "broken.wav" in err and "unreadable audio" in err and len(err.strip().splitlines()) == 1


def test_convert_both_ways(capsys, tmp_path, hf_dir, audio_files):
    ours, back = tmp_path / "ours", tmp_path / "back"
    assert run(capsys, "convert", hf_dir[0], ours)[0] == 0
    assert json.loads((ours / "config.json").read_text())["format"] == "wav2vec2"
    assert (ours / "model.safetensors").is_file() and (ours / "vocab.json").is_file()
    assert run(capsys, "convert", "--to", "huggingface", ours, back)[0] == 0
    model = transformers.Wav2Vec2ForCTC.from_pretrained(back).eval()
    x = torch.randn(1, 8000)
    with torch.no_grad():
        assert torch.equal(model(x).logits, hf_dir[1](x).logits)
    # transformers' own ASR pipeline on the export gives our transcript
    asr = transformers.pipeline("automatic-speech-recognition", model=str(back))
    wave = load_audio(audio_files / "a.wav")
    theirs = asr(wave)["text"]
    code, out, _ = run(capsys, "transcribe", back, audio_files / "a.wav")
    assert out.strip() == " ".join(theirs.split())


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file or directory"),
        ("no_config", "no config.json"),
        ("corrupt_weights", "corrupt or truncated weights file"),
        ("bad_json", "not valid JSON"),
        ("other_model", "unsupported model type 'bert'"),
    ],
)
def test_model_errors_are_one_line(capsys, tmp_path, hf_dir, case, message):
    target = tmp_path / case
    if case == "no_config":
        target.mkdir()
    elif case == "corrupt_weights":
        main(["convert", str(hf_dir[0]), str(target)])
        weights = target / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    elif case == "bad_json":
        target.mkdir()
        (target / "config.json").write_text("{not json")
    elif case == "other_model":
        target.mkdir()
        (target / "config.json").write_text('{"model_type": "bert"}')
    capsys.readouterr()
    code, out, err = run(capsys, "info", target)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and case in err


def one_line_error(code: int, out: str, err: str, *parts: str) -> None:
    """Exit status 2, nothing on stdout, one line on stderr holding every part."""
    assert code == 2 and out == "", (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err


def test_convert_never_writes_over_its_source(capsys, tmp_path, hf_dir):
    ours = tmp_path / "ours"
    assert run(capsys, "convert", hf_dir[0], ours)[0] == 0
    theirs, mine = snapshot(hf_dir[0]), snapshot(ours)
    for src, dest in ((ours, ours), (hf_dir[0], hf_dir[0]), (ours / "config.json", ours)):
        one_line_error(*run(capsys, "convert", src, dest), "is the model being converted")
    one_line_error(*run(capsys, "convert", "--to", "huggingface", ours, f"{ours}/."), "being")
    assert snapshot(hf_dir[0]) == theirs and snapshot(ours) == mine


def test_convert_replaces_only_its_own_output(capsys, tmp_path, hf_dir):
    ours, export = tmp_path / "ours", tmp_path / "export"
    # An earlier output of the same kind is replaced (ours by ours, an export by an export).
    for _ in range(2):
        assert run(capsys, "convert", hf_dir[0], ours)[0] == 0
        assert run(capsys, "convert", "--to", "huggingface", ours, export)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "ours"]  # no leftovers
    # A folder holding anything else is refused and left as it was: a model from transformers
    # (its weights lack our mark), ours where an export goes and the reverse, other files.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for name in ("config.json", "model.safetensors"):
        (checkpoint / name).write_bytes((ours / name).read_bytes())
    (checkpoint / "training_state.json").write_text("{}")
    cases = [  # (--to, SRC, DEST, what the error says)
        ("wav2vec2", ours, hf_dir[0], "is not a wav2vec2 model directory (it holds config.json"),
        ("huggingface", ours, hf_dir[0], "is not a HuggingFace export written by wav2vec2"),
        ("wav2vec2", hf_dir[0], export, "is not a wav2vec2 model directory"),
        ("huggingface", export, ours, "is not a HuggingFace export"),
        ("wav2vec2", ours, tmp_path / "notes", "(it holds notes.txt); give a new or empty folder"),
        ("wav2vec2", ours, checkpoint, "training_state.json"),
    ]
    before = {dest: snapshot(dest) for _, _, dest, _ in cases}
    for to, src, dest, message in cases:
        one_line_error(*run(capsys, "convert", "--to", to, src, dest), f"{dest}: exists", message)
        assert snapshot(dest) == before[dest]
    (tmp_path / "file").write_text("x")
    one_line_error(*run(capsys, "convert", hf_dir[0], tmp_path / "file"), "is a file")
    assert (tmp_path / "file").read_text() == "x"


def test_convert_and_features_on_a_full_disk_keep_the_old_output(
    capsys, tmp_path, hf_dir, audio_files, monkeypatch
):
    disk = tmp_path / "disk"
    ours, feats = disk / "ours", disk / "f.npy"
    assert run(capsys, "convert", hf_dir[0], ours)[0] == 0
    assert run(capsys, "features", ours, audio_files / "a.wav", "-o", feats)[0] == 0
    before = snapshot(disk)
    no_space_under(monkeypatch, disk)
    one_line_error(
        *run(capsys, "convert", hf_dir[0], ours),
        f"{ours / 'model.safetensors'}: cannot write ({NO_SPACE}); what was there before is "
        "unchanged",
    )
    one_line_error(
        *run(capsys, "features", ours, audio_files / "a.wav", "-o", feats),
        f"{feats}: cannot write ({NO_SPACE})",
    )
    assert snapshot(disk) == before  # the old files, and no temporary ones


def test_convert_and_features_on_a_real_full_disk(capsys, tmp_path, hf_dir, audio_files):
    with tmpfs(tmp_path / "disk", size="2m") as disk:
        ours, export, feats = disk / "ours", disk / "export", disk / "f.npy"
        assert run(capsys, "convert", hf_dir[0], ours)[0] == 0
        assert run(capsys, "convert", "--to", "huggingface", ours, export)[0] == 0
        assert run(capsys, "features", ours, audio_files / "a.wav", "-o", feats)[0] == 0
        before = snapshot(disk)
        fill(disk)
        one_line_error(*run(capsys, "convert", hf_dir[0], ours), f"{ours}", NO_SPACE)
        one_line_error(
            *run(capsys, "convert", "--to", "huggingface", ours, export), f"{export}", NO_SPACE
        )
        one_line_error(
            *run(capsys, "features", ours, audio_files / "a.wav", "-o", feats),
            f"{feats}: cannot write ({NO_SPACE})",
        )
        assert snapshot(disk) == before


def test_features_output_in_the_way_is_refused_before_the_model_runs(capsys, tmp_path):
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "file").write_text("x")
    model = tmp_path / "no-such-model"  # the output is checked first: the model is not read
    one_line_error(
        *run(capsys, "features", model, "a.wav", "-o", tmp_path / "folder.npy"),
        "folder.npy: is a folder; give a file path",
    )
    one_line_error(
        *run(capsys, "features", model, "a.wav", "-o", tmp_path / "file" / "f.npy"),
        f"{tmp_path / 'file'} is a file, not a folder",
    )
    assert (tmp_path / "file").read_text() == "x" and not any((tmp_path / "folder.npy").iterdir())


def test_console_script_entry_point(hf_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "wav2vec2", "info", str(hf_dir[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "parameters" in proc.stdout
