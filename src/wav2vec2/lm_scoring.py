"""A word n-gram LM (KenLM) as flashlight's beam searches ask it, through flashlight's ``LM``
interface: the lexicon search asks once per word, the lexicon-free one once per letter.

Both adapters weigh the LM themselves and flashlight is given ``lm_weight=1``: a hotword's
bonus must not scale with the LM weight (pyctcdecode adds it after alpha), and the
lexicon-free search has no ``word_score`` of its own, so its per-word bonus is added here.

flashlight identifies LM states by objects it owns (``LMState``) and merges two hypotheses
whose states are the same object; each adapter maps its states to what they stand for, and
forgets them when the next utterance starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LN10 = math.log(10.0)  # KenLM answers in log10; the acoustic scores are natural logs
# A score no hypothesis survives. Finite: flashlight keeps a first candidate of -inf (its
# threshold starts at -inf too).
NEVER = -1e30


class WordScores:
    """What a completed word adds to a hypothesis: ``lm_weight * ln P(word | history)`` plus
    its hotword bonus. A word outside the LM's vocabulary gets KenLM's ``<unk>``
    probability (the LM's own estimate for unseen words)."""

    def __init__(self, kenlm, model, lm_weight: float, bonus: dict[str, float]):
        self.kenlm, self.model, self.lm_weight, self.bonus = kenlm, model, lm_weight, bonus

    def start(self, start_with_nothing: bool):
        """The KenLM state before the first word: no context, or the sentence start."""
        state = self.kenlm.State()
        if start_with_nothing:
            self.model.NullContextWrite(state)
        else:
            self.model.BeginSentenceWrite(state)
        return state

    def log_prob(self, state, word: str):
        """(state after WORD, ln P(WORD | STATE)), unweighted."""
        out = self.kenlm.State()
        return out, self.model.BaseScore(state, word, out) * LN10

    def word(self, state, word: str):
        out, logp = self.log_prob(state, word)
        return out, self.lm_weight * logp + self.bonus.get(word, 0.0)

    def end(self, state) -> float:
        return self.lm_weight * self.log_prob(state, "</s>")[1]


def lexicon_lm(fl, scores: WordScores, words: Sequence[str]):
    """The lexicon search's LM: ``score(state, i)`` is the word ``words[i]`` completing."""

    class LexiconLM(fl.LM):
        def __init__(self):
            fl.LM.__init__(self)
            self.states: dict = {}  # LMState -> KenLM state

        def start(self, start_with_nothing: bool):
            self.states.clear()  # one utterance at a time: forget the last one's states
            state = fl.LMState()
            self.states[state] = scores.start(start_with_nothing)
            return state

        def score(self, state, index: int):
            child = state.child(index)
            self.states[child], score = scores.word(self.states[state], words[index])
            return child, score

        def finish(self, state):
            return state.child(len(words)), scores.end(self.states[state])

        def window_done(self) -> None:
            """(Its states are one per word: few enough to keep for the whole input.)"""

    return LexiconLM()


def letter_lm(fl, scores: WordScores, trie, tokens: Sequence[str], letters: set[int],
              sil: int, word_score: float, unknown: float):  # fmt: skip
    """The lexicon-free search's LM, queried for every letter and word delimiter.

    Why a word LM, scored at word ends: the LM directory holds a word n-gram, and a word LM
    keeps what it knows about word sequences; a letter n-gram (torchaudio's lexicon-free
    recipe) would need an LM of its own and forget the words. So a word is scored when its
    delimiter completes it (as pyctcdecode does), and a word the LM has never seen gets
    ``<unk>``'s probability: new words (names, rare words) can come out, at the price the
    LM puts on unseen words. Between delimiters, the letters so far are scored by
    look-ahead, as flashlight's lexicon trie does: the best score a lexicon word with that
    prefix could reach (``trie``, smeared by max, hotword bonuses included), or ``unknown``
    (an unseen word's score) once no lexicon word has that prefix. The look-ahead only
    orders the beam: each step adds its change and the delimiter takes it back, so a
    finished word adds exactly its own score.

    A state is (KenLM state, letters of the current word): two hypotheses with the same
    n-gram context and the same partial word share one, so flashlight merges them (n-gram
    recombination).

    flashlight asks about every state a live hypothesis holds at every frame (it tries 3 or
    more tokens, so at least one neither blank nor a repeat). A state nobody asked about
    during a whole window of frames is held by no live hypothesis and never will be, so
    ``window_done`` forgets it: tables kept in two generations, this window's and the last
    one's, bound the memory whatever the input's length."""

    class LetterLM(fl.LM):
        def __init__(self):
            fl.LM.__init__(self)
            # LMState -> (KenLM state, letter ids so far, look-ahead)
            self.info: dict = {}
            self.old_info: dict = {}
            # (KenLM state, letter ids) -> LMState
            self.states: dict = {}
            self.old_states: dict = {}
            self.looks: dict = {}  # letter ids -> look-ahead

        def _info(self, state):
            info = self.info.get(state)
            if info is None:  # last used in the last window: keep it and its key
                info = self.info[state] = self.old_info.pop(state)
                self.states[info[:2]] = state
            return info

        def _state(self, kstate, ids: tuple[int, ...], look: float):
            key = (kstate, ids)
            state = self.states.get(key) or self.old_states.pop(key, None)
            if state is None:
                state = fl.LMState()
            self.states[key] = state
            if state not in self.info:
                self.info[state] = self.old_info.pop(state, None) or (kstate, ids, look)
            return state

        def _look(self, ids: tuple[int, ...]) -> float:
            look = self.looks.get(ids)
            if look is not None:
                return look
            # Only prefixes of lexicon words are kept, so the table is bounded by the
            # lexicon. A word's prefixes are looked up in order (letter by letter), so a
            # prefix whose parent is not kept is no lexicon prefix either.
            if len(ids) > 1 and ids[:-1] not in self.looks:
                return unknown
            node = trie.search(list(ids))
            if node is None:
                return unknown
            look = self.looks[ids] = node.max_score
            return look

        def _complete(self, kstate, ids: tuple[int, ...]):
            out, score = scores.word(kstate, "".join(tokens[i] for i in ids))
            return out, score + word_score

        def start(self, start_with_nothing: bool):
            for table in (self.info, self.old_info, self.states, self.old_states, self.looks):
                table.clear()
            return self._state(scores.start(start_with_nothing), (), 0.0)

        def score(self, state, token: int):
            kstate, ids, look = self._info(state)
            if token == sil:
                if not ids:  # a delimiter that ends no word (at the start, or a second one)
                    return state, 0.0
                out, score = self._complete(kstate, ids)
                return self._state(out, (), 0.0), score - look
            if token not in letters:  # a special (<unk>, </s>, ...): never text
                return state, NEVER
            ids = (*ids, token)
            new = self._look(ids)
            return self._state(kstate, ids, new), new - look

        def finish(self, state):
            kstate, ids, look = self._info(state)
            score = -look
            if ids:  # a last word without its delimiter
                kstate, word = self._complete(kstate, ids)
                score += word
            return state, score + scores.end(kstate)

        def window_done(self) -> None:
            self.old_info, self.info = self.info, {}
            self.old_states, self.states = self.states, {}

    return LetterLM()
