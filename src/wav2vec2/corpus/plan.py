"""Plan a corpus: which sentences each utterance reads, with which voice, in which split.

Planning is pure and seeded: the same text, config and seed give the same plan, and the
plan alone decides every output byte, so workers can make utterances in any order and an
interrupted run can resume. Audio is planned by *estimated* duration (words / speaking
rate); the summary reports the real durations.

Split integrity is built in, not checked afterwards:

- Speakers: dev and test voices come from speakers that never appear in training
  (:mod:`wav2vec2.corpus.voices`).
- Sentences: the normalized, de-duplicated sentences are cut into blocks of connected text
  and shuffled. dev takes blocks from the front, test the next ones, and training only
  blocks neither touched. Training may re-read its own blocks (with other voices) when the
  requested hours exceed the text; dev and test never repeat.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from wav2vec2.corpus.augment import AugmentConfig, AugmentSpec, draw_spec
from wav2vec2.corpus.normalize import Sentence, normalize_sentence
from wav2vec2.corpus.sources import SOURCE_NAMES
from wav2vec2.corpus.synth import estimate_seconds
from wav2vec2.corpus.voices import SPLITS, Voice, voices_by_split

BLOCK_SENTENCES = 12  # sentences of connected text per shuffled block


@dataclass(frozen=True)
class CorpusConfig:
    """What ``wav2vec2 corpus make`` builds."""

    hours: float = 1.0  # total audio over all splits (estimated while planning)
    seed: int = 0
    eval_fraction: float = 0.05  # dev and test each get this share of the hours,
    eval_min_hours: float = 0.05  # but at least 3 minutes each,
    eval_max_hours: float = 1.0  # at most an hour each,
    eval_max_fraction: float = 0.15  # and at most this share (so tiny corpora still train)
    min_words: int = 3  # per sentence
    max_words: int = 35
    max_seconds: float = 35.0  # longest utterance, as LibriSpeech's segmentation
    recorded_share: float = 0.5  # share of utterances from recorded voices (the rest espeak)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Text sources read (default all); the LM text comes from the same sources, so one
    # source gives a matched domain as LibriSpeech's books do.
    sources: tuple[str, ...] = SOURCE_NAMES
    # Closed vocabulary (0: open): read only sentences made entirely of the N most frequent
    # words of the chosen sources, as the WSJ 5k and Resource Management (1k) tasks do.
    vocabulary: int = 0

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise ValueError("hours must be positive")
        object.__setattr__(self, "sources", tuple(sorted(set(self.sources))))
        unknown = [name for name in self.sources if name not in SOURCE_NAMES]
        if unknown or not self.sources:
            raise ValueError(
                f"unknown text source {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(SOURCE_NAMES)}"
            )
        if not 1 <= self.min_words <= self.max_words:
            raise ValueError("need 1 <= min_words <= max_words")
        if self.vocabulary < 0:
            raise ValueError("vocabulary must be 0 (open) or a positive number of words")

    def eval_hours(self) -> float:
        """Hours each of dev and test gets."""
        hours = max(self.eval_fraction * self.hours, self.eval_min_hours)
        return min(hours, self.eval_max_hours, self.eval_max_fraction * self.hours)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: what is read, by which voice, and how it is altered."""

    uid: str
    split: str  # "train", "dev" or "test"
    voice: Voice
    sentences: tuple[Sentence, ...]
    rate: float  # speed (1.0 = engine default)
    pitch: int  # espeak-ng only
    augment: AugmentSpec
    est_seconds: float

    @property
    def words(self) -> str:
        """The transcript: every sentence's words, upper case, single spaces."""
        return " ".join(s.words for s in self.sentences)

    @property
    def spoken(self) -> str:
        """What the TTS engine reads: the same words, with prosodic punctuation."""
        return " ".join(s.spoken for s in self.sentences)

    @property
    def relpath(self) -> str:
        return f"audio/{self.split}/{self.voice.speaker}/{self.uid}.flac"


def sentence_blocks(
    passages: dict[str, Iterable[list[str]]],
    min_words: int,
    max_words: int,
    vocabulary: int = 0,
) -> list[list[Sentence]]:
    """Normalize and de-duplicate sentences, and cut each passage into blocks.

    Sources are read in name order and the first occurrence of a transcript wins, so a
    sentence quoted by two sources exists once, and can be in only one split. With a
    ``vocabulary`` of N, only sentences whose every word is among the N most frequent
    (counted over the de-duplicated sentences) are kept, before the cut into blocks.
    """
    seen: set[str] = set()
    texts: list[list[Sentence]] = []
    for name in sorted(passages):
        for passage in passages[name]:
            kept = []
            for raw in passage:
                sentence = normalize_sentence(raw, min_words, max_words)
                if sentence is None or sentence.words in seen:
                    continue
                seen.add(sentence.words)
                kept.append(sentence)
            texts.append(kept)
    if vocabulary:
        words = closed_vocabulary((s for text in texts for s in text), vocabulary)
        texts = [[s for s in text if words.issuperset(s.words.split())] for text in texts]
    return [
        text[i : i + BLOCK_SENTENCES]
        for text in texts
        for i in range(0, len(text), BLOCK_SENTENCES)
    ]


def closed_vocabulary(sentences: Iterable[Sentence], size: int) -> set[str]:
    """The ``size`` most frequent words (ties broken alphabetically, so it is deterministic)."""
    counts = Counter(w for s in sentences for w in s.words.split())
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return set(ranked[:size])


