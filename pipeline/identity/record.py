"""The identity record: the one owner of tracklet id → global id, and the events that change it.

The identity stage owns one :class:`IdentityRecord`; its linker writes decisions into it (join, leave,
retire) and every other part of a run reads global ids from it: the per-frame output columns, the final
rewrite of ``tracks.csv`` / ``crops/manifest.csv`` / ``tracklets.npz`` (a lookup by tracklet id) and the
distributed engine's sinks, which receive its :class:`IdEvent` stream instead of frames.

An event ``(tracklet_id, global_id, time)`` is published for every net change between two
:meth:`IdentityRecord.publish` calls (a tracklet that leaves one identity and joins another within one
linking step gives one event; ``global_id`` -1 means it is unlinked again). ``time`` is the stream time
(seconds on the cameras' shared clock) of the step that decided it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

UNLINKED = -1
T = TypeVar("T", bound=Any)


@dataclass(frozen=True)
class IdEvent:
    """Tracklet ``tracklet_id`` has global id ``global_id`` (-1: none) from stream time ``time`` on."""

    tracklet_id: int
    global_id: int
    time: float

    def as_row(self) -> tuple[int, int, float]:
        return self.tracklet_id, self.global_id, self.time


class IdentityRecord:
    """tracklet id → global id, each identity's members in join order, and the published events."""

    def __init__(self) -> None:
        self._gid: dict[int, int] = {}  # tracklet id -> global id (assigned tracklets only)
        self._members: dict[int, list[int]] = {}  # live identity -> its tracklet ids, in join order
        self._published: dict[int, int] = {}  # tracklet id -> global id of its last event
        self._dirty: set[int] = set()
        self.events: list[IdEvent] = []

    def __len__(self) -> int:
        """How many tracklets have a global id."""
        return len(self._gid)

    def __contains__(self, tracklet_id: object) -> bool:
        return tracklet_id in self._gid

    # ------------------------------------------------------------------ reads
    def global_id(self, tracklet_id: int) -> int | None:
        """The global id of ``tracklet_id``, None when it has none."""
        return self._gid.get(tracklet_id)

    def global_ids(self, tracklet_ids: np.ndarray | Iterable[int]) -> np.ndarray:
        """(N,) int64 global ids of ``tracklet_ids`` (-1 for none, and for ids < 0)."""
        get = self._gid.get
        return np.fromiter((get(int(t), UNLINKED) for t in np.asarray(tracklet_ids).reshape(-1)), np.int64)

    def members(self, global_id: int) -> list[int]:
        """Tracklet ids of the live identity ``global_id``, in join order (empty when it has none)."""
        return list(self._members.get(global_id, ()))

    def is_live(self, global_id: int) -> bool:
        """Whether ``global_id`` has members in this record (not retired, not emptied)."""
        return global_id in self._members

    def label(self, tracklets: Iterable[T]) -> list[T]:
        """Copies of ``tracklets`` (:class:`~pipeline.identity.tracklets.Tracklet` snapshots) with ``global_id`` set
        from this record (-1 for none)."""
        get = self._gid.get
        return [replace(t, global_id=get(t.tracklet_id, UNLINKED)) for t in tracklets]

    def mapping(self) -> dict[int, int]:
        """{tracklet id: global id} of every assigned tracklet."""
        return dict(self._gid)

    # ------------------------------------------------------------------ writes (the linker's decisions)
    def join(self, tracklet_id: int, global_id: int) -> None:
        """Put ``tracklet_id`` in ``global_id`` (leaving the identity it was in)."""
        if global_id < 0:
            raise ValueError(f"global_id: expected an id >= 0 (use leave to unlink), got {global_id}")
        self.leave(tracklet_id)
        self._gid[tracklet_id] = global_id
        self._members.setdefault(global_id, []).append(tracklet_id)
        self._dirty.add(tracklet_id)

    def leave(self, tracklet_id: int) -> list[int]:
        """Unlink ``tracklet_id``; return the members its identity still has."""
        gid = self._gid.pop(tracklet_id, None)
        if gid is None:
            return []
        self._dirty.add(tracklet_id)
        members = self._members.get(gid)
        if members is None:  # its identity was retired
            return []
        if tracklet_id in members:
            members.remove(tracklet_id)
        if not members:
            del self._members[gid]
        return list(members)

    def retire(self, global_id: int) -> list[int]:
        """Stop counting ``global_id`` as live (it expired from the gallery); its tracklets keep the id.
        Return the members it had."""
        return self._members.pop(global_id, [])

    def assign_all(self, mapping: Mapping[int, int]) -> None:
        """Replace every assignment with ``mapping`` (offline re-clustering's final ids; -1 = unlinked)."""
        for tid in list(self._gid):
            if mapping.get(tid, UNLINKED) < 0:
                self.leave(tid)
        for tid, gid in mapping.items():
            if gid >= 0 and self._gid.get(tid) != gid:
                self.join(int(tid), int(gid))

    # ------------------------------------------------------------------ events
    def publish(self, time: float) -> list[IdEvent]:
        """Events for the net changes since the last call, stamped ``time``; also appended to ``events``."""
        out = []
        for tid in sorted(self._dirty):
            gid = self._gid.get(tid, UNLINKED)
            if self._published.get(tid, UNLINKED) != gid:
                self._published[tid] = gid
                out.append(IdEvent(tid, gid, float(time)))
        self._dirty.clear()
        self.events.extend(out)
        return out

    def events_since(self, cursor: int) -> tuple[list[IdEvent], int]:
        """The events after the first ``cursor`` ones, and the new cursor (for a sink that polls)."""
        return self.events[cursor:], len(self.events)

    def apply(self, events: Iterable[IdEvent]) -> None:
        """Replay ``events`` (a copy of another record, e.g. a sink's view of the identity service)."""
        events = list(events)
        for e in events:
            if e.global_id < 0:
                self.leave(e.tracklet_id)
            elif self._gid.get(e.tracklet_id) != e.global_id:
                self.join(e.tracklet_id, e.global_id)
        if events:
            self.publish(events[-1].time)
