"""Length-bucketed, token-capped batches, shuffled per epoch and sharded across ranks.

Batching follows fairseq's ``ordered_indices`` + ``batch_by_size``: indices are sorted by
size, longest first (ties in a seeded random order), and cut greedily into batches such that
``batch_size * longest_in_batch <= max_tokens``, where an item counts
``min(size, max_sample_size)`` samples because pretraining crops it to that. Neighbours in
size share a batch, so cropping to the shortest (or padding to the longest) wastes little.

Each epoch reorders the *batches* from ``(seed, epoch)``. Global batch ``g`` goes to rank
``g % W`` at position ``g // W``; the tail that does not divide by ``W`` is dropped so every
rank runs the same number of steps (a rank with one batch fewer would hang DDP's all-reduce).

Resuming: the trainer calls :meth:`BucketBatchSampler.advance` after each batch it consumes
(the DataLoader prefetches, so the sampler cannot count for itself), saves
:meth:`~BucketBatchSampler.state_dict` in the checkpoint, and after
:meth:`~BucketBatchSampler.load_state_dict` the next ``iter()`` yields exactly the batches that
were not consumed, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from wav2vec2.errors import Wav2Vec2Error


class BucketBatchSampler:
    """Yields lists of dataset indices, one list per batch, for one rank.

    Args:
        sizes: length of each item in samples (``AudioDataset.sizes``).
        max_tokens: cap on ``batch_size * longest item`` in samples (fairseq ``max_tokens``).
        max_sample_size: items longer than this count as this long (they are cropped);
            ``None`` for fine-tuning, where nothing is cropped.
        seed: with the epoch, fixes tie order and batch order.
        shuffle: ``False`` keeps sorted order and batch order fixed (validation).
        num_replicas, rank: data-parallel world size and this process's rank.
        required_batch_multiple: batch sizes are cut to a multiple of this where possible
            (fairseq ``required_batch_size_multiple``).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        max_tokens: int,
        max_sample_size: int | None,
        seed: int,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        required_batch_multiple: int = 1,
    ) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if required_batch_multiple < 1:
            raise ValueError("required_batch_multiple must be at least 1")
        tokens = np.asarray(sizes, dtype=np.int64)
        if max_sample_size is not None:
            tokens = np.minimum(tokens, max_sample_size)
        too_long = np.flatnonzero(tokens > max_tokens)
        if too_long.size:
            i = int(too_long[0])
            raise Wav2Vec2Error(
                f"{too_long.size} item(s) do not fit in max_tokens={max_tokens} "
                f"(item {i} has {int(tokens[i])} samples); raise max_tokens or set a smaller "
                "max_sample_size"
            )
        self.tokens = tokens  # (N,) samples each item counts for
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.required_batch_multiple = required_batch_multiple
        self.epoch = 0
        self.position = 0  # batches of this epoch consumed by this rank
        # Batch boundaries depend only on the sorted sizes, which are the same every epoch,
        # so the count is fixed; only which tied items share a batch, and the order, change.
        self._cache: tuple[int, list[list[int]]] | None = None
        self.num_batches = len(self._global_batches()) // num_replicas

    # -- the epoch's batches -----------------------------------------------------------------
    def _global_batches(self) -> list[list[int]]:
        """All batches of the current epoch, in the order ranks take them round-robin."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        n = len(self.tokens)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            # lexsort: last key is primary; descending size, ties in random order
            order = np.lexsort((rng.permutation(n), self.tokens))[::-1]
        else:
            order = np.argsort(-self.tokens, kind="stable")
            rng = None
        batches = _batch_by_size(order, self.tokens, self.max_tokens, self.required_batch_multiple)
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (self.epoch, batches)
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; the position restarts at 0 only when the epoch changes, so calling
        ``set_epoch(e)`` after resuming into epoch ``e`` keeps the restored position."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0

    def global_batch_index(self, position: int) -> int:
        """Index in the epoch's global batch order of this rank's batch at ``position``.

        Batch ``k * W + r`` is what rank ``r`` of ``W`` runs at update ``k``, and what a single
        process with ``update_freq=W`` runs as micro-batch ``r`` of update ``k``: seed per-batch
        randomness (masks, negatives) from this and the two setups train identically.
        """
        return position * self.num_replicas + self.rank

    def batches(self) -> list[list[int]]:
        """This rank's batches for the whole current epoch (position ignored)."""
        glob = self._global_batches()
        return [glob[self.global_batch_index(p)] for p in range(self.num_batches)]

    def __iter__(self) -> Iterator[list[int]]:
        """This rank's batches from the saved position to the end of the epoch.

        Iterating does not move the position; :meth:`advance` does.
        """
        glob = self._global_batches()
        for p in range(self.position, self.num_batches):
            yield list(glob[self.global_batch_index(p)])

    def __len__(self) -> int:
        """Batches that the next ``iter()`` yields: the rest of this epoch."""
        return self.num_batches - self.position

    # -- position and checkpoints -------------------------------------------------------------
    def advance(self, n: int = 1) -> None:
        """Record that ``n`` more batches of this epoch were consumed."""
        if n < 0 or self.position + n > self.num_batches:
            raise ValueError(
                f"cannot advance by {n} from position {self.position} of {self.num_batches}"
            )
        self.position += n

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "position"}``: JSON-serializable, saved in checkpoints."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position <= self.num_batches:
            raise ValueError(
                f"sampler state {state} does not fit this data ({self.num_batches} batches "
                "per epoch per rank); were the manifest, max_tokens or world size changed?"
            )
        self.epoch, self.position = epoch, position


def _batch_by_size(
    order: np.ndarray, tokens: np.ndarray, max_tokens: int, multiple: int
) -> list[list[int]]:
    """fairseq's greedy ``batch_by_size``: add items in ``order`` while
    ``(len + 1) * longest <= max_tokens``; on overflow emit the largest multiple of
    ``multiple`` (or the remainder when smaller) and carry the rest into the next batch."""
    batches: list[list[int]] = []
    batch: list[int] = []
    lens: list[int] = []
    longest = 0
    for idx in order.tolist():
        n = int(tokens[idx])
        longest = max(longest, n)
        if batch and (len(batch) + 1) * longest > max_tokens:
            cut = max(multiple * (len(batch) // multiple), len(batch) % multiple)
            batches.append(batch[:cut])
            batch, lens = batch[cut:], lens[cut:]
            longest = max(lens + [n])
        batch.append(idx)
        lens.append(n)
    if batch:
        batches.append(batch)
    return batches
