"""End-of-run identity outputs: final global ids in every track file, per-camera MOT files of global ids,
an identities summary (CSV and JSON), and contact sheets (PNG per identity) with an HTML index.

    DIR/tracks.csv, DIR/tracks.jsonl      global_id column rewritten with the final ids
    DIR/crops/manifest.csv                the same for every harvested crop (when crops were harvested)
    DIR/mot_global/<camera_id>.txt        MOTChallenge rows whose id is the global id
    DIR/identities.csv, identities.json   global id -> cameras, first/last seen, box and tracklet counts
    DIR/identities/<gid>.png, index.html  the review page and its contact sheets (pipeline.review)
"""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from pipeline.durable import atomic_open, write_text
from pipeline.identity.duplicates import duplicate_tracklets, fold_duplicates
from pipeline.identity.ground import fit_ground_maps, ground_pairs, merge_colocated
from pipeline.identity.tracklets import Tracklet
from pipeline.review import write_review
from pipeline.sinks import LEGACY_TRACK_COLUMNS, MANIFEST_COLUMNS, TRACK_COLUMNS

logger = logging.getLogger(__name__)

TRACKLETS_FILE = "tracklets.npz"
MANIFEST_FILE = "manifest.csv"


def save_tracklets(
    out_dir: Path, tracklets: list[Tracklet], thumbs: dict[tuple[str, int], list[np.ndarray]],
    split_parent: Mapping[int, int] | None = None,
) -> Path:  # fmt: skip
    """Everything offline re-linking needs, so a finished run can be re-clustered without its videos.

    ``tracklets.npz``: per tracklet id, camera, track id, frame/time span, box and crop counts, online
    global id, unit mean embedding (NaN row when none), the unit means of its even and odd crops
    (``halves`` (N, 2, D), NaN for one-crop tracklets: the calibration's same-person evidence), its first and
    last box (``first_box``, ``last_box`` (N, 4) xyxy: the re-stitching guard), the tracklet it was cut
    from at a suspected identity switch (``split_parent``, -1 for none: ``split_parent`` maps cut-off
    tracklet ids to that one) and up to 6 thumbnails (T, 128, 64, 3) uint8.
    """
    dim = next((len(t.mean) for t in tracklets if t.mean is not None), 0)
    means = np.full((len(tracklets), dim), np.nan, np.float32)
    halves = np.full((len(tracklets), 2, dim), np.nan, np.float32)
    for i, t in enumerate(tracklets):
        if t.mean is not None:
            means[i] = t.mean
        if t.halves is not None:
            halves[i] = np.stack(t.halves)
    thumb_list = [np.stack(thumbs[(t.camera_id, t.track_id)]) if thumbs.get((t.camera_id, t.track_id))
                  else np.zeros((0, 128, 64, 3), np.uint8) for t in tracklets]  # fmt: skip
    counts = np.array([len(x) for x in thumb_list], np.int64)
    path = Path(out_dir) / TRACKLETS_FILE
    parents = np.array([(split_parent or {}).get(t.tracklet_id, -1) for t in tracklets], np.int64)
    with atomic_open(path, "wb") as fh:
        _save_tracklet_arrays(fh, tracklets, means, halves, counts, thumb_list, parents)
    return path


def _save_tracklet_arrays(
    fh: IO[bytes], tracklets: list[Tracklet], means: np.ndarray, halves: np.ndarray, counts: np.ndarray,
    thumb_list: list[np.ndarray], parents: np.ndarray,
) -> None:  # fmt: skip
    np.savez_compressed(
        fh,
        split_parent=parents,
        tracklet_id=np.array([t.tracklet_id for t in tracklets], np.int64),
        camera_id=np.array([t.camera_id for t in tracklets], dtype=str),
        track_id=np.array([t.track_id for t in tracklets], np.int64),
        first_frame=np.array([t.first_frame for t in tracklets], np.int64),
        last_frame=np.array([t.last_frame for t in tracklets], np.int64),
        first_timestamp=np.array([t.first_timestamp for t in tracklets], np.float64),
        last_timestamp=np.array([t.last_timestamp for t in tracklets], np.float64),
        n_boxes=np.array([t.n_boxes for t in tracklets], np.int64),
        n_embedded=np.array([t.n_embedded for t in tracklets], np.int64),
        global_id=np.array([t.global_id for t in tracklets], np.int64),
        mean=means,
        halves=halves,
        first_box=np.array([t.first_box for t in tracklets], np.float32).reshape(-1, 4),
        last_box=np.array([t.last_box for t in tracklets], np.float32).reshape(-1, 4),
        thumb_count=counts,
        thumbs=np.concatenate(thumb_list) if len(thumb_list) else np.zeros((0, 128, 64, 3), np.uint8),
    )


