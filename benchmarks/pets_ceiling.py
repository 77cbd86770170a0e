"""How far can linking alone go on PETS09? Oracle ceilings computed on a run's own tracks.

    python benchmarks/identity_defaults.py --skip-epfl   # writes benchmarks/results/identity_defaults/pets
    python benchmarks/pets_split.py                       # writes benchmarks/results/pets_split/{run,gt}
    python benchmarks/pets_ceiling.py

Each box of the run is matched to the ground truth of its frame (Hungarian on IoU, >= 0.5). Then, scored with
the same metrics as every other benchmark:

- **tracker ids**: the per-camera tracks (``mot/``), the floor;
- **run**: the global ids the run wrote (``mot_global/``);
- **oracle linking**: every track gets the ground-truth id most of its boxes carry (a track that would share an
  id with a longer track of its camera on a common frame keeps an id of its own). This is the best any
  linker can do with these tracks, because a linker moves whole tracks;
- **oracle linking of the run's tracklets**: the same, on the tracklets the run actually linked (``tracks.csv``
  ``tracklet_id``: a track cut at a suspected identity switch, ``linking.split_switches``, is several);
- **oracle split + linking**: tracks are first cut wherever the ground-truth id of their boxes changes (an
  identity switch inside the track; unmatched boxes take the id before them), then linked by the oracle.

What it shows (2026-12-01, 2-core CPU, shipped defaults: YOLOv8n INT8, ByteTrack with auto thresholds,
OSNet x0.25 MSMT17, link threshold auto, switch cuts on; deterministic, one run each;
``python benchmarks/identity_defaults.py --out /tmp/idd && python benchmarks/pets_split.py &&
python benchmarks/pets_ceiling.py --pets /tmp/idd/pets``):

| data | ids | IDF1 | HOTA | ids (GT) |
|---|---|---|---|---|
| PETS S2L1 | tracker ids | 0.773 | 0.574 | 27 (19) |
| PETS S2L1 | run (online global ids) | 0.841 | 0.606 | 23 (19) |
| PETS S2L1 | oracle linking of the run's tracklets | 0.848 | 0.612 | 24 (19) |
| PETS S2L1 | oracle linking | 0.843 | 0.600 | 21 (19) |
| PETS S2L1 | oracle split + linking | 0.899 | 0.643 | 37 (19) |
| PETS split, multi-camera | tracker ids | 0.516 | 0.549 | 61 (19) |
| PETS split, multi-camera | run (online global ids) | 0.617 | 0.524 | 28 (19) |
| PETS split, multi-camera | oracle linking of the run's tracklets | 0.883 | 0.632 | 25 (19) |
| PETS split, multi-camera | oracle linking | 0.851 | 0.615 | 25 (19) |
| PETS split, multi-camera | oracle split + linking | 0.888 | 0.637 | 39 (19) |

(HOTA of the split rows is the per-camera combined HOTA; the floor of the split counts each camera's track
ids apart, so it differs slightly from ``pets_split.py``'s floor, which lets equal numbers collide.)

On the single view 12 of the 27 tracks hold boxes of two or more people (identity switches while people
cross), so no linker of whole tracks gets past 0.843; the run's own cuts (19 of them, 46 tracklets) lifted
that ceiling only to 0.848 while a cut ended the old piece on the frame it was noticed (the run reached
0.841). Most of the 18 cut tracklets that still held two people did so by a single stray box at the cut.
The split is different: there the linker is 27 points below perfect linking of its own tracklets (0.617 of
0.883), the look-alike chains described in ``pets_split.py``.

**Cut spans (2026-12-02, session 11; same commands, run folders of that day's ``identity_defaults.py`` and
``pets_split.py``).** Each side of a cut now keeps the span its own crops vouch for and the boxes between go
to whichever side clashes with no box of its final identity (``pipeline.identity.outputs.assign_cut_rows``);
hand-offs of at most 2 frames (10 when the boxes coincide) are no cannot-link:

| data | ids | IDF1 | HOTA | ids (GT) |
|---|---|---|---|---|
| PETS S2L1 | tracker ids | 0.773 | 0.574 | 27 (19) |
| PETS S2L1 | run (global ids) | **0.874** | 0.620 | 21 (19) |
| PETS S2L1 | oracle linking of the run's tracklets | 0.886 | 0.629 | 23 (19) |
| PETS S2L1 | oracle linking | 0.843 | 0.600 | 21 (19) |
| PETS S2L1 | oracle split + linking | 0.899 | 0.643 | 37 (19) |
| PETS split, multi-camera | tracker ids | 0.516 | 0.549 | 61 (19) |
| PETS split, multi-camera | run (global ids) | 0.643 | 0.523 | 28 (19) |
| PETS split, multi-camera | oracle linking of the run's tracklets | 0.881 | 0.630 | 25 (19) |
| PETS split, multi-camera | oracle linking | 0.851 | 0.615 | 25 (19) |
| PETS split, multi-camera | oracle split + linking | 0.888 | 0.637 | 39 (19) |

The same 46 tracklets on the single view, with their rows where they belong, now allow 0.886, and the run
reaches 0.874 of it (13 tracklets still hold more than one person); on the split the run stays 24 points
below its tracklets' ceiling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
PETS_RUN = REPO / "benchmarks/results/identity_defaults/pets"
SPLIT_RUN = REPO / "benchmarks/results/pets_split/run"
SPLIT_GT = REPO / "benchmarks/results/pets_split/gt"
PETS_GT = SHARED / "data/pets09_s2l1/mot15/gt.txt"


def box_labels(pred: np.ndarray, gt: np.ndarray, iou_min: float = 0.5) -> np.ndarray:
    """The ground-truth id each predicted box matches in its frame (one-to-one, IoU >= iou_min), else -1."""
    from pipeline.evaluation.metrics_mot import box_iou_xywh

    labels = np.full(len(pred), -1, np.int64)
    for frame in np.unique(pred[:, 0]):
        p = np.flatnonzero(pred[:, 0] == frame)
        g = np.flatnonzero(gt[:, 0] == frame)
        if len(g) == 0:
            continue
        iou = box_iou_xywh(pred[p, 2:6], gt[g, 2:6])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= iou_min
        labels[p[rows[ok]]] = gt[g[cols[ok]], 1].astype(np.int64)
    return labels


def split_at_switches(pred: np.ndarray, labels: np.ndarray, first_id: int) -> np.ndarray:
    """``pred`` with each track cut where its boxes' ground-truth id changes; pieces get ids from ``first_id``."""
    out = pred.copy()
    next_id = first_id
    for track in np.unique(pred[:, 1]):
        rows = np.flatnonzero(pred[:, 1] == track)
        rows = rows[np.argsort(pred[rows, 0], kind="stable")]
        lab = labels[rows].copy()
        for i in range(1, len(lab)):  # an unmatched box belongs to the person before it
            if lab[i] < 0:
                lab[i] = lab[i - 1]
        piece = np.concatenate([[0], np.cumsum(lab[1:] != lab[:-1])])
        out[rows, 1] = next_id + piece
        next_id += int(piece[-1]) + 1
    return out


