"""The shared gallery of global identities, each with several prototype embeddings, searched with faiss.

Design:
- Every prototype is one row of a master array (``vector id`` = row); the faiss index is a cache built
  from it. Removing or replacing prototypes marks rows dead (owner -1) instead of touching the index,
  so removal costs O(1) on CPU and GPU alike; searches over-fetch and drop dead rows, and once dead
  rows exceed a third of the live ones the arrays are compacted and the index rebuilt. The master copy
  doubles memory (4 KB a 512-d prototype in all, 2 KB each) in exchange for cheap updates and exact saves.
- Index: ``IndexFlatIP`` below ``ivf_threshold`` live prototypes, ``IndexIVFFlat`` (inner product,
  nlist ~ 4 sqrt(n), retrained when the gallery has grown 4x) above it; ``index="flat"|"ivf"`` forces
  one (IVF needs 16 vectors a list to train: flat until then). GPU copies when faiss sees a GPU.
  New rows reach the index at the next search. Training k-means (switching to IVF, or after 4x growth)
  holds the lock: on CPU a pause of seconds at 100k prototypes, minutes at 1M.
- Global ids increase monotonically and are never reused (not after removal, expiry, eviction or a
  save/load round trip).
- Thread-safe: one re-entrant lock around every mutation and search.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from configs.device import resolve_device
from pipeline.durable import atomic_open

logger = logging.getLogger(__name__)

METRICS = ("cosine", "ip")
INDEX_KINDS = ("auto", "flat", "ivf")
FULL_POLICIES = ("evict_oldest", "raise")
_GPU_MAX_K = 2048  # faiss GPU search refuses larger k
_FORMAT = "mcpa-gallery-1"
FIRST_ID = 1  # global ids start at 1, like MOTChallenge ids; -1 means "no global id"
_TRAIN_POINTS_PER_LIST = 20  # k-means sample per IVF list: enough for recall, half faiss' default cost
_MIN_POINTS_PER_LIST = 16  # fewer vectors than this per list: stay flat


class GalleryFullError(RuntimeError):
    """Raised by ``add_identity`` when ``max_identities`` is reached and ``on_full="raise"``."""


@dataclass
class IdentityInfo:
    """What the gallery knows about one identity besides its prototypes."""

    global_id: int
    cameras: list[str]
    first_seen: float
    last_seen: float
    last_camera: str
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def n_prototypes(self) -> int:
        return len(self.rows)


def default_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: about 4 sqrt(n), at least 16."""
    return max(16, round(4 * math.sqrt(max(n, 1))))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/32 of the lists, at least 16 (recall@1 >= 0.99 on clustered data)."""
    return min(nlist, max(16, nlist // 32))


class Gallery:
    """Global identities with prototype embeddings; see the module docstring for the design.

    Args:
        dim: embedding dimension D. metric: "cosine" (vectors normalised on the way in) or "ip".
        index: "auto", "flat" or "ivf". nlist, nprobe: IVF parameters (None = automatic).
        device: "auto" (GPU when ``faiss.get_num_gpus() > 0``), "cpu", "cuda" or "cuda:N".
        max_identities: capacity; at capacity ``on_full`` decides: "evict_oldest" removes the identity
            seen least recently (logged), "raise" raises GalleryFullError.
        expiry_s: :meth:`expire` removes identities unseen for longer than this (None = never).
        ivf_threshold: live prototypes from which "auto" switches to IVF.
        max_prototypes: most prototypes one identity keeps (the oldest go first on append).
    """

    def __init__(
        self,
        dim: int,
        metric: str = "cosine",
        index: str = "auto",
        nlist: int | None = None,
        nprobe: int | None = None,
        device: str = "auto",
        max_identities: int | None = None,
        expiry_s: float | None = None,
        *,
        ivf_threshold: int = 50_000,
        max_prototypes: int = 32,
        on_full: str = "evict_oldest",
    ) -> None:
        choices = {
            "metric": (metric, METRICS),
            "index": (index, INDEX_KINDS),
            "on_full": (on_full, FULL_POLICIES),
        }
        counts = {"nlist": nlist, "nprobe": nprobe, "max_identities": max_identities, "expiry_s": expiry_s}
        _check_options(dim, choices, {**counts, "max_prototypes": max_prototypes, "ivf_threshold": ivf_threshold})
        self.dim, self.metric, self.index_kind = int(dim), metric, index
        self.nlist, self.nprobe = nlist, nprobe
        self.max_identities, self.expiry_s, self.on_full = max_identities, expiry_s, on_full
        self.ivf_threshold, self.max_prototypes = ivf_threshold, max_prototypes
        self.device = resolve_device(device, gpus=_faiss_gpus, runtime="faiss", indexed=True)
        self._gpu_resources = None
        self._lock = threading.RLock()
        self._reset_state(next_id=FIRST_ID)

    # ------------------------------------------------------------------ state
    def __getstate__(self) -> dict[str, Any]:
        """Picklable (a checkpoint of the identity service): everything but the lock and the faiss index,
        which is rebuilt from the vectors when unpickled."""
        with self._lock:
            state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_index", "_gpu_resources")}
            state["_vectors"] = self._vectors[: self._n_rows].copy()
            state["_owner"] = self._owner[: self._n_rows].copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._index, self._gpu_resources = threading.RLock(), None, None
        spare = max(1024, len(self._vectors))  # room to append again
        self._vectors = np.concatenate([self._vectors, np.zeros((spare, self.dim), np.float32)])
        self._owner = np.concatenate([self._owner, np.full(spare, -1, np.int64)])
        self._index_rows = 0
        if self._built_kind == "ivf":
            self._rebuild("ivf", retrain=True)

    def _reset_state(self, next_id: int) -> None:
        self._vectors = np.zeros((1024, self.dim), dtype=np.float32)
        self._owner = np.full(1024, -1, dtype=np.int64)
        self._n_rows = 0
        self._n_dead = 0
        self._identities: dict[int, IdentityInfo] = {}
        self._next_id = next_id
        self._index = None
        self._built_kind = "flat"
        self._trained_at = 0
        self._nlist = 0
        self._most_protos = 1  # an upper bound of any identity's prototype count (sizes the over-fetch)
        self._index_rows = 0  # rows [0, _index_rows) are in the index

    def __len__(self) -> int:
        with self._lock:
            return len(self._identities)

    def __contains__(self, global_id: object) -> bool:
        with self._lock:
            return global_id in self._identities

    @property
    def next_id(self) -> int:
        """The id the next new identity will get."""
        return self._next_id

    @property
    def n_prototypes(self) -> int:
        """Live prototypes over all identities."""
        with self._lock:
            return self._n_rows - self._n_dead

    @property
    def built_kind(self) -> str:
        """The index kind in use now: "flat" or "ivf"."""
        return self._built_kind

    def memory_bytes(self) -> int:
        """Bytes held: the master arrays plus the faiss index (vectors, ids, IVF centroids)."""
        with self._lock:
            index = self._index_rows * self.dim * 4
            if self._built_kind == "ivf":
                index += self._index_rows * 8 + self._nlist * self.dim * 4
            return int(self._vectors.nbytes + self._owner.nbytes + index)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._identities)

    def info(self, global_id: int) -> IdentityInfo:
        """A copy of an identity's record; KeyError when unknown."""
        with self._lock:
            rec = self._get(global_id)
            return replace(rec, cameras=list(rec.cameras), rows=rec.rows.copy())

    def prototypes(self, global_id: int) -> np.ndarray:
        """(k, D) float32 copy of an identity's prototypes; KeyError when unknown."""
        with self._lock:
            return self._vectors[self._get(global_id).rows].copy()

    def _get(self, global_id: int) -> IdentityInfo:
        rec = self._identities.get(int(global_id))
        if rec is None:
            raise KeyError(f"global id {global_id} is not in the gallery (removed, expired or never added)")
        return rec

    # ------------------------------------------------------------------ mutations
    def add_identity(self, prototypes: np.ndarray, camera_id: str, timestamp: float) -> int:
        """Create an identity from (k, D) prototypes seen in ``camera_id`` at ``timestamp``; return its id."""
        return int(self.add_identities(prototypes, None, camera_id, timestamp)[0])

    def add_identities(
        self, prototypes: np.ndarray, groups: np.ndarray | None, camera_id: str, timestamp: float
    ) -> np.ndarray:
        """Bulk add: rows of (n, D) ``prototypes`` sharing a ``groups`` label (n,) become one identity.

        ``groups`` None makes all rows one identity. Returns the new ids (G,) int64 in group-label order.
        """
        vecs = self._prepare(prototypes, "prototypes")
        labels = np.zeros(len(vecs), np.int64) if groups is None else np.asarray(groups).reshape(-1)
        if labels.shape != (len(vecs),):
            raise ValueError(f"groups: expected ({len(vecs)},), got {labels.shape}")
        uniq, inverse = np.unique(labels, return_inverse=True)
        with self._lock:
            self._make_room(len(uniq))
            ids = np.arange(self._next_id, self._next_id + len(uniq), dtype=np.int64)
            self._next_id += len(uniq)
            order = np.argsort(inverse, kind="stable")
            in_order = bool((order == np.arange(len(order))).all())
            rows = self._append(vecs if in_order else vecs[order], ids[inverse[order]])
            bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
            t = float(timestamp)
            for g, gid in enumerate(ids.tolist()):
                self._identities[gid] = IdentityInfo(gid, [camera_id], t, t, camera_id, rows[bounds[g] : bounds[g + 1]])
            self._most_protos = max(self._most_protos, int(np.diff(bounds).max()))
            self._maybe_rebuild()
            return ids

    def update(
        self,
        global_id: int,
        prototypes: np.ndarray | None,
        camera_id: str,
        timestamp: float,
        mode: str = "replace",
    ) -> None:
        """Refresh an identity seen in ``camera_id`` at ``timestamp``.

        ``mode="replace"``: (k, D) ``prototypes`` become its whole prototype set; "append": they are added
        (keeping the newest ``max_prototypes``). ``prototypes`` None only records the sighting.
        """
        if mode not in ("replace", "append"):
            raise ValueError(f"mode: expected 'replace' or 'append', got {mode!r}")
        vecs = None if prototypes is None else self._prepare(prototypes, "prototypes")
        with self._lock:
            rec = self._get(global_id)
            if camera_id not in rec.cameras:
                rec.cameras.append(camera_id)
            if timestamp >= rec.last_seen:
                rec.last_seen, rec.last_camera = float(timestamp), camera_id
            if vecs is None:
                return
            rows = self._append(vecs, np.full(len(vecs), rec.global_id, np.int64))
            candidates = np.concatenate([rec.rows, rows])
            keep = (rows if mode == "replace" else candidates)[-self.max_prototypes :]
            self._kill(np.setdiff1d(candidates, keep))
            rec.rows = keep
            self._most_protos = max(self._most_protos, len(keep))
            self._maybe_rebuild()

    def remove(self, global_id: int) -> None:
        """Forget an identity (its id is never given out again); KeyError when unknown."""
        with self._lock:
            rec = self._get(global_id)
            self._kill(rec.rows)
            del self._identities[rec.global_id]
            self._maybe_rebuild()

    def expire(self, now: float) -> list[int]:
        """Remove the identities unseen for more than ``expiry_s`` before ``now``; return their ids."""
        if self.expiry_s is None:
            return []
        with self._lock:
            old = [g for g, rec in self._identities.items() if now - rec.last_seen > self.expiry_s]
            for gid in old:
                self.remove(gid)
            if old:
                logger.info("gallery: expired %d identities unseen for > %.1f s", len(old), self.expiry_s)
            return old

    def _make_room(self, n_new: int) -> None:
        if self.max_identities is None or len(self._identities) + n_new <= self.max_identities:
            return
        if self.on_full == "raise" or n_new > self.max_identities:
            raise GalleryFullError(
                f"gallery full: {len(self._identities)} of max_identities={self.max_identities}, cannot add {n_new}"
            )
        excess = len(self._identities) + n_new - self.max_identities
        oldest = sorted(self._identities.values(), key=lambda r: (r.last_seen, r.global_id))[:excess]
        for rec in oldest:
            self.remove(rec.global_id)
        evicted = [r.global_id for r in oldest]
        logger.warning("gallery full (%d identities): evicted the least recently seen %s", self.max_identities, evicted)

    def _prepare(self, x: np.ndarray, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] == 0:
            raise ValueError(f"{name}: expected (k >= 1, {self.dim}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if self.metric == "cosine":
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            if (norm == 0).any():
                raise ValueError(f"{name}: expected non-zero vectors for the cosine metric, got a zero row")
            if not np.allclose(norm, 1.0, atol=1e-5):  # unit rows (the usual case) need no copy
                x = x / norm
        return np.ascontiguousarray(x, dtype=np.float32)

    def _append(self, vecs: np.ndarray, owners: np.ndarray) -> np.ndarray:
        need = self._n_rows + len(vecs)
        if need > len(self._owner):
            cap = max(need, 2 * len(self._owner))
            vectors, owner = np.empty((cap, self.dim), np.float32), np.full(cap, -1, np.int64)
            vectors[: self._n_rows], owner[: self._n_rows] = self._vectors[: self._n_rows], self._owner[: self._n_rows]
            self._vectors, self._owner = vectors, owner
        rows = np.arange(self._n_rows, need, dtype=np.int64)
        self._vectors[self._n_rows : need] = vecs
        self._owner[self._n_rows : need] = owners
        self._n_rows = need
        return rows

    def _kill(self, rows: np.ndarray) -> None:
        self._owner[rows] = -1
        self._n_dead += len(rows)

    # ------------------------------------------------------------------ index
    def _wanted_kind(self, n_live: int) -> str:
        if self.index_kind == "flat":
            return "flat"
        min_train = _MIN_POINTS_PER_LIST * (self.nlist or default_nlist(n_live))
        if self.index_kind == "ivf":
            return "ivf" if n_live >= min_train else "flat"
        if self._built_kind == "ivf":  # hysteresis: go back to flat only well below the threshold
            return "ivf" if n_live >= self.ivf_threshold // 2 and n_live >= min_train else "flat"
        return "ivf" if n_live >= max(self.ivf_threshold, min_train) else "flat"

    def _maybe_rebuild(self) -> None:
        n_live = self._n_rows - self._n_dead
        kind = self._wanted_kind(n_live)
        retrain = kind == "ivf" and self.nlist is None and n_live >= 4 * max(self._trained_at, 1)
        if kind != self._built_kind or retrain or self._n_dead > max(1024, n_live // 3):
            self._rebuild(kind, retrain=retrain or kind != self._built_kind)

    def _rebuild(self, kind: str, retrain: bool = True) -> None:
        """Compact the arrays (dropping dead rows, renumbering) and refill the index of ``kind``.

        A compaction of an IVF index keeps its trained lists (``retrain=False``); k-means runs again only
        when switching to IVF or when the gallery has grown 4x since the last training.
        """
        live = np.flatnonzero(self._owner[: self._n_rows] >= 0)
        remap = np.full(self._n_rows, -1, np.int64)
        remap[live] = np.arange(len(live))
        self._vectors[: len(live)] = self._vectors[live]
        self._owner[: len(live)] = self._owner[live]
        self._owner[len(live) : self._n_rows] = -1
        self._n_rows, self._n_dead = len(live), 0
        self._most_protos = 1
        for rec in self._identities.values():
            rec.rows = remap[rec.rows]
            self._most_protos = max(self._most_protos, len(rec.rows))
        self._index_rows = 0
        if kind == "ivf" and not retrain and self._built_kind == "ivf" and self._index is not None:
            self._index.reset()  # drops the vectors, keeps the trained coarse quantizer
        elif kind == "ivf":
            self._trained_at, self._nlist = len(live), self.nlist or default_nlist(len(live))
            self._index = _train_ivf(self._vectors[: len(live)], self._nlist, self._to_device)
        else:
            self._index = None
        self._built_kind = kind
        logger.debug("gallery: rebuilt a %s index over %d prototypes", kind, len(live))

    def _to_device(self, cpu_index: Any) -> Any:
        if self.device == "cpu":
            return cpu_index
        import faiss

        if self._gpu_resources is None:
            self._gpu_resources = faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_resources, int(self.device.split(":")[1]), cpu_index)

    def _sync_index(self) -> None:
        """Add the rows appended since the last search to the index (built lazily)."""
        import faiss

        if self._index is None:
            self._index = self._to_device(faiss.IndexFlatIP(self.dim))
        if self._index_rows < self._n_rows:
            new = self._vectors[self._index_rows : self._n_rows]  # a view: no copy of a large gallery
            if self._built_kind == "ivf":
                self._index.add_with_ids(new, np.arange(self._index_rows, self._n_rows, dtype=np.int64))
            else:  # a flat index labels rows by insertion order, which is the row number
                self._index.add(new)
            self._index_rows = self._n_rows
        if self._built_kind == "ivf":
            nlist = self._nlist
            space = faiss.GpuParameterSpace() if self.device != "cpu" else faiss.ParameterSpace()
            space.set_index_parameter(self._index, "nprobe", min(self.nprobe or default_nprobe(nlist), nlist))

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Best identities for each of (M, D) ``queries``.

        Returns ``(scores (M, k) float32, ids (M, k) int64)``, best first; an identity's score is its best
        prototype's similarity, so each identity appears at most once per row; -inf / -1 pad the rest.
        """
        if k < 1:
            raise ValueError(f"k: expected an int >= 1, got {k}")
        q = np.zeros((0, self.dim), np.float32)
        if len(np.asarray(queries)):
            q = self._prepare(queries, "queries")
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        with self._lock:
            if not self._identities or len(q) == 0:
                return scores, ids
            self._sync_index()
            most_protos = self._most_protos
            total = self._n_rows if self.device == "cpu" else min(self._n_rows, _GPU_MAX_K)
            fetch = min(total, k * most_protos + min(self._n_dead, 4 * k * most_protos))
            todo = np.arange(len(q))
            while len(todo):
                d, labels = self._index.search(q[todo], fetch)
                found, exhausted = self._collapse(d, labels, k, scores, ids, todo)
                todo = todo[~(found | exhausted | (fetch >= total))]
                fetch = min(total, 2 * fetch)
            return scores, ids

    def _collapse(
        self, d: np.ndarray, labels: np.ndarray, k: int, scores: np.ndarray, ids: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Write the first k distinct live owners of each result row; return (got k, ran out of results)."""
        owners = np.where(labels >= 0, self._owner[np.maximum(labels, 0)], -1)
        order = np.argsort(owners, axis=1, kind="stable")
        sorted_owners = np.take_along_axis(owners, order, axis=1)
        first = np.ones_like(sorted_owners, dtype=bool)
        first[:, 1:] = sorted_owners[:, 1:] != sorted_owners[:, :-1]
        first &= sorted_owners >= 0
        keep = np.zeros_like(first)
        np.put_along_axis(keep, order, first, axis=1)
        rank = np.cumsum(keep, axis=1) - 1
        keep &= rank < k
        r, c = np.nonzero(keep)
        scores[rows[r], rank[r, c]] = d[r, c]
        ids[rows[r], rank[r, c]] = owners[r, c]
        return keep.sum(axis=1) >= k, (labels < 0).any(axis=1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write every identity and its prototypes to ``path`` (one .npz; written atomically)."""
        with self._lock:
            live = np.flatnonzero(self._owner[: self._n_rows] >= 0)
            keys = ("global_id", "cameras", "first_seen", "last_seen", "last_camera")
            records = {str(g): {k: getattr(r, k) for k in keys} for g, r in self._identities.items()}
            meta = {"format": _FORMAT, "dim": self.dim, "metric": self.metric, "next_id": self._next_id}
            meta["identities"] = records
            _write(Path(path), self._vectors[live], self._owner[live], json.dumps(meta))

    def load(self, path: str | Path) -> None:
        """Replace this gallery's content with the file at ``path`` (ValueError on dim/metric mismatch)."""
        vectors, owners, meta = _read(Path(path))
        for key, mine in (("dim", self.dim), ("metric", self.metric)):
            if meta[key] != mine:
                raise ValueError(f"{path}: gallery file has {key} {meta[key]!r}, this gallery expects {mine!r}")
        with self._lock:
            self._reset_state(next_id=int(meta["next_id"]))
            order = np.argsort(owners, kind="stable")
            rows = self._append(vectors[order], owners[order])
            gids = np.array([int(key) for key in meta["identities"]], dtype=np.int64)
            starts = np.searchsorted(owners[order], gids, side="left")
            ends = np.searchsorted(owners[order], gids, side="right")
            for start, end, rec in zip(starts, ends, meta["identities"].values()):
                self._identities[rec["global_id"]] = IdentityInfo(**{**rec, "rows": rows[start:end]})
            self._rebuild(self._wanted_kind(len(rows)))

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> Gallery:
        """A new gallery with the dim and metric stored in ``path`` and ``kwargs`` for the rest."""
        meta = _read(Path(path))[2]
        gallery = cls(meta["dim"], metric=meta["metric"], **kwargs)
        gallery.load(path)
        return gallery


def _faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def _check_options(dim: int, choices: dict[str, tuple[str, tuple[str, ...]]], counts: dict[str, Any]) -> None:
    if int(dim) < 1:
        raise ValueError(f"dim: expected an int >= 1, got {dim}")
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
    for name, value in counts.items():
        if value is not None and value <= 0:
            raise ValueError(f"{name}: expected a number > 0 or None, got {value}")


def _train_ivf(vectors: np.ndarray, nlist: int, to_device: Callable[[Any], Any]) -> Any:
    """An empty IndexIVFFlat (inner product) whose coarse quantizer is trained on a sample of ``vectors``."""
    import faiss

    dim = vectors.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.min_points_per_centroid = 1
    n_train = min(len(vectors), _TRAIN_POINTS_PER_LIST * nlist)
    if n_train < len(vectors):
        vectors = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), n_train, replace=False))]
    index = to_device(index)
    index.train(np.ascontiguousarray(vectors))
    return index


