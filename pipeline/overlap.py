"""Run a batch stage on one worker thread, one batch behind the caller, so it overlaps the next detection.

The identity stage (crop, embed, link) of batch k runs while the main thread decodes, detects and tracks
batch k+1: the ReID runtime (OpenVINO, onnxruntime, torch) and the detector release the GIL while they
compute, so the cores the detector leaves idle between its calls (pre/post-processing, tracking, sinks) embed
instead. Batches go through the stage strictly in order on a single thread, so its results, and so every
id, are those of calling it inline. :class:`BatchGroups` holds consecutive batches until they make one group
of a few camera frames, so the stage can embed their crops in one call (``embed.group_frames``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

Batch = TypeVar("Batch")
Stage = Callable[[Any, Any], Any]


class OverlappedStage(Generic[Batch]):
    """``stage(batch, tracked) -> result`` called in order, up to ``depth`` batches behind :meth:`submit`.

    ``depth`` 0 calls the stage inline (no thread). :meth:`submit` returns the ``(batch, result)`` pairs
    that are done, oldest first, waiting only when more than ``depth`` are in flight; :meth:`drain` waits
    for the rest. ``seconds`` adds up the time spent inside the stage; ``waited`` the time the caller
    waited for it. An exception raised by the stage is raised again by the call that collects its batch.
    """

    def __init__(self, stage: Stage, depth: int = 1) -> None:
        if depth < 0:
            raise ValueError(f"depth: expected an int >= 0, got {depth}")
        self.stage, self.depth = stage, depth
        self.seconds = 0.0
        self.waited = 0.0
        self._pending: deque[tuple[Batch, Future]] = deque()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="identity") if depth > 0 else None

    def _timed(self, batch: Batch, tracked: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.stage(batch, tracked)
        finally:
            self.seconds += time.perf_counter() - start  # only the worker thread writes it

    def submit(self, batch: Batch, tracked: Any) -> list[tuple[Batch, Any]]:
        """Hand ``batch`` to the stage; return the finished ``(batch, result)`` pairs, oldest first."""
        if self._pool is None:
            return [(batch, self._timed(batch, tracked))]
        self._pending.append((batch, self._pool.submit(self._timed, batch, tracked)))
        done = []
        while self._pending and (len(self._pending) > self.depth or self._pending[0][1].done()):
            done.append(self._collect())
        return done

    def drain(self) -> list[tuple[Batch, Any]]:
        """Wait for every batch in flight; return their ``(batch, result)`` pairs in order."""
        return [self._collect() for _ in range(len(self._pending))]

    def close(self) -> None:
        """Stop the worker after the batches in flight (their results are dropped unless drained)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def _collect(self) -> tuple[Batch, Any]:
        batch, future = self._pending.popleft()
        start = time.perf_counter()
        try:
            return batch, future.result()
        finally:
            self.waited += time.perf_counter() - start


class BatchGroups:
    """Consecutive ``(batch, tracked)`` pairs held until together they hold ``frames`` camera frames.

    :meth:`add` returns ``(batches, tracked)`` lists once the group is full, or once its first batch has
    been held ``max_hold_s`` seconds (``clock``; None: no time limit; live cameras use one, so their ids
    never wait long), else None; :meth:`flush` returns what is held (None when nothing is). ``frames`` 1
    passes every batch straight on.
    """

    def __init__(
        self, frames: int = 1, max_hold_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if frames < 1:
            raise ValueError(f"frames: expected an int >= 1, got {frames}")
        if max_hold_s is not None and max_hold_s < 0:
            raise ValueError(f"max_hold_s: expected None or seconds >= 0, got {max_hold_s}")
        self.frames, self.max_hold_s, self.clock = frames, max_hold_s, clock
        self._batches: list[Any] = []
        self._tracked: list[Any] = []
        self._held = 0
        self._since = 0.0

    def add(self, batch: Any, tracked: Any) -> tuple[list[Any], list[Any]] | None:
        if not self._batches:
            self._since = self.clock()
        self._batches.append(batch)
        self._tracked.append(tracked)
        self._held += len(batch)
        late = self.max_hold_s is not None and self.clock() - self._since >= self.max_hold_s
        return self.flush() if self._held >= self.frames or late else None

    def flush(self) -> tuple[list[Any], list[Any]] | None:
        if not self._batches:
            return None
        group = (self._batches, self._tracked)
        self._batches, self._tracked, self._held = [], [], 0
        return group


def ungrouped(done: list[tuple[list[Any], list[Any]]]) -> list[tuple[Any, Any]]:
    """``(batches, results)`` pairs of a stage run on groups -> ``(batch, result)`` pairs, in order."""
    return [pair for batches, results in done for pair in zip(batches, results)]