def load_tracklets(run_dir: Path) -> tuple[list[Tracklet], dict[tuple[str, int], list[np.ndarray]]]:
    """Inverse of :func:`save_tracklets` (means come back as ``embedding_sum`` with n_embedded kept)."""
    path = Path(run_dir) / TRACKLETS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the tracklets file of a run made with embedding enabled")
    try:
        data = np.load(path)
        arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable tracklets file ({exc})") from exc
    tracklets, thumbs, start = [], {}, 0
    halves = arrays.get("halves")  # absent in runs made before calibration existed
    for i in range(len(arrays["tracklet_id"])):
        mean = arrays["mean"][i]
        has = bool(np.isfinite(mean).all()) and arrays["n_embedded"][i] > 0
        summed, odd = _sums_from_halves(mean, None if halves is None else halves[i]) if has else (None, None)
        t = Tracklet(
            tracklet_id=int(arrays["tracklet_id"][i]), camera_id=str(arrays["camera_id"][i]),
            track_id=int(arrays["track_id"][i]), first_frame=int(arrays["first_frame"][i]),
            last_frame=int(arrays["last_frame"][i]), first_timestamp=float(arrays["first_timestamp"][i]),
            last_timestamp=float(arrays["last_timestamp"][i]), n_boxes=int(arrays["n_boxes"][i]),
            n_embedded=int(arrays["n_embedded"][i]) if has else 0,
            embedding_sum=summed, odd_sum=odd, global_id=int(arrays["global_id"][i]), ended=True,
            first_box=arrays["first_box"][i] if "first_box" in arrays else np.full(4, np.nan, np.float32),
            last_box=arrays["last_box"][i] if "last_box" in arrays else np.full(4, np.nan, np.float32),
        )  # fmt: skip
        tracklets.append(t)
        n = int(arrays["thumb_count"][i])
        thumbs[(t.camera_id, t.track_id)] = list(arrays["thumbs"][start : start + n])
        start += n
    return tracklets, thumbs


def load_split_parent(run_dir: Path) -> dict[int, int]:
    """{cut-off tracklet id: the tracklet it was cut from} of a run's ``tracklets.npz`` (empty for runs
    without cuts or made before cuts were recorded)."""
    path = Path(run_dir) / TRACKLETS_FILE
    try:
        with np.load(path) as data:
            if "split_parent" not in data.files:
                return {}
            ids, parents = data["tracklet_id"], data["split_parent"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable tracklets file ({exc})") from exc
    cut = parents >= 0
    return dict(zip(ids[cut].tolist(), parents[cut].tolist()))


def _sums_from_halves(mean: np.ndarray, halves: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(embedding_sum, odd_sum) that give back ``mean`` and, when known, the two half means.

    The mean is a positive combination ``a * even + b * odd`` of the half means: with ``embedding_sum = mean``
    and ``odd_sum = b * odd``, :attr:`Tracklet.halves` returns both halves again.
    """
    if halves is None or not np.isfinite(halves).all():
        return mean.astype(np.float32), None
    basis = halves.astype(np.float64).T  # (D, 2)
    (_, b), *_ = np.linalg.lstsq(basis, mean.astype(np.float64), rcond=None)
    return mean.astype(np.float32), (b * halves[1]).astype(np.float32)


def read_tracks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """tracks.csv → (camera ids (N,) str, values (N, 10) float64 of the other columns, in ``TRACK_COLUMNS``
    order: frame, timestamp, track_id, global_id, x1, y1, x2, y2, confidence, tracklet_id). Files written
    before rows carried tracklet ids (``LEGACY_TRACK_COLUMNS``) read with tracklet_id -1."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        header = None if header is None else tuple(header)
        if header not in (TRACK_COLUMNS, LEGACY_TRACK_COLUMNS):
            raise ValueError(f"{path}: expected header {','.join(TRACK_COLUMNS)}, got {header}")
        rows = list(reader)
    cams = np.array([r[0] for r in rows], dtype=object)
    values = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), len(header) - 1)
    if header == LEGACY_TRACK_COLUMNS:
        values = np.column_stack([values, np.full(len(rows), -1.0)])
    return cams, values


