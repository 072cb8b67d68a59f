"""CTC output vocabularies and their fairseq / transformers spellings.

A :class:`Vocabulary` is an ordered list of tokens, the index of the CTC blank and the word
delimiter. fairseq's ``dict.ltr.txt`` lists only the letters: its Dictionary prepends the
specials ``<s> <pad> </s> <unk>`` and CTC uses ``<s>`` (index 0) as the blank. transformers'
``vocab.json`` maps tokens to ids, and its tokenizer treats the pad token as the blank
(``<pad>`` at index 0 in converted fairseq models, which swap the names of ids 0 and 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from wav2vec2.atomic import write_text_atomic
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.textfile import read_lines

FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
WORD_DELIMITER = "|"


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]
    blank: int = 0
    word_delimiter: str = WORD_DELIMITER
    unk: str = "<unk>"

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if not 0 <= self.blank < len(self.tokens):
            raise ValueError("blank index out of range")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    @property
    def specials(self) -> set[str]:
        return {t for t in self.tokens if t.startswith("<") and t.endswith(">")}

    # -- text <-> ids ---------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        """A transcript as this vocabulary spells labels: single spaces between words, and
        upper case (LibriSpeech's and fairseq's letters), or lower case when the
        vocabulary's letters are all lower case. Nothing is removed: ``encode`` names what
        is left outside the vocabulary."""
        letters = [t for t in self.tokens if len(t) == 1 and t.isalpha()]
        lower = any(t.islower() for t in letters) and not any(t.isupper() for t in letters)
        words = " ".join(text.split())
        return words.lower() if lower else words.upper()

    def encode(self, text: str) -> list[int]:
        """Transcript (words separated by spaces) -> letter ids with word delimiters.

        Raises ValueError naming the characters that are not in the vocabulary.
        """
        index = self.index
        letters = self.word_delimiter.join(text.split())
        missing = sorted({c for c in letters if c not in index})
        if missing:
            raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
        return [index[c] for c in letters]

    def decode(self, ids: list[int]) -> str:
        """Label ids (already collapsed, blanks removed) -> text with single spaces."""
        text = "".join(self.tokens[i] for i in ids if i != self.blank)
        return " ".join(text.replace(self.word_delimiter, " ").split())

    # -- fairseq --------------------------------------------------------------------------
    @classmethod
    def from_fairseq_symbols(cls, symbols: list[str]) -> Vocabulary:
        """Letters as listed in dict.ltr.txt -> fairseq's Dictionary order, blank = <s>."""
        extra = [s for s in symbols if s not in FAIRSEQ_SPECIALS]
        return cls(tokens=FAIRSEQ_SPECIALS + tuple(extra), blank=0)

    @classmethod
    def from_fairseq_dict(cls, path: str | Path) -> Vocabulary:
        return cls.from_fairseq_symbols(list(read_dictionary(path)))

    @classmethod
    def for_labels(cls, data: str | Path, labels: str) -> Vocabulary:
        """The vocabulary of a data directory's ``SPLIT.<labels>`` files: fairseq keeps it
        beside them as ``dict.<labels>.txt``."""
        return cls.from_fairseq_dict(Path(data) / f"dict.{labels}.txt")

    def write_fairseq_dict(self, path: str | Path) -> None:
        """Write the non-special tokens in order (counts are not kept; written as 0... n)."""
        lines = [f"{t} {len(self.tokens) - i}" for i, t in enumerate(self.tokens)]
        lines = [ln for ln, t in zip(lines, self.tokens) if t not in FAIRSEQ_SPECIALS]
        write_text_atomic(path, "\n".join(lines) + "\n")

    # -- transformers -----------------------------------------------------------------------
    @classmethod
    def from_hf(cls, vocab: dict[str, int], pad_token: str = "<pad>", **kw) -> Vocabulary:
        """transformers' vocab.json mapping; the pad token is the CTC blank."""
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        if [vocab[t] for t in tokens] != list(range(len(tokens))):
            raise ValueError("vocab.json ids are not 0..N-1")
        if pad_token not in vocab:
            raise ValueError(f"vocab.json has no pad token {pad_token!r}")
        return cls(tokens=tuple(tokens), blank=vocab[pad_token], **kw)

    def to_hf(self) -> tuple[dict[str, int], dict[str, str]]:
        """(vocab.json mapping, special tokens for the tokenizer config).

        The blank must be transformers' pad token; fairseq-ordered vocabularies get the names
        of <s> and <pad> swapped, as transformers' own conversion script does.
        """
        tokens = list(self.tokens)
        blank_name = tokens[self.blank]
        if blank_name != "<pad>":
            if "<pad>" in tokens:
                tokens[tokens.index("<pad>")] = blank_name
            tokens[self.blank] = "<pad>"
        specials = {"pad_token": "<pad>", "word_delimiter_token": self.word_delimiter}
        for key, name in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", self.unk)):
            if name in tokens:
                specials[key] = name
        return {t: i for i, t in enumerate(tokens)}, specials

    # -- our own format ---------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "tokens": list(self.tokens),
            "blank": self.blank,
            "word_delimiter": self.word_delimiter,
            "unk": self.unk,
        }

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        return cls(
            tokens=tuple(data["tokens"]),
            blank=int(data["blank"]),
            word_delimiter=data.get("word_delimiter", WORD_DELIMITER),
            unk=data.get("unk", "<unk>"),
        )

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Wav2Vec2Error(f"not a valid vocabulary file ({exc})", path) from None


FAIRSEQ_OVERWRITE = "#fairseq:overwrite"  # fairseq's flag for a symbol listed again on purpose


def read_dictionary(path: str | Path) -> dict[str, int]:
    """fairseq's ``dict.*.txt``: ``SYMBOL COUNT`` lines (the symbol may hold spaces: the count
    is the last field, as fairseq's ``Dictionary.add_from_file`` reads it) into an ordered
    ``{symbol: count}``. A bad line, a repeated symbol (without fairseq's overwrite flag) or
    an empty file is a Wav2Vec2Error naming the file and line."""
    out: dict[str, int] = {}
    for number, line in enumerate(read_lines(path, "dictionary"), 1):
        line = line.rstrip()
        if not line:
            continue
        symbol, _, count = line.rpartition(" ")
        overwrite = count == FAIRSEQ_OVERWRITE
        if overwrite:
            symbol, _, count = symbol.rpartition(" ")
        if not symbol or not count.isdigit():
            raise Wav2Vec2Error(f"line {number}: expected 'SYMBOL COUNT'", path)
        if symbol in out and not overwrite:
            raise Wav2Vec2Error(f"line {number}: symbol {symbol!r} is listed twice", path)
        out[symbol] = int(count)
    if not out:
        raise Wav2Vec2Error("empty dictionary: no 'SYMBOL COUNT' lines", path)
    return out
