"""Adaptation on a deployment's own footage: Market-1501 test tracklets, before and after, at threshold auto.

    python benchmarks/adapt_market.py [--epochs 4 --iters 100] [--out benchmarks/results/adapt_market]

The deployment. The query and bounding_box_test images of the 750 real test people are the unlabelled
footage of a 6-camera deployment; tracklets are (person, camera, sequence), as a perfect tracker would give
them, with each camera's sequences laid end to end in time (``benchmarks/market_tracklets.py``). Identity
labels form those tracklets and score the result; they never join two tracklets in training.

The loop. ``reid.train`` from OSNet x0.25 MSMT17 on those crops with its defaults for tracklet crops
(``--labels tracklets``: calibrated, cannot-link-constrained clustering of camera-centred tracklet means;
camera proxies; label-free check every epoch, best epoch kept, patience 2). The kept model re-embeds every
image (onnxruntime, as ``market_tracklets.py``) and the tracklets are re-linked offline and online at
threshold auto. Scores: multi-camera IDF1 over images (``image_idf1``), and per epoch the pseudo-labels'
quality against the hidden ids (pairwise precision and recall of "same label", the recall of cross-camera
same-person tracklet pairs, NMI) beside the label-free check, to show whether the check follows the truth.

Results (2026-12-01, 2-core CPU shared with other runs, ``python benchmarks/adapt_market.py --epochs 4 --iters
100 --threads 1 --label-fraction 0.8``, i.e. today's defaults; one run, 42 min of training; the run selected
epochs with the check before its consistency part existed, and every epoch improved, so epoch 4 was kept).
Multi-camera IDF1 over images at threshold auto, all 750 people:

| model | offline IDF1 | offline ids (750 people) | online IDF1 |
|---|---|---|---|
| OSNet x0.25 MSMT17 (start) | 0.602 | 1146 | 0.598 |
| adapted, pseudo-labels at fraction 0.8 (default) | **0.702** | 739 | **0.726** |
| adapted, pseudo-labels at fraction 0.6 (the linker's) | 0.542 | 468 | 0.668 |

Per epoch (fraction 0.8): pseudo-label pair precision / recall / NMI against the hidden ids 0.531 / 0.224 /
0.926 at the start, then 0.618 / 0.322 / 0.939, 0.649 / 0.374 / 0.943, 0.651 / 0.414 / 0.944, 0.670 / 0.436 /
0.947; offline IDF1 of each epoch's model 0.641, 0.667, 0.668, 0.699 (torch features; the table's 0.702 is the
onnxruntime re-embedding). At fraction 0.6 the labels over-merged (pair precision 0.27 -> 0.21, 820 -> 449
clusters for 750 people) and training confirmed it. The label-free check (today's, ``reid.trainer.model_check``)
scores the start 0.744, the fraction-0.8 model 0.840 (promoted) and the fraction-0.6 model 0.734 (refused):
its consistency part sees the over-merging (25 % / 13 % / 44 % of tracklets share a cluster with a
cannot-link partner). The Market-supervised OSNet x0.25 scores 0.900.

Re-run 2026-12-02 with the learned hand-over timing (``reid/handover.py``) in the linker and in the
pseudo-labels (crops stamped with Market's clock, frame / 25), same command and defaults, one run, 70 min of
training on a CPU shared with other runs; epoch 3 kept by the check (0.748 -> 0.844; epoch 4: 0.840):

| model | offline IDF1 | offline ids | online IDF1 |
|---|---|---|---|
| OSNet x0.25 MSMT17 (start) | 0.672 | 1043 | 0.669 |
| adapted (epoch 3) | **0.773** | 754 | **0.748** |

Offline +10.1 points over the start (issue 11's target: +10), online +7.9. The timing makes the
pseudo-labels much better from the start: pair precision / recall 0.747 / 0.353 (0.531 / 0.224 without),
cross-camera pair recall 0.358, NMI 0.950; per epoch 0.857 / 0.443, 0.887 / 0.494, 0.916 / 0.521, 0.914 /
0.553 (NMI 0.959 .. 0.967), offline IDF1 of each epoch's model 0.740, 0.743, 0.773, 0.759. (The start here,
0.672, is this benchmark's tracklet grouping; ``market_tracklets.py`` reports 0.666 for the same model.)

Re-run 2026-12-03 (session 17) with the self-consistent offline threshold (``reid/consistency.py``, default
``linking.consistent_threshold``; the pseudo-labels do not use it, the re-linking does). Same command, one run,
28.4 min of training while ``market_tracklets.py`` shared the CPU; epoch 4 kept by the check (0.811, 0.842,
0.835, 0.846):

| model | offline IDF1 | offline ids | online IDF1 |
|---|---|---|---|
| OSNet x0.25 MSMT17 (start) | 0.683 | 1615 | 0.671 |
| adapted (epoch 4) | **0.820** | 1193 | **0.772** |

Offline **+13.7** points over the start (the target: +10; +10.1 the day before without the raised threshold),
online +10.0. Pseudo-labels per epoch (pair precision / recall, cross-camera recall, NMI): start 0.747 / 0.353,
0.358, 0.950; then 0.858 / 0.444, 0.451, 0.960; 0.913 / 0.488, 0.495, 0.964; 0.920 / 0.537, 0.544, 0.966;
0.932 / 0.562, 0.569, 0.969; offline IDF1 of each epoch's model 0.745, 0.789, 0.802, 0.820.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.market_tracklets import (  # noqa: E402
    FPS as MARKET_FPS,
)
from benchmarks.market_tracklets import (
    SHARED,
    by_track,
    group_tracklets,
    image_idf1,
    load_features,
    market_records,
    per_image,
    run_online,
    sequence_offsets,
)

START = (str(SHARED / "weights/osnet_x0_25_msmt17.pth"), "osnet_x0_25")
log = logging.getLogger("adapt_market")


def label_quality(labels: np.ndarray, person: np.ndarray, tracklet: np.ndarray, camera: np.ndarray) -> dict:
    """Pseudo-labels (one per tracklet, -1 outlier) against hidden person ids, counted over tracklets.

    Returns precision / recall of same-label tracklet pairs, the recall of same-person pairs in different
    cameras, and NMI over clustered images.
    """
    from benchmarks.harvested_crops import nmi

    _, first = np.unique(tracklet, return_index=True)
    lab, pid, cam = labels[first], person[first], camera[first]
    same_label = (lab[:, None] == lab[None, :]) & (lab[:, None] >= 0)
    same_person = pid[:, None] == pid[None, :]
    upper = np.triu(np.ones_like(same_label), 1)
    cross = upper & (cam[:, None] != cam[None, :])
    tp = (same_label & same_person & upper).sum()
    return {
        "pair_precision": float(tp / max(1, (same_label & upper).sum())),
        "pair_recall": float(tp / max(1, (same_person & upper).sum())),
        "cross_camera_recall": float((same_label & same_person & cross).sum() / max(1, (same_person & cross).sum())),
        "nmi": nmi(person[labels >= 0], labels[labels >= 0]),
    }


def linking_scores(data, feats: np.ndarray) -> dict:
    """Offline and online IDF1 at threshold auto from (N, D) image features in ``data``'s order."""
    from pipeline.identity.linker import OnlineLinker, offline_relink

    _, tracklets = run_online(data, feats, None, "frames")
    mapping = offline_relink(tracklets, threshold="auto")
    offline = image_idf1(data.pid, per_image(data, by_track(tracklets, mapping, len(data))))
    _, final = run_online(data, feats, lambda g: OnlineLinker(g, threshold="auto", min_crops=1), "frames")
    online = by_track(final, {t.tracklet_id: t.global_id for t in final}, len(data))
    return {"offline": offline["idf1"], "offline_ids": offline["pred_ids"],
            "online": image_idf1(data.pid, per_image(data, online))["idf1"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=str(SHARED / "data/market1501/Market-1501-v15.09.15.zip"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/adapt_market"))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--labels", default=None, choices=["tracklets", "dbscan"], help="the trainer's --labels")
    p.add_argument("--label-fraction", type=float, default=None, help="the trainer's --label-fraction")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)

    from reid.data.datasets import UnlabeledImages
    from reid.data.market1501 import Market1501
    from reid.train import train
    from reid.trainer.config import make_config
    from reid.trainer.data import TrainData
    from reid.trainer.tracklet_labels import tracklet_pseudo_labels

    market = Market1501(args.root)
    records = market_records(market)
    data = group_tracklets(records, sequence_offsets(records))
    paths = [records[i].path for i in data.source]
    cams = data.camera - 1
    train_set = UnlabeledImages(market.store, paths, cams, tracklet_ids=data.tracklet)
    stamps = data.frame / MARKET_FPS  # the clock the linker sees (market_tracklets.py)
    crops = TrainData(train_set, cams, data.tracklet, data.frame, 0, None, "market1501 test tracklets", stamps)
    start_feats = load_features("osnet_x0_25_msmt17", *START, market, records, args.threads or None)[data.source]
    t0 = time.perf_counter()
    before = linking_scores(data, start_feats)
    log.info("start model: %s (%.0f s)", before, time.perf_counter() - t0)

    def score_epoch(row: dict, features) -> None:  # labels: scoring only, never fed back
        from pipeline.identity.linker import offline_relink

        if features is None:
            return
        result = tracklet_pseudo_labels(features.numpy(), data.tracklet, cams, data.frame, min_crops=4,
                                        fraction=cfg.label_fraction, timestamps=stamps)  # fmt: skip
        row.update(label_quality(result.labels, data.pid, data.tracklet, cams))
        _, tracklets = run_online(data, features.numpy(), None, "frames")  # offline IDF1 of this epoch's model
        ids = by_track(tracklets, offline_relink(tracklets, threshold="auto"), len(data))
        row["offline_idf1"] = image_idf1(data.pid, per_image(data, ids))["idf1"]

    options = {k: v for k, v in (("label_fraction", args.label_fraction), ("labels", args.labels)) if v is not None}
    cfg = make_config({"dataset": "market1501", "root": args.root, "init": START[0], "arch": START[1],
                       "out": str(args.out), "epochs": args.epochs, "iters": args.iters, "threads": args.threads,
                       "evaluate": False, **options})  # fmt: skip
    start_labels = tracklet_pseudo_labels(start_feats, data.tracklet, cams, data.frame, min_crops=4,
                                          fraction=cfg.label_fraction, timestamps=stamps)  # fmt: skip
    quality_before = label_quality(start_labels.labels, data.pid, data.tracklet, cams)
    t0 = time.perf_counter()
    history = train(cfg, created_by="benchmarks/adapt_market.py", data=crops, on_epoch=score_epoch)
    train_min = (time.perf_counter() - t0) / 60
    from benchmarks.market_tracklets import weights_stamp

    ckpt = str(args.out / "checkpoint.pth")
    name = f"adapt_{weights_stamp(ckpt)[:10]}"
    adapted_feats = load_features(name, ckpt, None, market, records, args.threads or None)[data.source]
    after = linking_scores(data, adapted_feats)
    result = {"before": before, "after": after, "labels_before": quality_before, "train_min": round(train_min, 1),
              "epochs": [{k: v for k, v in r.items() if k != "losses"} for r in history]}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
