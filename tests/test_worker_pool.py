"""Beam search over many inputs in worker processes (``--decode-workers``,
``wav2vec2.worker_pool``): the same transcripts as one process, in input order, and a worker
that dies is a one-line error, never a hang."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import soundfile as sf

from cli_support import run_cli
from wav2vec2 import Wav2Vec2Inference
from wav2vec2.cli import main
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.worker_pool import check_workers, ordered_map

MODEL = Path(__file__).parent / "assets" / "demo_model"
SENTENCES = [
    "THE OLD MAN WENT TO THE HOUSE AND SAT DOWN BY THE FIRE",
    "I DO NOT KNOW WHAT YOU MEAN BY THAT SAID SHE",
    "WE SHALL SEE WHAT THE LORD WILL DO FOR US THIS DAY",
    "SHE WAS VERY GLAD TO SEE HIM AGAIN AFTER SO MANY YEARS",
    "IT IS A GOOD THING TO GIVE THANKS UNTO THE LORD",
]


def test_results_come_in_input_order_from_other_processes():
    parent = os.getpid()
    offset = 7  # a closure: the workers are forked, so nothing of the function is pickled

    def work(x):
        return x + offset, os.getpid()

    got = list(ordered_map(work, (i for i in range(25)), workers=2))
    assert [r for r, _ in got] == [i + 7 for i in range(25)]
    assert parent not in {pid for _, pid in got}


def test_one_worker_runs_here():
    assert list(ordered_map(lambda x: (x, os.getpid()), [1, 2], 1)) == [
        (1, os.getpid()),
        (2, os.getpid()),
    ]


def test_an_error_in_a_worker_is_raised_as_it_is():
    def work(x):
        if x == 3:
            raise Wav2Vec2Error("cannot decode input 3")
        return x

    with pytest.raises(Wav2Vec2Error, match="cannot decode input 3"):
        list(ordered_map(work, range(6), 2))


def test_a_worker_that_dies_is_a_one_line_error_not_a_hang():
    def work(x):
        if x == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    with pytest.raises(Wav2Vec2Error, match="worker process died") as info:
        list(ordered_map(work, range(6), 2))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_workers_must_be_a_positive_whole_number(bad):
    with pytest.raises(Wav2Vec2Error, match="at least 1"):
        check_workers(bad)


needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Five sentences by a test voice the demo model never heard, as files, and a 3-gram
    LM on their text."""
    from wav2vec2.corpus.synth import Request, synthesize
    from wav2vec2.corpus.voices import voices_by_split

    tmp = tmp_path_factory.mktemp("speech")
    voice = next(v for v in voices_by_split()["test"] if v.engine == "espeak")
    waves = synthesize(voice, [Request(s.lower(), voice.rate, voice.pitch) for s in SENTENCES])
    files = []
    for i, wave in enumerate(waves):
        sf.write(tmp / f"s{i}.wav", wave, 16_000)
        files.append(tmp / f"s{i}.wav")
    (tmp / "text.txt").write_text("\n".join(SENTENCES * 4) + "\n")
    build = ["lm", "build", str(tmp / "text.txt"), "--out", str(tmp / "lm"), "--order", "3"]
    assert main(build) == 0
    return files, tmp / "lm"


@needs_espeak
def test_beam_search_in_workers_gives_the_same_transcripts(speech):
    files, lm = speech
    alone = Wav2Vec2Inference.from_pretrained(MODEL, lm=lm)
    pooled = Wav2Vec2Inference.from_pretrained(MODEL, lm=lm, decode_workers=2)
    want, got = alone.transcribe(files), pooled.transcribe(files)
    assert [t.source for t in got] == [str(f) for f in files]
    assert [t.text for t in got] == [t.text for t in want]
    assert [t.words for t in got] == [t.words for t in want]
    assert sum(len(t.words) for t in got) >= 20  # the LM's words came out
    # decode_emissions (what `lm tune` repeats per weight) likewise
    emissions = pooled.emissions(files)
    again = pooled.decode_emissions(emissions, pooled.decoder)
    assert [t.text for t in again] == [t.text for t in want]


@needs_espeak
def test_cli_decode_workers(speech, capsys):
    files, lm = speech
    code, one, _ = run_cli(capsys, "transcribe", MODEL, *files, "--lm", lm)
    assert code == 0
    code, two, _ = run_cli(capsys, "transcribe", MODEL, *files, "--lm", lm, "--decode-workers", 2)
    assert code == 0 and two == one
    code, out, err = run_cli(capsys, "transcribe", MODEL, *files, "--decode-workers", 0)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "decode workers must be" in err