def oracle_link(by_cam: dict[str, np.ndarray], labels: dict[str, np.ndarray], first_free: int) -> dict[str, np.ndarray]:
    """Each track takes its majority ground-truth id, longest tracks first, unless that id is already on one of
    its camera's boxes in a common frame; tracks with no match, or that conflict, keep an id of their own."""
    out = {cam: rows.copy() for cam, rows in by_cam.items()}
    next_free = first_free
    for cam, rows in by_cam.items():
        taken: dict[int, set[float]] = {}
        tracks, sizes = np.unique(rows[:, 1], return_counts=True)
        for track in tracks[np.argsort(-sizes, kind="stable")]:
            mask = rows[:, 1] == track
            lab = labels[cam][mask]
            lab = lab[lab >= 0]
            frames = set(rows[mask, 0].tolist())
            if len(lab):
                gid = int(np.bincount(lab).argmax())
                if not taken.get(gid, set()) & frames:
                    taken.setdefault(gid, set()).update(frames)
                    out[cam][mask, 1] = gid
                    continue
            out[cam][mask, 1] = next_free
            next_free += 1
    return out


def score(gt: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> tuple[float, float, int]:
    """(IDF1, HOTA, predicted ids): single camera as is; several cameras: multi-camera IDF1, combined HOTA."""
    from pipeline.evaluation.evaluate import combine_results, evaluate_sequence, multicamera_idf1

    per_cam = [evaluate_sequence(gt[c], pred[c]) for c in gt]
    hota = combine_results(per_cam)["HOTA"]
    if len(gt) == 1:
        return per_cam[0]["IDF1"], hota, int(per_cam[0]["PRED_IDs"])
    multi = multicamera_idf1(gt, pred)
    return multi["idf1"], hota, int(multi["pred_ids"])


def run_tracklets(run_dir: Path, cameras: list[str]) -> dict[str, np.ndarray] | None:
    """The run's boxes (``tracks.csv``) in MOT columns, the tracklet id (a track or a piece of it) as id."""
    import csv

    path = run_dir / "tracks.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "tracklet_id" not in rows[0]:
        return None
    out = {}
    for cam in cameras:
        box = np.array(
            [[float(r[k]) for k in ("frame", "tracklet_id", "x1", "y1", "x2", "y2", "confidence")]
             for r in rows if r["camera_id"] == cam], np.float64,
        ).reshape(-1, 7)  # fmt: skip
        box[:, 4:6] -= box[:, 2:4]  # x2, y2 -> w, h
        box[:, 0] += 1  # tracks.csv counts frames from 0, MOTChallenge from 1
        out[cam] = np.column_stack([box, np.full((len(box), 3), -1.0)])
    return out


def ceilings(gt: dict[str, np.ndarray], run_dir: Path) -> list[tuple[str, float, float, int]]:
    from pipeline.evaluation.mot_io import load_mot

    tracks = {c: load_mot(run_dir / "mot" / f"{c}.txt") for c in gt}
    linked = {c: load_mot(run_dir / "mot_global" / f"{c}.txt") for c in gt}
    labels = {c: box_labels(tracks[c], gt[c]) for c in gt}
    big = 1 + int(max(max(t[:, 1].max(initial=0) for t in tracks.values()), max(g[:, 1].max() for g in gt.values())))
    offset = {c: big * (k + 1) for k, c in enumerate(gt)}  # per-camera track ids made distinct across cameras
    own = {c: np.column_stack([t[:, :1], t[:, 1:2] + offset[c], t[:, 2:]]) for c, t in tracks.items()}
    free = big * (len(gt) + 2)
    split = {c: split_at_switches(own[c], labels[c], free + 100_000 * k) for k, c in enumerate(gt)}
    rows = [("tracker ids", *score(gt, own)), ("run (global ids)", *score(gt, linked)),
            ("oracle linking", *score(gt, oracle_link(own, labels, free * 10))),
            ("oracle split + linking", *score(gt, oracle_link(split, labels, free * 10))),
            ]  # fmt: skip
    pieces = run_tracklets(run_dir, list(gt))
    if pieces is not None:  # what linking could make of the run's own cuts (split_switches)
        piece_labels = {c: box_labels(pieces[c], gt[c]) for c in gt}
        linked_pieces = oracle_link(pieces, piece_labels, free * 10)
        rows.insert(2, ("oracle linking of the run's tracklets", *score(gt, linked_pieces)))
        n = sum(len(np.unique(t[:, 1])) for t in pieces.values())
        mixed = sum(_people(piece_labels[c][pieces[c][:, 1] == t]) > 1 for c in gt for t in np.unique(pieces[c][:, 1]))
        print(f"{run_dir}: the run's cuts leave {n} tracklets, {mixed} of them hold more than one person")
    impure = sum(_people(labels[c][tracks[c][:, 1] == t]) > 1 for c in gt for t in np.unique(tracks[c][:, 1]))
    n_tracks = sum(len(np.unique(t[:, 1])) for t in tracks.values())
    print(f"{run_dir}: {impure} of {n_tracks} tracks hold boxes of more than one ground-truth person")
    return rows


def _people(lab: np.ndarray) -> int:
    """How many ground-truth people a track's box labels hold."""
    return len(np.unique(lab[lab >= 0]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pets", type=Path, default=PETS_RUN, help="a PETS09 view001 run folder")
    p.add_argument("--split", type=Path, default=SPLIT_RUN, help="a PETS split run folder")
    p.add_argument("--split-gt", type=Path, default=SPLIT_GT, help="the split's ground truth (left.txt, right.txt)")
    args = p.parse_args(argv)
    from pipeline.evaluation.mot_io import load_mot

    table: list[tuple[str, str, float, float, int]] = []
    if not PETS_GT.is_file():
        sys.exit(f"missing {PETS_GT}: this benchmark needs ../shared beside the checkout")
    for name, run_dir, gt in (
        ("PETS S2L1", args.pets, {"view001": load_mot(PETS_GT)} if PETS_GT.is_file() else None),
        ("PETS split, multi-camera", args.split,
         {c: load_mot(args.split_gt / f"{c}.txt") for c in ("left", "right")} if args.split_gt.is_dir() else None),
    ):  # fmt: skip
        if gt is None or not (run_dir / "mot_global").is_dir():
            print(f"skipped {name}: no run at {run_dir} (see the commands in this script's docstring)")
            continue
        table += [(name, *row) for row in ceilings(gt, run_dir)]
    print("| data | ids | IDF1 | HOTA | ids (GT) |")
    print("|---|---|---|---|---|")
    for data, ids, idf1, hota, n in table:
        print(f"| {data} | {ids} | {idf1:.3f} | {hota:.3f} | {n} (19) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
