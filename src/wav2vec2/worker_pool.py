"""A function over many items in forked worker processes, results in input order.

What it is for: lexicon beam search. flashlight runs the search in C++, but it asks our
KenLM adapters (:mod:`wav2vec2.lm_scoring`) for every word score, which is Python and
holds the GIL, so threads cannot share the work; processes can. The workers are forked
once the function exists (a decoder with its loaded KenLM model and trie), so nothing of
it is pickled or loaded again: only the items (an input's emissions) and the results
(its transcript) cross between processes.

A worker that dies (killed, out of memory) ends the call with a one-line error, never a
hang; an exception raised by the function in a worker is raised in the caller as it is.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import torch

from wav2vec2.errors import Wav2Vec2Error

T = TypeVar("T")
R = TypeVar("R")

_work: Callable | None = None  # the function, in a worker (set by the fork's initializer)


def _start(fn: Callable) -> None:
    global _work
    _work = fn
    # One thread per worker: the workers are the parallelism, and a forked child must not
    # enter the OpenMP pool its parent's threads left behind (as DataLoader's workers do).
    torch.set_num_threads(1)


def _run(item):
    return _work(item)


def check_workers(workers: int) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise Wav2Vec2Error(f"decode workers must be a whole number of at least 1, got {workers!r}")
    return workers


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for each item, in order. With ``workers`` > 1, in that many forked
    processes, at most two items per worker in flight (items are drawn from ``items`` as
    results come back: a generator keeps streaming); with 1, in this process."""
    check_workers(workers)
    if workers == 1:
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(fn,))
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(_run, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise Wav2Vec2Error(
            "a decoding worker process died (killed, or out of memory); "
            "run again with fewer decode workers"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
