"""CTC beam search with a word n-gram LM (paper sec. 4.4: "beam search with a 4-gram LM", as
fairseq's and torchaudio's decoders do it), constrained to a lexicon or not.

The lexicon search is flashlight's lexicon decoder (flashlight-text): hypotheses advance
letter by letter through a trie of the lexicon's spellings, so every emitted word is a
lexicon word; when a word completes, the LM scores it. The score of a hypothesis is

    log P_ctc(letters | audio) + lm_weight * log P_lm(words) + word_score * |words|
        + the bonus of each hotword in it

(fairseq's ``--lm-weight`` and ``--word-score``; hotwords: :mod:`wav2vec2.hotwords`). KenLM
answers the LM queries; its log10 probabilities are converted to natural logs, the acoustic
model's unit.

The lexicon-free search (``lexicon_free``) is flashlight's lexicon-free decoder with the same
word LM, which scores each word when its delimiter completes it: a word the lexicon lacks
can come out, scored by the LM's ``<unk>`` probability (:func:`wav2vec2.lm_scoring.letter_lm`
says why this design). The lexicon still serves as the look-ahead inside words.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from wav2vec2.decoding import Hypothesis, collapse, non_text_labels
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.hotwords import Hotwords, check_spellable
from wav2vec2.lm_scoring import WordScores, letter_lm, lexicon_lm
from wav2vec2.ngram import lm_files, read_lexicon
from wav2vec2.vocab import Vocabulary

# The lexicon-free search asks the LM (a Python call) about each token it tries at each
# frame, for each hypothesis: it tries the 8 likeliest per frame (flashlight's
# beam_size_token), not all. On a 20 s utterance this took the search from 9 s to 3.6 s with
# the same text; a CTC model puts almost all of a frame's mass on two or three tokens.
LEXICON_FREE_TOKENS = 8
# Frames decoded per call: between calls the lexicon-free LM forgets the states no
# hypothesis can hold any more, so its memory does not grow with the input's length.
WINDOW = 100
# Frames of the best path left open to change: older ones are committed, and the search
# forgets them (see ``_best``). Beams agree on their past long before 10 s.
LOOK_BACK = 500
# flashlight's lexicon search commits at a word's end, up to this many frames further back
# than asked (its kLookBackLimit): a commit waits until that many more frames are held, so
# the committed part and the pruned buffer always agree.
FLASHLIGHT_LOOK_BACK_LIMIT = 100


@dataclass(frozen=True)
class BeamSearchConfig:
    beam: int = 100  # hypotheses kept per frame (fairseq --beam)
    beam_threshold: float = 25.0  # drop hypotheses this far below the best (fairseq default)
    lm_weight: float = 1.0  # fairseq --lm-weight (alpha)
    word_score: float = 1.0  # fairseq --word-score (beta): a bonus per emitted word
    sil_score: float = 0.0  # a bonus per word delimiter
    lexicon_free: bool = False  # words outside the lexicon may come out (see module doc)
    hotwords: Hotwords = ()  # (word, bonus per occurrence in ln units), wav2vec2.hotwords
    # Where lm_weight and word_score came from: "defaults", "given", the tuned.json they were
    # read from (wav2vec2.tuned_weights), or each place with its weights; for reports only.
    weights_from: str = "defaults"

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise Wav2Vec2Error(f"beam must be at least 1, got {self.beam}")
        if not self.beam_threshold > 0:
            raise Wav2Vec2Error(f"beam threshold must be positive, got {self.beam_threshold}")

    @property
    def search(self) -> str:
        """The search, as reports and tuned.json name it."""
        return "lexicon-free" if self.lexicon_free else "lexicon"

    def to_dict(self) -> dict:
        return asdict(self)


def _imports():
    try:
        import kenlm
        from flashlight.lib.text import decoder as fl
    except ImportError as exc:
        raise Wav2Vec2Error(
            f"beam search needs the 'lm' extra ({exc.name} is missing): pip install 'wav2vec2[lm]'"
        ) from None
    return kenlm, fl


class LexiconBeamDecoder:
    """A :class:`~wav2vec2.decoding.Decoder`: beam search with an LM directory made by
    ``wav2vec2 lm build`` (or any KenLM model beside a lexicon), constrained to the lexicon
    unless ``config.lexicon_free``."""

    def __init__(self, vocab: Vocabulary, lm_dir: str | Path, config: BeamSearchConfig):
        kenlm, fl = _imports()
        self.vocab, self.lm_dir = vocab, Path(lm_dir)
        model_path, lexicon_path = lm_files(lm_dir)
        try:
            self.kenlm = kenlm.Model(str(model_path))
        except (OSError, RuntimeError) as exc:
            raise Wav2Vec2Error(f"cannot read the KenLM model ({exc})", model_path) from None
        if vocab.word_delimiter not in vocab.index:
            raise Wav2Vec2Error("the model's vocabulary has no word delimiter: no words")
        self.sil = vocab.index[vocab.word_delimiter]
        self.skip = non_text_labels(vocab)
        entries = [(w, self._spell(sp)) for w, sp in read_lexicon(lexicon_path)]
        self.lexicon = [(w, ids) for w, ids in entries if ids is not None]
        if not self.lexicon:
            raise Wav2Vec2Error(
                "no lexicon word can be spelled with the model's letters", lexicon_path
            )
        # ln P(word | <s>) of each lexicon word, for the trie's look-ahead: KenLM is asked
        # once, and each configuration only weighs them.
        scores = WordScores(kenlm, self.kenlm, 1.0, {})
        start = scores.start(False)
        self.unigrams = [scores.log_prob(start, w)[1] for w, _ in self.lexicon]
        self._kenlm_module, self._fl = kenlm, fl
        self._configure(config)

    def _spell(self, spelling: list[str]) -> list[int] | None:
        """Label ids of a spelling, ending with the word delimiter as letter models (fairseq's
        .ltr) emit words (``decode`` closes the last word with one extra delimiter frame);
        None if the model lacks one of its letters."""
        delimiter = self.vocab.word_delimiter
        if spelling[-1] != delimiter:
            spelling = [*spelling, delimiter]
        index = self.vocab.index
        return [index[c] for c in spelling] if all(c in index for c in spelling) else None

    def _configure(self, config: BeamSearchConfig) -> None:
        """The trie, the LM adapter and flashlight's search for CONFIG. The trie holds the
        weighted word scores (and hotword bonuses) as look-ahead, so it depends on them."""
        check_spellable(config.hotwords, self.vocab)
        fl, bonus = self._fl, dict(config.hotwords)
        known = {w for w, _ in self.lexicon}
        # A hotword the lexicon lacks joins it: boosting a word that cannot come out would
        # do nothing.
        extra = [(w, self._spell(list(w))) for w, _ in config.hotwords if w not in known]
        entries = self.lexicon + extra
        scores = WordScores(self._kenlm_module, self.kenlm, config.lm_weight, bonus)
        start = scores.start(False)
        unigrams = self.unigrams + [scores.log_prob(start, w)[1] for w, _ in extra]
        trie = fl.Trie(len(self.vocab), self.sil)
        for i, ((word, ids), unigram) in enumerate(zip(entries, unigrams)):
            trie.insert(ids, i, config.lm_weight * unigram + bonus.get(word, 0.0))
        trie.smear(fl.SmearingMode.MAX)  # look-ahead: the best word score below each node
        self.config, self.words, self.trie = config, [w for w, _ in entries], trie
        if config.lexicon_free:
            letters = set(range(len(self.vocab))) - self.skip - {self.sil}
            unknown = config.lm_weight * scores.log_prob(start, "<unk>")[1]
            self.lm = letter_lm(fl, scores, trie, self.vocab.tokens, letters, self.sil,
                                config.word_score, unknown)  # fmt: skip
        else:
            self.lm = lexicon_lm(fl, scores, self.words)
        self._search = self._make_search(config)

    def _make_search(self, config: BeamSearchConfig):
        fl = self._fl
        # lm_weight=1: the adapters weigh the LM themselves (wav2vec2.lm_scoring)
        common = dict(
            beam_size=config.beam,
            beam_threshold=config.beam_threshold,
            lm_weight=1.0,
            sil_score=config.sil_score,
            log_add=False,
            criterion_type=fl.CriterionType.CTC,
        )
        if config.lexicon_free:  # its word_score is added by the adapter
            options = fl.LexiconFreeDecoderOptions(
                **common, beam_size_token=min(len(self.vocab), LEXICON_FREE_TOKENS)
            )
            return fl.LexiconFreeDecoder(options, self.lm, self.sil, self.vocab.blank, [])
        options = fl.LexiconDecoderOptions(
            **common,
            beam_size_token=len(self.vocab),
            word_score=config.word_score,
            unk_score=-math.inf,  # words outside the lexicon are never emitted
        )
        return fl.LexiconDecoder(
            options, self.trie, self.lm, self.sil, self.vocab.blank, -1, [], False
        )

    def with_config(self, config: BeamSearchConfig) -> LexiconBeamDecoder:
        """The same lexicon and LM with other search settings: the loaded model and the
        words' LM scores are shared, not recomputed (what tuning the weights needs)."""
        other = copy.copy(self)
        other._configure(config)
        return other

    def describe(self) -> dict:
        return {
            "decoder": f"{self.config.search} beam search",
            "lm": str(self.lm_dir.resolve()),
            "lexicon_words": len(self.words),
            **self.config.to_dict(),
        }

    def decode(self, logits: Tensor, lengths: Tensor) -> list[Hypothesis]:
        """logits: (B, T, V); lengths: (B,) valid frames."""
        log_probs = torch.log_softmax(logits.detach().float().cpu(), dim=-1)
        # One frame that is certainly a word delimiter: the utterance ends a word. Without it
        # a last word the model did not close would be dropped (flashlight completes words
        # only at their delimiter); when the model closed it, CTC merges the two.
        close = torch.full((1, len(self.vocab)), -1e4)
        close[0, self.sil] = 0.0
        out = []
        for row, n in zip(log_probs, lengths.tolist()):
            best = self._best(torch.cat([row[: int(n)], close]).contiguous())
            out.append(self._hypothesis(best, int(n)))
        return out

    def _best(self, emissions: Tensor) -> tuple[list[int], list[int]] | None:
        """The best path's (tokens, words) for (T, V) float32 log-probabilities, or None.

        Decoded a window at a time (``WINDOW``). Once more than ``LOOK_BACK`` frames are
        held, the path up to ``LOOK_BACK`` frames ago is committed and flashlight forgets
        what lies before it (its ``prune``, as its streaming decoding does), so memory does
        not grow with the input's length. Each part starts with the state the last one
        ended in, so the parts join on that entry."""
        frames, labels = emissions.shape
        self._search.decode_begin()
        tokens: list[int] = []
        words: list[int] = []
        held = 0
        for start in range(0, frames, WINDOW):
            pointer = emissions.data_ptr() + start * labels * emissions.element_size()
            step = min(WINDOW, frames - start)
            self._search.decode_step(pointer, step, labels)
            self.lm.window_done()
            held += step
            if held > LOOK_BACK + FLASHLIGHT_LOOK_BACK_LIMIT:
                part = self._search.get_best_hypothesis(LOOK_BACK)
                if len(part.tokens) > 1:
                    _join(tokens, words, part)
                    self._search.prune(LOOK_BACK)
                    held -= len(part.tokens) - 1
        self._search.decode_end()
        results = self._search.get_all_final_hypothesis()  # best first
        if not results:
            return None
        _join(tokens, words, results[0])
        return tokens, words

    def _hypothesis(self, best: tuple[list[int], list[int]] | None, frames: int) -> Hypothesis:
        if best is None:
            return Hypothesis("", (), (), ())
        # The best path with one padding entry on each side (T + 2 entries): frames
        # 0 .. frames-1 are entries 1 .. frames (our closing frame comes after).
        path, word_ids = best
        tokens, starts, ends = collapse(path[1 : frames + 1], self.skip)
        if self.config.lexicon_free:  # the letters are the text
            return Hypothesis(self.vocab.decode(list(tokens)), tokens, starts, ends)
        words = [self.words[i] for i in word_ids if i >= 0]
        return Hypothesis(" ".join(words), tokens, starts, ends)


def _join(tokens: list[int], words: list[int], part) -> None:
    """Append a part of the best path (a flashlight DecodeResult) to the path so far: its
    first entry is the state the previous part ended in."""
    skip = 1 if tokens else 0
    tokens += list(part.tokens)[skip:]
    words += list(part.words)[skip:]
