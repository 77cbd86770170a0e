"""The identity service: one :class:`~pipeline.identity.stage.LinkStep` (tracklets, gallery, linker,
identity record) that every camera worker sends its :class:`~pipeline.identity.updates.TrackletUpdate`
batches to, and that publishes the record's id events.

It checkpoints its whole state every ``checkpoint_s`` seconds (``identity.pkl``, written atomically) and
writes the next tracklet id it would mint (``next_tracklet_id``) whenever it hands out new ones. A service
restarted by Ray resumes from the checkpoint, losing only the updates of the last interval, and never hands
out a tracklet id twice. Ray-free: the engine wraps it in an actor; tests can call it directly.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from configs.schema import LinkingConfig
from pipeline.durable import atomic_open, write_text
from pipeline.identity.record import IdEvent
from pipeline.identity.stage import LinkStep
from pipeline.identity.updates import TrackletUpdate

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "identity.pkl"
NEXT_ID_FILE = "next_tracklet_id"


class IdentityService:
    """See the module docstring. ``checkpoint_dir`` None: no checkpoints (nothing to resume from)."""

    def __init__(
        self, dim: int, camera_ids: Sequence[str], linking: LinkingConfig, checkpoint_dir: str | None = None,
        checkpoint_s: float = 10.0,
    ) -> None:  # fmt: skip
        if checkpoint_s <= 0:
            raise ValueError(f"checkpoint_s: expected seconds > 0, got {checkpoint_s}")
        self.dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_s = float(checkpoint_s)
        self.restored: dict[str, Any] | None = None
        state = self._load()
        if state is None:
            self.link = LinkStep(dim, camera_ids, linking)
            self.counters = {"calls": 0, "updates": 0, "update_bytes": 0, "checkpoints": 0, "restarts": 0}
        else:
            self.link, self.counters = state["link"], state["counters"]
            self.counters["restarts"] += 1
        self._next_id_written = self.link.store.next_id
        if self.dir is not None and state is not None:
            self._skip_handed_out_ids()
        self._last_checkpoint = time.monotonic()

    # ------------------------------------------------------------------ the stream
    def update(self, updates: Sequence[TrackletUpdate]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Add one batch of updates and link; per update, its (tracklet ids, live global ids)."""
        tracklet_ids = self.link(updates)
        out = [(t, self.link.record.global_ids(t)) for t in tracklet_ids]
        self.counters["calls"] += 1
        self.counters["updates"] += len(updates)
        self.counters["update_bytes"] += sum(u.nbytes for u in updates)
        if self.dir is not None:
            self._write_next_id()  # before the ids leave this process
            if time.monotonic() - self._last_checkpoint >= self.checkpoint_s:
                self.checkpoint()
        return out

    def update_batches(self, batches: Sequence[Sequence[TrackletUpdate]]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """:meth:`update` for several batches in one call (a worker sends a group: fewer round trips); each
        batch is linked on its own, as the local engine does."""
        return [self.update(batch) for batch in batches]

    def events_since(self, cursor: int) -> tuple[list[IdEvent], int]:
        """The record's events after the first ``cursor``, and the new cursor. After a restart the record is
        the checkpoint's: a cursor beyond its events starts at its end (the driver's replica then corrects
        what the lost interval had decided, at the end of the run)."""
        return self.link.record.events_since(min(cursor, len(self.link.record.events)))

    def max_track_ids(self) -> dict[str, int]:
        """The largest tracker id each camera has sent (a restarted camera worker numbers its tracks above)."""
        return self.link.store.max_track_ids()

    def pid(self) -> int:
        return os.getpid()

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "tracklets": len(self.link.store), "events": len(self.link.record.events),
                "restored": self.restored}  # fmt: skip

    # ------------------------------------------------------------------ the end
    def conclude(self, offline: bool) -> dict[str, Any]:
        """:meth:`LinkStep.conclude` (final ids written into the record, so their events follow)."""
        return self.link.conclude(offline)

    def gallery_file(self) -> bytes:
        """The gallery as the bytes of a ``gallery.npz`` (the driver writes it into the run folder)."""
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gallery-{os.getpid()}-{time.monotonic_ns()}.npz"
        try:
            self.link.save_gallery(path)
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> None:
        """Write the whole state now (atomically)."""
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.counters["checkpoints"] += 1
        state = {"link": self.link, "counters": self.counters, "time": time.time()}
        with atomic_open(self.dir / CHECKPOINT_FILE, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._last_checkpoint = time.monotonic()

    def _load(self) -> dict[str, Any] | None:
        path = None if self.dir is None else self.dir / CHECKPOINT_FILE
        if path is None or not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                state = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.error("identity service: checkpoint %s unreadable (%s); starting empty", path, exc)
            return None
        age = time.time() - state["time"]
        self.restored = {"checkpoint": str(path), "age_s": round(age, 3), "tracklets": len(state["link"].store)}
        log.warning("identity service restarted: resumed from its checkpoint of %.1f s ago (%d tracklets)",
                    age, len(state["link"].store))  # fmt: skip
        return state

    def _write_next_id(self) -> None:
        next_id = self.link.store.next_id
        if next_id > self._next_id_written:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_text(self.dir / NEXT_ID_FILE, str(next_id))
            self._next_id_written = next_id

    def _skip_handed_out_ids(self) -> None:
        try:
            handed_out = int((self.dir / NEXT_ID_FILE).read_text())
        except (OSError, ValueError):
            return
        self.link.store.skip_to(handed_out)
        self._next_id_written = max(self._next_id_written, handed_out)
