"""Read a torch ``.pt`` checkpoint without running any code from it.

A ``.pt`` file is a pickle, and a pickle may name any importable function and call it: a
plain ``torch.load(weights_only=False)`` of a crafted file can run ``os.system``. fairseq
checkpoints cannot be read with ``weights_only=True`` either, because besides tensors they
embed an ``argparse.Namespace`` (old style), omegaconf ``DictConfig`` objects (new style),
numpy scalars and fairseq classes (a target ``Dictionary`` in ``task_state``).

Safety model: torch.load does the storage bookkeeping (zip and legacy formats), but every
global the pickle names is looked up by :class:`_RestrictedUnpickler` ``.find_class``,
which returns only

1. torch's tensor-rebuild functions and dtypes (what torch's own weights_only loader allows);
2. pure data types (``OrderedDict``, ``argparse.Namespace``, builtin containers);
3. for names under omegaconf, fairseq, hydra, numpy and typing: an inert :class:`StandIn`
   that records the arguments and state it is given. Those modules are never imported
   (neither omegaconf nor fairseq is needed), and nothing of theirs ever runs;

and refuses every other name (``os.system``, ``subprocess.Popen``, ``builtins.eval``, ...)
*before* it can be called. :func:`safe_load` then turns the stand-ins back into plain
dicts, lists and values.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import argparse
import collections
import copyreg
import pickle
import re
import types
from pathlib import Path
from typing import Any, ClassVar

import torch

from wav2vec2.errors import Wav2Vec2Error

# -- the allow-list ----------------------------------------------------------------------------

# Functions torch pickles tensors with. Their arguments can only be objects that this same
# allow-list let through.
_TORCH_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
}

# Plain data types: constructing one runs no user code.
_DATA_TYPES: dict[tuple[str, str], Any] = {
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    ("argparse", "Namespace"): argparse.Namespace,
    ("_codecs", "encode"): _codecs.encode,  # how protocol 2 spells bytes
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # protocol 0/1 objects
    **{
        ("builtins", t.__name__): t
        for t in (int, float, complex, str, bytes, bytearray, bool, list, tuple, dict, set,
                  frozenset, object)
    },
}  # fmt: skip

# Modules whose names become inert stand-ins instead of being imported: configuration and
# metadata objects that fairseq checkpoints carry next to the weights.
_STAND_IN_MODULES = ("omegaconf", "fairseq", "hydra", "numpy", "typing")


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (raised before anything runs)."""

    def __init__(self, name: str):
        super().__init__(f"forbidden global {name}")
        self.name = name


class StandIn:
    """An instance of a class we refuse to import: it keeps the pickled class name and
    whatever the pickle handed it (constructor arguments, state, items), nothing else."""

    pickled_name: ClassVar[str] = "?"
    # Defaults for instances made without __new__'s arguments (copyreg._reconstructor).
    args: tuple = ()
    state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        self = super().__new__(cls)
        self.args = args
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # __new__ kept the arguments; a stand-in never acts on them

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @property
    def items(self) -> dict:
        return self.__dict__.setdefault("_items", {})

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses (SETITEMS)
        self.items[key] = value

    def append(self, value: Any) -> None:  # list subclasses (APPENDS)
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def __repr__(self) -> str:
        return f"<stand-in for {self.pickled_name}>"


_stand_in_classes: dict[str, type[StandIn]] = {}


def _stand_in(module: str, name: str) -> type[StandIn]:
    full = f"{module}.{name}"
    if full not in _stand_in_classes:
        _stand_in_classes[full] = type(name, (StandIn,), {"pickled_name": full})
    return _stand_in_classes[full]


def _singleton_type(obj: Any) -> type:
    """``builtins.type`` as pickle uses it: ``type(None)`` and friends only."""
    if obj is None or obj is NotImplemented or obj is Ellipsis:
        return type(obj)
    raise ForbiddenGlobal("builtins.type (other than type(None))")


def _subscript(obj: Any, key: Any) -> Any:
    """``operator.getitem`` as pickle uses it for ``typing.Optional[int]`` and the like."""
    if isinstance(obj, StandIn) or (isinstance(obj, type) and issubclass(obj, StandIn)):
        return obj  # a type annotation in omegaconf metadata: its details do not matter
    raise ForbiddenGlobal("operator.getitem (other than on typing names)")


def _plain_dict(*args: Any) -> dict:
    """``collections.defaultdict``, minus the factory (omegaconf 2.0's resolver cache)."""
    return {}


_SAFE_FUNCTIONS: dict[tuple[str, str], Any] = {
    ("builtins", "type"): _singleton_type,
    ("operator", "getitem"): _subscript,
    ("_operator", "getitem"): _subscript,
    ("collections", "defaultdict"): _plain_dict,
}


def _find_allowed(module: str, name: str) -> Any:
    key = (module, name)
    for table in (_TORCH_FUNCTIONS, _DATA_TYPES, _SAFE_FUNCTIONS):
        if key in table:
            return table[key]
    if module == "torch" and isinstance(
        getattr(torch, name, None), (torch.dtype, torch.layout, torch.memory_format)
    ):
        return getattr(torch, name)
    if module.split(".")[0] in _STAND_IN_MODULES:
        return _stand_in(module, name)
    raise ForbiddenGlobal(f"{module}.{name}")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 pickles may use Python 2 names ("__builtin__ long"); pickle's own
        # find_class renames them, and so must its replacement.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        return _find_allowed(module, name)