def _row_global_ids(
    cams: np.ndarray, values: np.ndarray, tracklets: list[Tracklet], mapping: dict[int, int]
) -> np.ndarray:
    """(N,) int64 final global id of every track row: the tracklet of (camera, track) spanning its frame."""
    gids = np.full(len(cams), -1, dtype=np.int64)
    by_track: dict[tuple[str, int], list[Tracklet]] = defaultdict(list)
    for t in tracklets:
        by_track[(t.camera_id, t.track_id)].append(t)
    frames, tracks = values[:, 0].astype(np.int64), values[:, 2].astype(np.int64)
    keys = np.array([f"{c}\x00{t}" for c, t in zip(cams, tracks)], dtype=object)
    for key in np.unique(keys) if len(keys) else []:
        cam, track = key.split("\x00")
        rows = np.flatnonzero(keys == key)
        for t in by_track.get((cam, int(track)), []):
            inside = rows[(frames[rows] >= t.first_frame) & (frames[rows] <= t.last_frame)]
            gids[inside] = mapping.get(t.tracklet_id, -1)
    return gids


def row_global_ids(tracklet_ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """(N,) int64 global id of each row's tracklet in ``mapping`` (-1 for tracklets it does not hold): the final
    ids are a lookup in the identity record, never a re-match."""
    tracklet_ids = np.asarray(tracklet_ids, np.int64)
    if not mapping or not len(tracklet_ids):
        return np.full(len(tracklet_ids), -1, np.int64)
    keys = np.fromiter(mapping.keys(), np.int64, len(mapping))
    vals = np.fromiter(mapping.values(), np.int64, len(mapping))
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]
    pos = np.clip(np.searchsorted(keys, tracklet_ids), 0, len(keys) - 1)
    return np.where(keys[pos] == tracklet_ids, vals[pos], -1)


def cuts_of(tracklets: Sequence[Tracklet], split_parent: Mapping[int, int] | None) -> dict[int, tuple[int, int, int]]:
    """{piece: (the tracklet it was cut from, that tracklet's last frame, the piece's first frame)} for the
    identity-switch cuts in ``split_parent`` (the frames between the two are the ones no crop vouches for)."""
    if not split_parent:
        return {}
    by_id = {t.tracklet_id: t for t in tracklets}
    return {piece: (parent, by_id[parent].last_frame, by_id[piece].first_frame)
            for piece, parent in split_parent.items() if piece in by_id and parent in by_id}  # fmt: skip


