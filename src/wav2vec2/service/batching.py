"""Dynamic batching over a bounded queue: requests that arrive together run together.

Every request's audio goes into one queue. One worker takes the first waiting request,
gathers what else arrives within ``wait`` seconds (up to ``max_batch``), and runs them in
one engine call on the engine's own thread (the engine sorts them by length into padded
batches itself). ``capacity`` requests may wait beyond those the worker is about to take
(the free places of the batch it gathers; none while a batch runs); one more is refused at
once (:class:`QueueFull`, answered 503). Memory holds at most ``capacity + max_batch``
requests' audio, however many clients there are.

All model work, the live streams' included (:meth:`Batcher.call`), runs on that one
thread, one call at a time: the model is never run from two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from wav2vec2.inference import Transcript


class QueueFull(Exception):
    """The queue holds ``capacity`` requests already."""


@dataclass
class _Job:
    audio: np.ndarray  # 16 kHz mono float32
    future: asyncio.Future


class Batcher:
    def __init__(
        self,
        run: Callable[[Sequence[np.ndarray]], list[Transcript]],
        capacity: int,
        max_batch: int,
        wait: float,
    ):
        """``run``: transcripts of a list of arrays, one per array, in order."""
        self._run = run
        self.capacity = capacity
        self.max_batch = max_batch
        self.wait = wait
        self._queue: asyncio.Queue[_Job] | None = None  # bounded by ``full``, not by itself
        self._taking = 0  # places left in the batch the worker is gathering (0 while it runs)
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.batches_run = 0  # engine calls made for requests, for /health and the tests
        self.largest_batch = 0

    @property
    def waiting(self) -> int:
        """Requests queued beyond those the worker is about to take."""
        return 0 if self._queue is None else max(0, self._queue.qsize() - self._taking)

    @property
    def full(self) -> bool:
        return self.waiting >= self.capacity

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._serve(), name="batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def submit(self, audio: np.ndarray) -> Transcript:
        """The transcript of ``audio``; QueueFull at once if ``capacity`` requests wait."""
        assert self._queue is not None, "start() the batcher first"
        if self.full:
            raise QueueFull
        job = _Job(audio, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def call(self, fn: Callable, *args):
        """``fn(*args)`` on the engine's thread, after the work already handed to it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _serve(self) -> None:
        assert self._queue is not None
        while True:
            self._taking = self.max_batch
            batch = await self._gather()
            self._taking = 0
            batch = [job for job in batch if not job.future.done()]  # its client has gone
            if not batch:
                continue
            self.batches_run += 1
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                results = await self.call(self._run, [job.audio for job in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    async def _gather(self) -> list[_Job]:
        """The first waiting job, and those that arrive within ``wait`` of it."""
        assert self._queue is not None
        batch = [await self._queue.get()]
        self._taking -= 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                self._taking -= 1
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
                self._taking -= 1
            except TimeoutError:
                break
        return batch
