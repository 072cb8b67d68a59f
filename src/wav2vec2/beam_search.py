"""CTC beam search with a lexicon and a word n-gram LM (paper sec. 4.4: "beam search with a
4-gram LM", as fairseq's and torchaudio's decoders do it).

The search is flashlight's lexicon decoder (flashlight-text): hypotheses advance letter by
letter through a trie of the lexicon's spellings, so every emitted word is a lexicon word;
when a word completes, the LM scores it. The score of a hypothesis is

    log P_ctc(letters | audio) + lm_weight * log P_lm(words) + word_score * |words|

(fairseq's ``--lm-weight`` and ``--word-score``). KenLM answers the LM queries; its log10
probabilities are converted to natural logs, the acoustic model's unit.
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
from wav2vec2.ngram import lm_files, read_lexicon
from wav2vec2.vocab import Vocabulary

LN10 = math.log(10.0)


@dataclass(frozen=True)
class BeamSearchConfig:
    beam: int = 100  # hypotheses kept per frame (fairseq --beam)
    beam_threshold: float = 25.0  # drop hypotheses this far below the best (fairseq default)
    lm_weight: float = 1.0  # fairseq --lm-weight (alpha)
    word_score: float = 1.0  # fairseq --word-score (beta): a bonus per emitted word
    sil_score: float = 0.0  # a bonus per word delimiter

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise Wav2Vec2Error(f"beam must be at least 1, got {self.beam}")
        if not self.beam_threshold > 0:
            raise Wav2Vec2Error(f"beam threshold must be positive, got {self.beam_threshold}")

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


def _kenlm_adapter(kenlm, fl, model, words: list[str]):
    """flashlight's LM interface over a KenLM model. flashlight identifies LM states by
    objects it owns (``LMState.child``); each maps to the KenLM state it stands for."""

    class KenLMAdapter(fl.LM):
        def __init__(self):
            fl.LM.__init__(self)
            self.states: dict = {}

        def start(self, start_with_nothing: bool):
            self.states.clear()  # one utterance at a time: forget the last one's states
            state, kstate = fl.LMState(), kenlm.State()
            if start_with_nothing:
                model.NullContextWrite(kstate)
            else:
                model.BeginSentenceWrite(kstate)
            self.states[state] = kstate
            return state

        def _advance(self, state, index: int, word: str):
            child = state.child(index)
            out = kenlm.State()
            score = model.BaseScore(self.states[state], word, out) * LN10
            self.states[child] = out
            return child, score

        def score(self, state, index: int):
            return self._advance(state, index, words[index])

        def finish(self, state):
            return self._advance(state, len(words), "</s>")

    return KenLMAdapter()


class LexiconBeamDecoder:
    """A :class:`~wav2vec2.decoding.Decoder`: lexicon-constrained beam search with an LM
    directory made by ``wav2vec2 lm build`` (or any KenLM model beside a lexicon)."""

    def __init__(self, vocab: Vocabulary, lm_dir: str | Path, config: BeamSearchConfig):
        kenlm, fl = _imports()
        self.vocab, self.config, self.lm_dir = vocab, config, Path(lm_dir)
        model_path, lexicon_path = lm_files(lm_dir)
        try:
            self.kenlm = kenlm.Model(str(model_path))
        except (OSError, RuntimeError) as exc:
            raise Wav2Vec2Error(f"cannot read the KenLM model ({exc})", model_path) from None
        index = vocab.index
        if vocab.word_delimiter not in index:
            raise Wav2Vec2Error("the model's vocabulary has no word delimiter: no words")
        self.sil = index[vocab.word_delimiter]
        self.skip = non_text_labels(vocab)
        # Spellings end with the word delimiter, as letter models (fairseq's .ltr) emit
        # words; ``decode`` closes the last word with one extra delimiter frame.
        entries = [
            (w, spell if spell[-1] == vocab.word_delimiter else [*spell, vocab.word_delimiter])
            for w, spell in read_lexicon(lexicon_path)
        ]
        entries = [(w, sp) for w, sp in entries if all(c in index for c in sp)]
        if not entries:
            raise Wav2Vec2Error(
                "no lexicon word can be spelled with the model's letters", lexicon_path
            )
        self.words = [w for w, _ in entries]
        self.lm = _kenlm_adapter(kenlm, fl, self.kenlm, self.words)
        self.trie = fl.Trie(len(vocab), self.sil)
        start = self.lm.start(False)
        for i, (_, spell) in enumerate(entries):
            _, unigram = self.lm.score(start, i)
            self.trie.insert([index[c] for c in spell], i, unigram)
        self.trie.smear(fl.SmearingMode.MAX)  # look-ahead: best unigram below each node
        self._fl = fl
        self._search = self._make_search(config)

    def _make_search(self, config: BeamSearchConfig):
        fl = self._fl
        options = fl.LexiconDecoderOptions(
            beam_size=config.beam,
            beam_size_token=len(self.vocab),
            beam_threshold=config.beam_threshold,
            lm_weight=config.lm_weight,
            word_score=config.word_score,
            unk_score=-math.inf,  # words outside the lexicon are never emitted
            sil_score=config.sil_score,
            log_add=False,
            criterion_type=fl.CriterionType.CTC,
        )
        return fl.LexiconDecoder(
            options, self.trie, self.lm, self.sil, self.vocab.blank, -1, [], False
        )

    def with_config(self, config: BeamSearchConfig) -> LexiconBeamDecoder:
        """The same lexicon and LM with other search settings (the trie and the loaded
        model are shared, not rebuilt: what tuning the weights needs)."""
        other = copy.copy(self)
        other.config, other._search = config, self._make_search(config)
        return other

    def describe(self) -> dict:
        return {
            "decoder": "lexicon beam search",
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
            emissions = torch.cat([row[: int(n)], close]).contiguous()
            best = self._search.decode(emissions.data_ptr(), emissions.shape[0], len(self.vocab))
            out.append(self._hypothesis(best[0] if best else None, int(n)))
        return out

    def _hypothesis(self, result, frames: int) -> Hypothesis:
        if result is None:
            return Hypothesis("", (), (), ())
        words = [self.words[i] for i in result.words if i >= 0]
        # result.tokens is the best path with one padding token on each side (T + 2 entries):
        # frames 0 .. frames-1 are entries 1 .. frames (our closing frame comes after).
        tokens, starts, ends = collapse(list(result.tokens)[1 : frames + 1], self.skip)
        return Hypothesis(" ".join(words), tokens, starts, ends)