def assign_cut_rows(
    tracklet_ids: np.ndarray, frames: np.ndarray, cameras: np.ndarray, mapping: Mapping[int, int],
    cuts: Mapping[int, tuple[int, int, int]] | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Give the rows of each identity-switch cut to the right piece; returns (N,) tracklet ids and (N,) bool
    rows to leave without a global id.

    ``cuts`` maps a piece to (its parent, the parent's last frame f0, the piece's first frame f1) (:func:`cuts_of`).
    Rows of either on a frame >= f1 are the piece's. The rows between (f0 < frame < f1) were the person before
    the switch up to some frame and the one after it from then on: the boundary chosen is the one whose rows
    clash least with another row of the same camera and frame carrying the same final global id
    (``mapping``), then give fewest rows to a side without a global id (a piece too short to be linked), the
    middle of the gap among equals; a row that still clashes is left without one. Pieces are
    applied in id order (the order they were cut in), so a piece cut again passes its later rows on; applying
    the same cuts again changes nothing.
    """
    out = np.asarray(tracklet_ids, np.int64).copy()
    unlinked = np.zeros(len(out), bool)
    if not cuts or not len(out):
        return out, unlinked
    frames = np.asarray(frames, np.int64)
    cam = np.unique(np.asarray(cameras), return_inverse=True)[1].astype(np.int64)
    order = np.lexsort((frames, cam))
    sorted_key = cam[order] * (int(frames.max()) + 2) + frames[order]
    involved = np.array(sorted({k for p, (q, _, _) in cuts.items() for k in (p, q)}), np.int64)
    by_tid = np.argsort(out, kind="stable")
    lo, hi = np.searchsorted(out[by_tid], involved), np.searchsorted(out[by_tid], involved, side="right")
    rows = {int(t): by_tid[a:b] for t, a, b in zip(involved, lo, hi)}
    for piece in sorted(cuts):
        parent, f0, f1 = cuts[piece]
        held = rows[parent]
        late = frames[held] >= f1
        out[held[late]] = piece
        rows[piece], rows[parent] = np.concatenate([rows[piece], held[late]]), held[~late]
        both = np.concatenate([rows[parent], rows[piece]])
        if f1 - f0 < 2 or not len(both):
            out[both] = np.where(frames[both] < f1, parent, piece)
            continue
        base = cam[both[0]] * (int(frames.max()) + 2)
        window = order[np.searchsorted(sorted_key, base + f0 + 1) : np.searchsorted(sorted_key, base + f1)]
        ours = np.isin(out[window], [parent, piece])
        amb, others = window[ours], window[~ours & ~unlinked[window]]
        amb = amb[np.argsort(frames[amb], kind="stable")]
        taken = {(int(f), g) for f, g in zip(frames[others].tolist(), row_global_ids(out[others], mapping).tolist())
                 if g >= 0}  # fmt: skip
        g_parent, g_piece = mapping.get(parent, -1), mapping.get(piece, -1)
        clash_p = np.array([g_parent >= 0 and (f, g_parent) in taken for f in frames[amb].tolist()], bool)
        clash_c = np.array([g_piece >= 0 and (f, g_piece) in taken for f in frames[amb].tolist()], bool)
        # boundary after k ambiguous rows (k = 0..n): the first k go to the parent, the rest to the piece. A row
        # that clashes costs 1 (it loses its id); one given to a side without an id costs half that.
        cost_p = clash_p + 0.5 * (g_parent < 0)
        cost_c = clash_c + 0.5 * (g_piece < 0)
        cost = np.concatenate([[0], np.cumsum(cost_p)]) + np.concatenate([np.cumsum(cost_c[::-1])[::-1], [0]])
        k_mid = int(np.searchsorted(frames[amb], (f0 + f1) / 2))
        best = np.flatnonzero(cost == cost.min())
        k = int(best[np.argmin(np.abs(best - k_mid))])
        out[amb[:k]], out[amb[k:]] = parent, piece
        unlinked[amb] = np.concatenate([clash_p[:k], clash_c[k:]])
        rows[parent] = np.concatenate([rows[parent][~np.isin(rows[parent], amb)], amb[:k]])
        rows[piece] = np.concatenate([rows[piece][~np.isin(rows[piece], amb)], amb[k:]])
    return out, unlinked


def repeated_ids(
    cameras: np.ndarray, frames: np.ndarray, gids: np.ndarray, tracklet_ids: np.ndarray,
    yielding: Sequence[int] = (),
) -> np.ndarray:  # fmt: skip
    """(N,) bool: rows whose global id another row of the same camera and frame also carries, from a later
    tracklet (larger id); those keep it. Tracklets of one identity may share a frame or two at a hand-off
    (:func:`pipeline.identity.tracklets.clash`); the track that carries on keeps the id there. Rows of the
    ``yielding`` tracklets (the shorter of duplicate tracks, :mod:`pipeline.identity.duplicates`) give it up
    to any other first."""
    gids = np.asarray(gids, np.int64)
    out = np.zeros(len(gids), bool)
    if not len(gids):
        return out
    cam = np.unique(np.asarray(cameras), return_inverse=True)[1]
    frames = np.asarray(frames).astype(np.int64)
    tids = np.asarray(tracklet_ids, np.int64)
    order = np.lexsort((-tids, np.isin(tids, np.asarray(yielding, np.int64)), gids, frames, cam))
    same = (cam[order][1:] == cam[order][:-1]) & (frames[order][1:] == frames[order][:-1])
    same &= (gids[order][1:] == gids[order][:-1]) & (gids[order][1:] >= 0)
    out[order[1:][same]] = True
    return out


def settle_identities(
    out_dir: Path, tracklets: list[Tracklet], mapping: Mapping[int, int], split_parent: Mapping[int, int] | None = None
) -> dict[int, int]:
    """The final {tracklet id: global id}: ``mapping`` with what the run's track rows (``out_dir/tracks.csv``)
    show about people that appearance cannot: duplicate tracks of one person folded into the longer one
    (:mod:`pipeline.identity.duplicates`), then tracklets of overlapping views that stand on one spot joined
    (:mod:`pipeline.identity.ground`). Call it before saving anything that carries global ids."""
    cams, values, _ = _settled_rows(Path(out_dir), tracklets, mapping, split_parent)
    duplicates = duplicate_tracklets(cams, values[:, 0], values[:, 9], values[:, 4:8])
    settled = fold_duplicates(mapping, duplicates)
    for short, host in duplicates:
        logger.info("tracklet %d is a duplicate track of tracklet %d (their boxes stand on one spot): global id %d",
                    short, host, settled.get(short, -1))  # fmt: skip
    return _join_on_ground(cams, values, tracklets, settled)


def _settled_rows(
    out_dir: Path, tracklets: list[Tracklet], mapping: Mapping[int, int], split_parent: Mapping[int, int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tracks.csv's cameras and values with the rows of identity-switch cuts given to their pieces
    (:func:`assign_cut_rows`), and (N,) bool rows that must stay without a global id."""
    cams, values = read_tracks(out_dir / "tracks.csv")
    cuts = cuts_of(tracklets, split_parent)
    tids, no_id = assign_cut_rows(values[:, 9].astype(np.int64), values[:, 0], cams, dict(mapping), cuts)
    tracked = values[:, 9] >= 0
    values[tracked, 9] = tids[tracked]
    return cams, values, no_id & tracked


def rewrite_tracks(
    out_dir: Path, tracklets: list[Tracklet], mapping: dict[int, int], split_parent: Mapping[int, int] | None = None
) -> dict[str, int]:
    """Write final global ids into tracks.csv/jsonl and mot_global/ (the rows of identity-switch cuts given to
    their pieces first, :func:`assign_cut_rows`; on frames where duplicate tracks of one person,
    :mod:`pipeline.identity.duplicates`, both carry it, the longer keeps the id); return row counts."""
    out_dir = Path(out_dir)
    cams, values, no_id = _settled_rows(out_dir, tracklets, mapping, split_parent)
    duplicates = duplicate_tracklets(cams, values[:, 0], values[:, 9], values[:, 4:8])
    gids = row_global_ids(values[:, 9].astype(np.int64), mapping)
    gids[no_id] = -1
    gids[repeated_ids(cams, values[:, 0], gids, values[:, 9], [s for s, _ in duplicates])] = -1
    legacy = values[:, 9] < 0  # rows written before they carried their tracklet id: matched by frame span
    if legacy.any():
        gids[legacy] = _row_global_ids(cams[legacy], values[legacy], tracklets, mapping)
    values[:, 3] = gids
    _write_tracks(out_dir, cams, values)
    # MOT files need an id for every row: rows of tracklets never linked get fresh ids past every global id,
    # unique per (camera, track), so no row is lost and no id is shared by two people.
    mot_ids = gids.copy()
    unlinked = gids < 0
    if unlinked.any():
        keys = np.array([f"{c}\x00{int(t)}" for c, t in zip(cams[unlinked], values[unlinked, 2])], dtype=object)
        _, local = np.unique(keys, return_inverse=True)
        mot_ids[unlinked] = max(gids.max(initial=-1), max(mapping.values(), default=-1)) + 1 + local
    mot_dir = out_dir / "mot_global"
    mot_dir.mkdir(exist_ok=True)
    for cam in sorted(set(cams.tolist())):
        rows = cams == cam
        v = values[rows]
        table = np.column_stack(
            [v[:, 0] + 1, mot_ids[rows], v[:, 4], v[:, 5], v[:, 6] - v[:, 4], v[:, 7] - v[:, 5], v[:, 8]]
        )
        with atomic_open(mot_dir / f"{cam}.txt") as fh:
            np.savetxt(fh, table, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1")
    manifest = out_dir / "crops" / MANIFEST_FILE
    if manifest.is_file():
        rewrite_manifest(manifest, mapping, _row_ids(cams, values))
    return {"rows": len(cams), "linked_rows": int((~unlinked).sum()), "unlinked_rows": int(unlinked.sum()),
            "duplicate_tracklets": len(duplicates)}  # fmt: skip


def _row_ids(cams: np.ndarray, values: np.ndarray) -> dict[tuple[str, int, int], tuple[int, int]]:
    """{(camera, frame, track id): (tracklet id, global id)} of the rows of a track file."""
    keys = zip(cams.tolist(), values[:, 0].astype(np.int64).tolist(), values[:, 2].astype(np.int64).tolist())
    return dict(zip(keys, zip(values[:, 9].astype(np.int64).tolist(), values[:, 3].astype(np.int64).tolist())))


def _join_on_ground(
    cams: np.ndarray, values: np.ndarray, tracklets: list[Tracklet], mapping: dict[int, int]
) -> dict[int, int]:
    """``mapping`` with the identities of tracklets that stand on one spot in two overlapping views joined
    (:mod:`pipeline.identity.ground`; the views' ground maps are fitted on ``mapping``'s own identities)."""
    tids = values[:, 9].astype(np.int64)
    near, apart = _on_ground(cams, values[:, 0], tids, values[:, 4:8], row_global_ids(tids, mapping))
    return merge_colocated(mapping, near, tracklets, apart) if near or apart else mapping


def _on_ground(
    cams: np.ndarray, frames: np.ndarray, tids: np.ndarray, boxes: np.ndarray, gids: np.ndarray
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """:func:`~pipeline.identity.ground.ground_pairs` (near, apart) of track rows under ground maps fitted on
    their global ids ``gids``; both empty where no two views share ground."""
    maps = fit_ground_maps(cams, frames, gids, boxes)
    return ground_pairs(cams, frames, tids, boxes, maps) if maps else ([], [])


def ground_links(out_dir: Path) -> list[tuple[int, int, int]]:
    """(common frames, tracklet x, tracklet y) of every two tracklets of overlapping views that stand on one
    spot in a finished run (``out_dir/tracks.csv``, final ids: the ground maps are fitted on them), most
    common frames first; empty where no two views share ground (:mod:`pipeline.identity.ground`)."""
    cams, values = read_tracks(Path(out_dir) / "tracks.csv")
    rows = values[:, 9] >= 0
    v = values[rows]
    return _on_ground(cams[rows], v[:, 0], v[:, 9].astype(np.int64), v[:, 4:8], v[:, 3].astype(np.int64))[0]


def handoff_links(out_dir: Path) -> list[tuple[int, int]]:
    """(tracklet x, tracklet y) of every hand-over between adjacent views of a finished run
    (:mod:`pipeline.identity.handoff`, maps fitted on the final ids of ``out_dir/tracks.csv``)."""
    from pipeline.identity.handoff import find_handoffs

    out_dir = Path(out_dir)
    tracklets, _ = load_tracklets(out_dir)
    _, values = read_tracks(out_dir / "tracks.csv")
    final = {int(t): int(g) for t, g in zip(values[:, 9], values[:, 3]) if t >= 0 and g >= 0}
    return find_handoffs(tracklets, {t.tracklet_id: final.get(t.tracklet_id, -1) for t in tracklets}).pairs


def rewrite_manifest(
    path: Path, mapping: dict[int, int], rows_by_box: Mapping[tuple[str, int, int], tuple[int, int]] | None = None
) -> int:
    """Give every crop in ``crops/manifest.csv`` the final global id of its tracklet (a lookup in ``mapping``;
    -1 where its tracklet got none); where ``rows_by_box`` ({(camera, frame, track id): (tracklet id, global
    id)}, the final track file) holds the crop's box, its tracklet and global id are taken from there (a crop
    of an identity-switch cut goes where its box went). Returns the number of crops rewritten."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != MANIFEST_COLUMNS:
            raise ValueError(f"{path}: expected header {','.join(MANIFEST_COLUMNS)}, got {header}")
        rows = list(reader)
    tracklet_col, gid_col = MANIFEST_COLUMNS.index("tracklet_id"), MANIFEST_COLUMNS.index("global_id")
    cam_col, frame_col, track_col = (MANIFEST_COLUMNS.index(c) for c in ("camera_id", "frame_index", "track_id"))
    gids = row_global_ids(np.array([int(r[tracklet_col]) for r in rows], np.int64), mapping)
    for row, gid in zip(rows, gids.tolist()):
        found = (rows_by_box or {}).get((row[cam_col], int(row[frame_col]), int(row[track_col])))
        row[tracklet_col], row[gid_col] = (str(found[0]), str(found[1])) if found else (row[tracklet_col], str(gid))
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
    return len(rows)


def _write_tracks(out_dir: Path, cams: np.ndarray, values: np.ndarray) -> None:
    with atomic_open(out_dir / "tracks.csv") as fc, atomic_open(out_dir / "tracks.jsonl") as fj:
        fc.write(",".join(TRACK_COLUMNS) + "\n")
        for cam, row in zip(cams, values):  # camera ids are [A-Za-z0-9_.-]: safe unquoted in CSV
            f, ts, tr, g, x1, y1, x2, y2, c, k = row
            fc.write(
                f"{cam},{int(f)},{ts:.3f},{int(tr)},{int(g)},{x1:.2f},{y1:.2f},{x2:.2f},{y2:.2f},{c:.4f},{int(k)}\n"
            )
            record = {"camera_id": cam, "frame": int(f), "timestamp": round(ts, 3), "track_id": int(tr),
                      "global_id": int(g), "x1": round(x1, 2), "y1": round(y1, 2), "x2": round(x2, 2),
                      "y2": round(y2, 2), "confidence": round(c, 4), "tracklet_id": int(k)}  # fmt: skip
            fj.write(json.dumps(record) + "\n")


def identities_summary(tracklets: list[Tracklet], mapping: dict[int, int]) -> list[dict]:
    """One record per global id: cameras, first/last seen (s), boxes and tracklets."""
    groups: dict[int, list[Tracklet]] = defaultdict(list)
    for t in tracklets:
        gid = mapping.get(t.tracklet_id, -1)
        if gid >= 0:
            groups[gid].append(t)
    out = []
    for gid in sorted(groups):
        members = groups[gid]
        out.append({
            "global_id": gid,
            "cameras": sorted({t.camera_id for t in members}),
            "first_seen": round(min(t.first_timestamp for t in members), 3),
            "last_seen": round(max(t.last_timestamp for t in members), 3),
            "boxes": sum(t.n_boxes for t in members),
            "tracklets": len(members),
        })  # fmt: skip
    return out


def write_identities(out_dir: Path, summary: list[dict]) -> None:
    """``identities.json`` and ``identities.csv``, each written whole (temporary file + rename)."""
    out_dir = Path(out_dir)
    write_text(out_dir / "identities.json", json.dumps(summary, indent=2))
    with atomic_open(out_dir / "identities.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["global_id", "cameras", "first_seen", "last_seen", "boxes", "tracklets"])
        for rec in summary:
            writer.writerow([rec["global_id"], " ".join(rec["cameras"]), rec["first_seen"], rec["last_seen"],
                             rec["boxes"], rec["tracklets"]])  # fmt: skip


def write_identity_outputs(
    out_dir: Path, tracklets: list[Tracklet], mapping: dict[int, int],
    thumbs: dict[tuple[str, int], list[np.ndarray]], run_info: Mapping[str, Any] | None = None,
    split_parent: Mapping[int, int] | None = None,
) -> dict[str, int]:  # fmt: skip
    """Rewrite track files with ``mapping`` (the rows of the identity-switch cuts in ``split_parent`` given to
    their pieces, :func:`assign_cut_rows`), write the identities summary and the review page (contact sheets, timeline;
    ``run_info`` heads the page, see :mod:`pipeline.review`); return counts."""
    rows = rewrite_tracks(out_dir, tracklets, mapping, split_parent)
    records = identities_summary(tracklets, mapping)
    write_identities(out_dir, records)
    write_review(out_dir, tracklets, mapping, thumbs, records, run_info)
    return {"global_ids": len(records), "multi_camera_ids": sum(len(r["cameras"]) > 1 for r in records), **rows}