def _write(path: Path, vectors: np.ndarray, owners: np.ndarray, meta: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.savez(f, vectors=vectors, owners=owners, meta=np.array(meta))


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(vectors (n, D) float32, owners (n,) int64, meta) from a file written by :meth:`Gallery.save`."""
    if not path.is_file():
        raise FileNotFoundError(f"gallery file not found: {path}")
    if not zipfile.is_zipfile(path):  # np.load would guess "pickled data" for any other bytes
        raise ValueError(
            f"{path}: not a readable gallery file (expected the .npz archive Gallery.save writes, "
            f"got {path.stat().st_size} bytes that are not a zip archive)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors = np.asarray(data["vectors"], dtype=np.float32)
            owners = np.asarray(data["owners"], dtype=np.int64)
            meta = json.loads(str(data["meta"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT!r}")
        known = np.array([int(k) for k in meta["identities"]], dtype=np.int64)
        if vectors.shape != (len(owners), int(meta["dim"])) or not np.isin(owners, known).all():
            raise ValueError(f"inconsistent content: vectors {vectors.shape}, owners {owners.shape}")
        if len(known) and int(meta["next_id"]) <= known.max():
            raise ValueError(f"next_id {meta['next_id']} is not above every stored id")
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable gallery file ({exc})") from exc
    return vectors, owners, meta
