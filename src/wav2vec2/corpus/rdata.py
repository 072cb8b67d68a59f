"""A minimal reader for R's serialization format, enough to load character vectors.

Jane Austen's novels ship in Debian only as R data (package ``r-cran-janeaustenr``). Reading
that lazy-load database here means R itself is not needed. Only the parts of the format that
plain data objects use are handled: vectors, pairlists, symbols and attributes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

# SEXP type codes (R Internals, "Serialization Formats").
_NIL, _SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 0, 1, 2, 9, 10, 13, 14, 16, 19
_REF, _NILVALUE, _GLOBALENV, _EMPTYENV, _BASEENV, _MISSINGARG = 255, 254, 253, 242, 241, 251
_NA_INT = -(2**31)


class RDataError(ValueError):
    """The bytes are not R serialization that this reader understands."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        if data[:2] != b"X\n":
            raise RDataError("not XDR-format R serialization")
        self.data = data
        self.pos = 2
        self.refs: list[Any] = []
        version = self.int()
        self.int(), self.int()  # writer's and minimal reader's R versions
        if version == 3:
            n = self.int()  # then the native encoding's name
            self.pos += n

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def bytes(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def item(self) -> Any:
        flags = self.int()
        kind = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind in (_NILVALUE, _GLOBALENV, _EMPTYENV, _BASEENV, _MISSINGARG):
            return None
        if kind == _REF:
            return self.refs[(flags >> 8) - 1]
        if kind == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == _CHAR:
            n = self.int()
            return None if n == -1 else self.bytes(n).decode("utf-8", errors="replace")
        if kind == _LIST:  # a pairlist: attributes, then tag, then head and tail
            out: dict[str, Any] = {}
            while kind == _LIST:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else str(len(out))
                out[tag] = self.item()
                flags = self.int()
                kind = flags & 0xFF
                has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
            if kind != _NILVALUE:
                raise RDataError(f"unexpected pairlist terminator {kind}")
            return out
        if kind in (_STR, _VEC):
            value: Any = [self.item() for _ in range(self.int())]
        elif kind in (_LGL, _INT):
            n = self.int()
            ints = struct.unpack_from(f">{n}i", self.data, self.pos)
            value = [None if v == _NA_INT else v for v in ints]
            self.pos += 4 * n
        elif kind == _REAL:
            n = self.int()
            value = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        else:
            raise RDataError(f"unsupported R object type {kind}")
        if has_attr:
            attrs = self.item()
            names = attrs.get("names") if isinstance(attrs, dict) else None
            if kind == _VEC and names:
                value = dict(zip(names, value))
        return value


def unserialize(data: bytes) -> Any:
    """Decode R serialization (``saveRDS``/lazy-load format XDR, versions 2 and 3)."""
    return _Reader(data).item()


def load_lazy_db(folder: Path, stem: str = "Rdata") -> dict[str, Any]:
    """Load every object of an R lazy-load database (``stem.rdx`` index + ``stem.rdb`` data)."""
    index = unserialize(gzip.decompress((folder / f"{stem}.rdx").read_bytes()))
    blob = (folder / f"{stem}.rdb").read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        chunk = blob[offset : offset + length]
        # Each entry is a 4-byte big-endian raw length, then zlib data (compression type 1).
        out[name] = unserialize(zlib.decompress(chunk[4:]))
    return out
