"""PK batch samplers over pseudo labels: P identities x K instances per batch, seeded and deterministic.

The labels are the trainer's pseudo labels (cluster ids); -1 marks an outlier, which is never sampled.
Each batch picks P distinct identities, favouring those with more not-yet-sampled instances so an epoch
sweeps the data, and K instances of each (with repetition only when an identity has fewer than K).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[int]):
    """Yields flat indices, ``num_batches`` batches of ``p * k``; use ``DataLoader(batch_size=p * k)``.

    Args:
        labels: (N,) int pseudo labels; -1 = outlier, skipped.
        p: identities per batch.
        k: instances per identity.
        seed: base seed; the epoch (``set_epoch``) is mixed in, so each epoch differs but is reproducible.
        num_batches: batches per epoch; default: labelled samples // (p * k), at least 1.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        p: int = 16,
        k: int = 4,
        seed: int = 0,
        num_batches: int | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels: expected (N,) integers, got {labels.dtype} {labels.shape}")
        if p < 1 or k < 1:
            raise ValueError(f"PK sampler: expected p >= 1 and k >= 1, got p={p}, k={k}")
        valid = np.flatnonzero(labels >= 0)
        ids, inverse = np.unique(labels[valid], return_inverse=True)
        if len(ids) < p:
            raise ValueError(f"PK sampler: expected at least p={p} identities with label >= 0, got {len(ids)}")
        order = np.argsort(inverse, kind="stable")
        self.groups = np.split(valid[order], np.cumsum(np.bincount(inverse))[:-1])
        self.labels = labels
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_batches = num_batches if num_batches is not None else max(1, len(valid) // (p * k))
        if self.num_batches < 1:
            raise ValueError(f"num_batches: expected >= 1, got {self.num_batches}")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (call before iterating, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.p * self.k

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = [rng.permutation(g) for g in self.groups]
        pointers = np.zeros(len(self.groups), dtype=np.int64)
        sizes = np.array([len(g) for g in self.groups], dtype=np.float64)
        for _ in range(self.num_batches):
            remaining = np.clip(sizes - pointers, 0, None)
            weights = remaining / remaining.sum() if np.count_nonzero(remaining) >= self.p else None
            for g in rng.choice(len(self.groups), size=self.p, replace=False, p=weights):
                yield from (int(i) for i in self._pick(rng, int(g), queues, pointers))

    def _next(self, rng: np.random.Generator, g: int, queues: list[np.ndarray], pointers: np.ndarray, n: int) -> list:
        """The next ``n`` indices of identity ``g``'s shuffled queue, reshuffling when it runs out."""
        out: list[int] = []
        while len(out) < n:
            if pointers[g] >= len(queues[g]):
                queues[g] = rng.permutation(self.groups[g])
                pointers[g] = 0
            take = min(n - len(out), len(queues[g]) - int(pointers[g]))
            out.extend(queues[g][pointers[g] : pointers[g] + take].tolist())
            pointers[g] += take
        return out

    def _pick(self, rng: np.random.Generator, g: int, queues: list[np.ndarray], pointers: np.ndarray) -> list:
        """K instances of identity ``g``."""
        return self._next(rng, g, queues, pointers, self.k)


class CameraAwarePKSampler(PKSampler):
    """PK sampler whose K instances are an anchor plus positives preferably from other cameras.

    Args:
        labels, p, k, seed, num_batches: as :class:`PKSampler`.
        camids: (N,) int camera index of each sample.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        camids: Sequence[int] | np.ndarray,
        p: int = 16,
        k: int = 4,
        seed: int = 0,
        num_batches: int | None = None,
    ) -> None:
        super().__init__(labels, p=p, k=k, seed=seed, num_batches=num_batches)
        self.camids = np.asarray(camids)
        if self.camids.shape != self.labels.shape:
            raise ValueError(f"camids: expected shape {self.labels.shape}, got {self.camids.shape}")

    def _pick(self, rng: np.random.Generator, g: int, queues: list[np.ndarray], pointers: np.ndarray) -> list:
        anchor = self._next(rng, g, queues, pointers, 1)[0]
        members = self.groups[g]
        others = rng.permutation(members[members != anchor])
        cross = self.camids[others] != self.camids[anchor]
        ranked = np.concatenate([others[cross], others[~cross]])[: self.k - 1]
        if len(ranked) < self.k - 1:  # too few instances: repeat some
            ranked = np.concatenate([ranked, rng.choice(members, size=self.k - 1 - len(ranked))])
        return [anchor, *ranked.tolist()]