# torch.load takes a "pickle module": the object it calls .Unpickler and .load on.
_restricted_pickle = types.SimpleNamespace(
    __name__="wav2vec2.interop.safe_pickle",
    Unpickler=_RestrictedUnpickler,
    load=lambda file, **kw: _RestrictedUnpickler(file, **kw).load(),
)


# -- loading ---------------------------------------------------------------------------------


def safe_load(path: str | Path) -> Any:
    """Read a torch checkpoint (zip or legacy format) on the CPU, refusing any pickled code.

    omegaconf and other stand-ins come back as plain dicts, lists and values; an
    ``argparse.Namespace`` as a dict of its attributes. Raises :class:`Wav2Vec2Error` (one
    line, naming the file) for a missing, truncated or corrupt file, or a forbidden global.
    """
    path = Path(path)
    if not path.is_file():
        raise Wav2Vec2Error("no such file" if not path.exists() else "not a file", path)
    try:
        obj = torch.load(
            path, map_location="cpu", pickle_module=_restricted_pickle, weights_only=False
        )
    except Exception as exc:  # untrusted bytes: any failure is the file's fault
        forbidden = _find_cause(exc, ForbiddenGlobal)
        if forbidden is not None:
            raise Wav2Vec2Error(
                f"refusing to load: the checkpoint's pickle calls {forbidden.name}, which is "
                "not needed for model weights or configs (the file may be malicious)",
                path,
            ) from None
        # torch's messages run on ("This is an internal miniz error. If you are ..."):
        # the first sentence says what is wrong.
        first = re.split(r"(?<=[.!?])\s", str(exc).strip())[0]
        detail = f"{type(exc).__name__}: {first}"
        if len(detail) > 160:
            detail = detail[:157] + "..."
        raise Wav2Vec2Error(
            f"not a readable PyTorch checkpoint (truncated or corrupt? {detail})", path
        ) from None
    return to_plain(obj)


def _find_cause(exc: BaseException | None, kind: type) -> Any:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# -- stand-ins -> plain data -------------------------------------------------------------------

_OMEGACONF_MISSING = "???"
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def to_plain(obj: Any) -> Any:
    """Stand-ins (omegaconf containers and nodes, enum members, fairseq objects) and
    Namespaces -> plain dicts, lists and values; tensors and plain data are kept."""
    return _Converter().convert(obj)


class _Converter:
    def __init__(self) -> None:
        # id -> converted object: shared references stay shared, cycles terminate.
        self.memo: dict[int, Any] = {}

    def convert(self, obj: Any) -> Any:
        if isinstance(obj, (torch.Tensor, str, bytes, int, float, bool, type(None))):
            return obj
        if id(obj) in self.memo:
            return self.memo[id(obj)]
        if isinstance(obj, argparse.Namespace):
            return self._dict(obj, vars(obj))
        if isinstance(obj, dict):
            return self._dict(obj, obj)
        if isinstance(obj, list):
            out: list = []
            self.memo[id(obj)] = out
            out.extend(self.convert(v) for v in obj)
            return out
        if isinstance(obj, tuple):
            return tuple(self.convert(v) for v in obj)
        if isinstance(obj, StandIn):
            return self._stand_in(obj)
        return obj

    def _dict(self, obj: Any, items: dict) -> dict:
        out: dict = {}
        self.memo[id(obj)] = out
        for k, v in items.items():
            out[k] = self.convert(v)
        return out

    def _stand_in(self, obj: StandIn) -> Any:
        name = obj.pickled_name
        state = obj.state if isinstance(obj.state, dict) else {}
        if name.startswith("omegaconf.") and "_content" in state:
            # DictConfig / ListConfig: {'_metadata', '_parent', '_content'} (2.1+ drops
            # '_flags_cache'). _content is a dict or list of nodes, None, or a string: the
            # "???" marker of a missing value or an interpolation.
            content = state["_content"]
            if isinstance(content, str):
                out = None if content == _OMEGACONF_MISSING else content
            else:
                out = self.convert(content)
            self.memo[id(obj)] = out
            if state.get("_parent") is None and isinstance(out, dict):
                _resolve_interpolations(out, out)
            return out
        if name.startswith("omegaconf.") and "_val" in state:  # AnyNode, IntegerNode, ...
            value = self.convert(state["_val"])
            return None if value == _OMEGACONF_MISSING else value
        if obj.state is None and not obj.items and len(obj.args) == 1:
            return self.convert(obj.args[0])  # an enum member: keep its value
        if state and not obj.args:  # a plain object (a fairseq Dictionary): its attributes
            return self._dict(obj, state)
        if obj.items and not obj.args and obj.state is None:  # a dict subclass
            return self._dict(obj, obj.items)
        return obj  # opaque (numpy scalars, type annotations): harmless, and not needed


def _resolve_interpolations(node: Any, root: dict) -> None:
    """Replace "${a.b}" values by the value at a.b from the root, as omegaconf would (only
    whole-value absolute references; anything else stays as written)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        if isinstance(value, (dict, list)):
            _resolve_interpolations(value, root)
        elif isinstance(value, str):
            node[key] = _lookup(value, root)


def _lookup(value: str, root: dict) -> Any:
    for _ in range(10):  # follow a chain of references, but never loop forever
        m = _INTERPOLATION.match(value)
        if m is None:
            return value
        target: Any = root
        for part in m.group(1).split("."):
            if not isinstance(target, dict) or part not in target:
                return value  # unresolvable: keep the reference as written
            target = target[part]
        if not isinstance(target, str):
            return target
        value = target
    return value
