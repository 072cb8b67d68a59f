"""Frozen dataclass trees <-> plain JSON data."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import fields
from typing import Any


def dataclass_from_dict(cls: type, data: Any) -> Any:
    """Build dataclass ``cls`` (nested dataclasses, optionals, tuples) from plain JSON data.

    Lists become tuples again and unknown keys are an error, so a config round-trips
    exactly and a typo in a saved file does not pass silently.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} expects an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise KeyError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner, value)
    if dataclasses.is_dataclass(tp):
        return dataclass_from_dict(tp, value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for ``dotted="a.b"``; KeyError if the path is unknown."""
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        if not isinstance(node.get(p), dict):
            raise KeyError(dotted)
        node = node[p]
    if leaf not in node:
        raise KeyError(dotted)
    node[leaf] = value
