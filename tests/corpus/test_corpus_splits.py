"""Split integrity of the planned corpus: held-out speakers and sentences, nesting, seeds.

Planning is pure (no audio), so these run on the real text at several hours in seconds.
"""

from __future__ import annotations

from collections import Counter

import pytest

from wav2vec2.corpus.make import missing_packages
from wav2vec2.corpus.normalize import Sentence
from wav2vec2.corpus.plan import (
    CorpusConfig,
    Utterance,
    plan_corpus,
    plan_digest,
    sentence_blocks,
    splits_of,
)
from wav2vec2.corpus.sources import all_passages, austen_folder
from wav2vec2.corpus.voices import (
    ESPEAK_ACCENTS,
    SPLITS,
    all_voices,
    split_of,
    voices_by_split,
)
from wav2vec2.corpus.writer import Made, labeled_subsets


@pytest.fixture(scope="module")
def blocks() -> list[list[Sentence]]:
    if missing_packages() or austen_folder() is None:
        pytest.skip(
            f"corpus packages missing: run scripts/install-system-deps.sh ({missing_packages()})"
        )
    return sentence_blocks(all_passages(), 3, 35)


@pytest.fixture(scope="module")
def plan(blocks: list[list[Sentence]]) -> list[Utterance]:
    return plan_corpus(blocks, CorpusConfig(hours=3.0, seed=1))


def test_text_pool_is_large_and_unique(blocks: list[list[Sentence]]) -> None:
    sentences = [s.words for b in blocks for s in b]
    assert len(sentences) > 80_000  # four sources, ~100 hours of text
    assert len(sentences) == len(set(sentences))


def test_speakers_are_held_out_by_recorded_person() -> None:
    by_split = voices_by_split()
    speakers = {s: {v.speaker for v in by_split[s]} for s in SPLITS}
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    # One person, several engines, one split.
    for person in ("slt", "kal"):
        engines = {v.engine for v in all_voices() if v.speaker == person}
        assert engines == {"flite", "festival"}
        assert {split_of(v) for v in all_voices() if v.speaker == person} == {"train"}
    # Every split has recorded voices and espeak voices in all eight accents.
    for split in SPLITS:
        assert any(v.recorded for v in by_split[split])
        accents = {v.name.split("+")[0] for v in by_split[split] if not v.recorded}
        assert accents == set(ESPEAK_ACCENTS)


def test_plan_keeps_speakers_and_sentences_apart(plan: list[Utterance]) -> None:
    splits = splits_of(plan)
    speakers = {s: {u.voice.speaker for u in splits[s]} for s in SPLITS}
    sentences = {s: {x.words for u in splits[s] for x in u.sentences} for s in SPLITS}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not speakers[a] & speakers[b], (a, b)
        assert not sentences[a] & sentences[b], (a, b)
    # dev and test never read a sentence twice.
    for split in ("dev", "test"):
        counts = Counter(x.words for u in splits[split] for x in u.sentences)
        assert max(counts.values()) == 1


def test_plan_sizes_and_lengths(plan: list[Utterance]) -> None:
    splits = splits_of(plan)
    hours = {s: sum(u.est_seconds for u in splits[s]) / 3600 for s in SPLITS}
    assert hours["dev"] == pytest.approx(0.15, abs=0.02)  # 5% of 3 h each
    assert hours["test"] == pytest.approx(0.15, abs=0.02)
    assert hours["train"] == pytest.approx(2.7, abs=0.05)
    seconds = [u.est_seconds for u in plan]
    assert max(seconds) <= 35.0
    assert sum(10 <= s <= 20 for s in seconds) / len(seconds) > 0.5  # LibriSpeech-like
    assert len({u.uid for u in plan}) == len(plan)
    assert len({u.relpath for u in plan}) == len(plan)


def test_eval_hours_have_floor_and_caps() -> None:
    assert CorpusConfig(hours=0.5).eval_hours() == pytest.approx(0.05)  # 3-minute floor
    assert CorpusConfig(hours=100).eval_hours() == pytest.approx(1.0)  # one-hour cap
    assert CorpusConfig(hours=10).eval_hours() == pytest.approx(0.5)  # 5%
    assert CorpusConfig(hours=0.02).eval_hours() == pytest.approx(0.003)  # 15% of tiny


def test_plan_is_deterministic(blocks: list[list[Sentence]], plan: list[Utterance]) -> None:
    again = plan_corpus(blocks, CorpusConfig(hours=3.0, seed=1))
    assert plan_digest(again) == plan_digest(plan)
    other = plan_corpus(blocks, CorpusConfig(hours=3.0, seed=2))
    assert plan_digest(other) != plan_digest(plan)


def _sentence(i: int) -> Sentence:
    """A unique five-word sentence; the last word spells ``i`` in letters (12 -> "BC")."""
    tag = "".join(chr(ord("A") + int(d)) for d in str(i))
    return Sentence(words=f"THIS IS SENTENCE NUMBER {tag}", spoken="x.")