class _SentenceStream:
    """Sentences block by block in a shuffled order; remembers which blocks were read."""

    def __init__(self, blocks: list[list[Sentence]], order: list[int]) -> None:
        self.blocks = blocks
        self.order = order
        self.position = 0  # index into order of the current block
        self.offset = 0  # index into the current block
        self.touched: set[int] = set()

    def next(self) -> Sentence | None:
        while self.position < len(self.order):
            block = self.blocks[self.order[self.position]]
            if self.offset < len(block):
                self.touched.add(self.order[self.position])
                self.offset += 1
                return block[self.offset - 1]
            self.position, self.offset = self.position + 1, 0
        return None

    def peek(self) -> Sentence | None:
        position, offset = self.position, self.offset
        while position < len(self.order):
            block = self.blocks[self.order[position]]
            if offset < len(block):
                return block[offset]
            position, offset = position + 1, 0
        return None

    def end_block(self) -> None:
        """Leave the rest of the current block unread (splits never share a block)."""
        if self.offset:
            self.position, self.offset = self.position + 1, 0


def _target_seconds(rng: random.Random) -> float:
    """A LibriSpeech-like length: most 10-20 s, some shorter, a few up to 30 s."""
    u = rng.random()
    if u < 0.15:
        return rng.uniform(2.0, 10.0)
    if u < 0.90:
        return rng.uniform(10.0, 20.0)
    return rng.uniform(20.0, 30.0)


def _pick_voice(voices: tuple[Voice, ...], recorded_share: float, rng: random.Random) -> Voice:
    """Recorded voices get ``recorded_share`` of utterances; speakers are equally likely
    within each group, then the speaker's voices (engines)."""
    recorded = rng.random() < recorded_share
    group = [v for v in voices if v.recorded == recorded] or list(voices)
    speakers = sorted({v.speaker for v in group})
    speaker = rng.choice(speakers)
    return rng.choice([v for v in group if v.speaker == speaker])


def _plan_split(
    split: str,
    hours: float,
    stream: _SentenceStream,
    config: CorpusConfig,
    rng: random.Random,
    first_index: int,
) -> list[Utterance]:
    voices = voices_by_split()[split]
    utterances: list[Utterance] = []
    planned = 0.0
    while planned < hours * 3600:
        voice = _pick_voice(voices, config.recorded_share, rng)
        # Speed and pitch vary per utterance around the speaker's own.
        rate = round(voice.rate * rng.uniform(0.92, 1.08), 3)
        pitch = min(99, max(0, voice.pitch + rng.randint(-6, 6)))
        augment = draw_spec(config.augment, rng)
        if split != "train" or not config.augment.enabled:
            augment = AugmentSpec()
        target = _target_seconds(rng)
        sentences: list[Sentence] = []
        num_words = 0
        while True:
            nxt = stream.peek()
            if nxt is None:
                break
            now = estimate_seconds(num_words, voice, rate)
            seconds = estimate_seconds(num_words + nxt.num_words, voice, rate)
            # Stop when one more sentence would overshoot the target by more than we are
            # short of it now (or pass the longest allowed length).
            if sentences and (seconds > config.max_seconds or seconds - target > target - now):
                break
            sentences.append(stream.next())  # type: ignore[arg-type]
            num_words += nxt.num_words
            if seconds >= target:
                break
        if not sentences:
            break  # out of text
        est = estimate_seconds(num_words, voice, rate)
        uid = f"{voice.speaker}-{first_index + len(utterances):06d}"
        utterances.append(Utterance(uid, split, voice, tuple(sentences), rate, pitch, augment, est))
        planned += est
    return utterances


def plan_corpus(blocks: list[list[Sentence]], config: CorpusConfig) -> list[Utterance]:
    """Plan every utterance: dev, then test, then training (in a random order)."""
    if not blocks:
        raise ValueError("no usable sentences")
    rng = random.Random(config.seed)
    order = list(range(len(blocks)))
    rng.shuffle(order)
    stream = _SentenceStream(blocks, order)
    eval_hours = config.eval_hours()
    train_hours = config.hours - 2 * eval_hours
    plan: list[Utterance] = []
    for split, hours in (("dev", eval_hours), ("test", eval_hours)):
        plan += _plan_split(split, hours, stream, config, rng, len(plan))
        stream.end_block()
    held_out = set(stream.touched)
    train_blocks = [i for i in order[stream.position :] if i not in held_out]
    remaining = train_hours
    while remaining > 0:
        train_stream = _SentenceStream(blocks, train_blocks)
        part = _plan_split("train", remaining, train_stream, config, rng, len(plan))
        if not part:
            raise ValueError("no text left for training")
        plan += part
        remaining -= sum(u.est_seconds for u in part) / 3600
        # More hours than text: read the training blocks again, in a new order.
        train_blocks = sorted(train_blocks)
        rng.shuffle(train_blocks)
    return plan


def lm_sentences(blocks: list[list[Sentence]], plan: list[Utterance]) -> list[str]:
    """Text for an n-gram LM: every sentence of the blocks that dev and test never read.

    The same rule as the audio splits (splits never share a block): no dev or test sentence,
    nor any sentence of a block they read from, is in it. Like LibriSpeech's LM corpus it is
    in-domain text (the same sources) that the evaluation transcripts are not part of.
    """
    held_out = {s.words for u in plan if u.split != "train" for s in u.sentences}
    return [s.words for b in blocks if not any(s.words in held_out for s in b) for s in b]


def plan_digest(plan: list[Utterance]) -> str:
    """A short hash of everything that decides the output, to detect a changed plan."""
    h = hashlib.sha256()
    for u in plan:
        record = [u.uid, u.voice.id, u.spoken, u.rate, u.pitch, asdict(u.augment)]
        h.update(json.dumps(record).encode())
    return h.hexdigest()[:16]


def splits_of(plan: list[Utterance]) -> dict[str, list[Utterance]]:
    return {s: [u for u in plan if u.split == s] for s in SPLITS}
