"""A tensor derived from parameters, computed once for as long as they do not change.

Inference computes some weights from others every forward: weight norm's g * v / ||v||, the
attention's q/k/v weights stacked into one matrix. Without gradients they can be kept. The
key is each parameter's storage, version counter, dtype and device, so loading weights,
an optimizer step (both in place) or moving the model recomputes the tensor. A write that
leaves the version counter as it was (``p.data`` ops, torch's fused AdamW kernel) must bump
it (``torch.autograd.graph.increment_version``), as the trainer does after each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from torch import nn

T = TypeVar("T")


class WeightCache(Generic[T]):
    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: T | None = None

    def get(self, params: Iterable[nn.Parameter], compute: Callable[[], T]) -> T:
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        if self._value is None or key != self._key:
            self._key, self._value = key, compute()
        return self._value