def test_training_reuses_only_training_text_when_hours_exceed_it() -> None:
    # 60 tiny blocks of ~5-word sentences: far less text than 2 hours needs.
    blocks = [[_sentence(10 * b + i) for i in range(10)] for b in range(60)]
    plan = plan_corpus(blocks, CorpusConfig(hours=2.0, seed=0))
    splits = splits_of(plan)
    train = Counter(x.words for u in splits["train"] for x in u.sentences)
    held_out = {x.words for s in ("dev", "test") for u in splits[s] for x in u.sentences}
    assert max(train.values()) > 1  # training text was read again ...
    assert not held_out & set(train)  # ... but never dev/test text


def test_labeled_subsets_are_nested_prefixes(plan: list[Utterance]) -> None:
    train = [Made(u, int(u.est_seconds * 16000)) for u in plan if u.split == "train"]
    subsets, capped = labeled_subsets(train)
    ten_min, one_h, ten_h = subsets["train_10m"], subsets["train_1h"], subsets["train_10h"]
    assert ten_min == one_h[: len(ten_min)] and one_h == ten_h[: len(one_h)]
    assert sum(m.seconds for m in ten_min) == pytest.approx(600, abs=40)
    assert sum(m.seconds for m in one_h) == pytest.approx(3600, abs=40)
    assert capped == {"train_10m": False, "train_1h": False, "train_10h": True}
    assert ten_h == train  # capped: all training audio


def test_lm_text_excludes_every_block_dev_and_test_read(blocks, plan) -> None:
    from wav2vec2.corpus.plan import lm_sentences

    text = lm_sentences(blocks, plan)
    held_out = {s.words for u in plan if u.split != "train" for s in u.sentences}
    assert held_out and not held_out & set(text)
    read = [b for b in blocks if any(s.words in held_out for s in b)]
    assert not {s.words for b in read for s in b} & set(text)  # whole blocks are left out
    trained = {s.words for u in plan if u.split == "train" for s in u.sentences}
    assert trained <= set(text) and len(text) > 50 * len(trained) / 10


def test_sources_choose_the_text(blocks: list[list[Sentence]]) -> None:
    config = CorpusConfig(hours=1.0, seed=0, sources=("kjv",))
    kjv_blocks = sentence_blocks({"kjv": all_passages()["kjv"]}, 3, 35)
    kjv = {s.words for b in kjv_blocks for s in b}
    plan = plan_corpus(kjv_blocks, config)
    assert {s.words for u in plan for s in u.sentences} <= kjv
    from wav2vec2.corpus.plan import lm_sentences

    assert set(lm_sentences(kjv_blocks, plan)) <= kjv
    # The default reads all four, in name order, whatever order they are given in.
    shuffled = CorpusConfig(sources=("wordnet", "kjv", "fortunes", "austen", "kjv"))
    assert CorpusConfig().sources == shuffled.sources == ("austen", "fortunes", "kjv", "wordnet")
    with pytest.raises(ValueError, match="unknown text source bible; choose from austen"):
        CorpusConfig(sources=("kjv", "bible"))
    with pytest.raises(ValueError, match="none given"):
        CorpusConfig(sources=())


def test_closed_vocabulary_keeps_only_its_words(blocks: list[list[Sentence]]) -> None:
    from wav2vec2.corpus.plan import closed_vocabulary, lm_sentences

    closed = sentence_blocks(all_passages(), 3, 35, vocabulary=1000)
    words = closed_vocabulary((s for b in blocks for s in b), 1000)
    assert len(words) == 1000 and {"THE", "AND", "OF"} <= words
    sentences = [s for b in closed for s in b]
    assert 5000 < len(sentences) < len({s.words for b in blocks for s in b})
    assert all(words.issuperset(s.words.split()) for s in sentences)
    assert all(1 <= len(b) <= 12 for b in closed)
    # A 1.5-hour corpus and its LM text stay inside the closed vocabulary.
    plan = plan_corpus(closed, CorpusConfig(hours=1.5, seed=0, vocabulary=1000))
    spoken = {w for u in plan for w in u.words.split()}
    assert spoken <= words and len(spoken) > 800
    assert {w for line in lm_sentences(closed, plan) for w in line.split()} <= words
    # Ties are broken alphabetically, so the vocabulary does not depend on reading order.
    tied = [Sentence("B A C", "b a c"), Sentence("C B", "c b")]
    assert closed_vocabulary(tied, 2) == {"B", "C"}
    assert closed_vocabulary(reversed(tied), 2) == {"B", "C"}
    with pytest.raises(ValueError, match="vocabulary must be 0"):
        CorpusConfig(vocabulary=-5)


def test_open_vocabulary_plan_is_unchanged(blocks: list[list[Sentence]]) -> None:
    # The demo's corpus (1.5 h, seed 0, open vocabulary) has had this plan since before the
    # closed vocabulary existed, so its folders resume across versions.
    assert sentence_blocks(all_passages(), 3, 35, vocabulary=0) == blocks
    plan = plan_corpus(blocks, CorpusConfig(hours=1.5, seed=0))
    assert plan_digest(plan) == "64a65e921d8b3726"
