"""The Market-1501 tracklet-linking benchmark's own pieces on inputs with known answers (no data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from market_tracklets import (  # noqa: E402
    greedy_ids,
    greedy_stream_links,
    group_tracklets,
    image_idf1,
    links_to_ids,
    sequence_offsets,
)

from pipeline.evaluation.evaluate import multicamera_idf1  # noqa: E402
from reid.data.market1501 import ImageRecord  # noqa: E402


def record(pid: int, cam: int, seq: int, frame: int) -> ImageRecord:
    return ImageRecord(f"{pid:04d}_c{cam + 1}s{seq}_{frame:06d}_00.jpg", pid, cam, seq, frame)


def test_image_idf1_equals_multicamera_idf1() -> None:
    rng = np.random.default_rng(3)
    n = 300
    gt = rng.integers(1, 12, n)
    pred = np.where(rng.random(n) < 0.7, gt, rng.integers(0, 15, n))
    pred[rng.random(n) < 0.1] = -1  # images without a prediction
    ours = image_idf1(gt, pred)
    # every image is its own box at its own frame of one camera: boxes only match themselves
    frames = np.arange(1, n + 1, dtype=float)
    box = np.tile([10.0, 10.0, 20.0, 40.0], (n, 1))
    gt_rows = np.column_stack([frames, gt, box, np.ones(n), np.ones(n), np.ones(n), np.ones(n)])
    keep = pred >= 0
    pred_rows = np.column_stack([frames, pred, box, np.ones(n), -np.ones((n, 3))])[keep]
    ref = multicamera_idf1({"c1": gt_rows}, {"c1": pred_rows})
    assert ours["idtp"] == ref["idtp"] and ours["idfp"] == ref["idfp"] and ours["idfn"] == ref["idfn"]
    assert abs(ours["idf1"] - ref["idf1"]) < 1e-12
    assert image_idf1(gt, gt)["idf1"] == 1.0


def test_group_tracklets_lays_sequences_end_to_end() -> None:
    records = [record(5, 0, 1, 10), record(5, 0, 1, 12), record(5, 0, 2, 3), record(7, 1, 1, 4),
               record(0, 0, 1, 11), record(9, 0, 2, 1)]  # fmt: skip
    offsets = sequence_offsets(records)
    assert offsets == {(0, 1): 0, (0, 2): 13, (1, 1): 0}  # camera 0's sequence 2 starts after frame 12
    data = group_tracklets(records, offsets)
    assert len(data) == 4 and 0 not in data.pid  # the distractor (pid 0) is left out
    assert data.t_first.tolist() == [4, 10, 14, 16]  # start order: (pid 7), (pid 5, s1), (pid 9), (pid 5, s2)
    assert data.t_pid.tolist() == [7, 5, 9, 5] and data.t_camera.tolist() == [2, 1, 1, 1]
    assert data.frame.tolist() == sorted(data.frame.tolist())


def test_greedy_links_to_the_nearest_earlier_tracklet() -> None:
    a, b = np.eye(4, dtype=np.float32)[:2]
    means = np.stack([a, b, 0.9 * a + 0.1 * b, b])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    strict, loose = greedy_ids(means, [0.999, 0.5])
    assert strict.tolist() == [0, 1, 2, 1] and loose.tolist() == [0, 1, 0, 1]


def test_stream_greedy_sees_only_the_crops_seen_so_far() -> None:
    # tracklet 0 (camera 1): e0 at frame 0, e1 at frame 5; tracklet 1 (camera 2): e1 at frame 2;
    # tracklet 2 (camera 3): e1 at frame 6
    records = [record(1, 0, 1, 0), record(1, 0, 1, 5), record(2, 1, 1, 2), record(3, 2, 1, 6)]
    e = np.eye(3, dtype=np.float32)
    feats = np.stack([e[0], e[1], e[1], e[1]])
    data = group_tracklets(records, sequence_offsets(records))
    best, best_sim = greedy_stream_links(data, feats[data.source])
    # at frame 2 tracklet 0 has only shown e0: tracklet 1 is orthogonal to it (full means would give 0.71)
    assert best[1] == 0 and abs(best_sim[1]) < 1e-9
    # at frame 6 tracklet 0's mean is (e0 + e1) / sqrt 2 and tracklet 1 is e1: the nearest is tracklet 1
    assert best[2] == 1 and abs(best_sim[2] - 1.0) < 1e-9 and best_sim[0] == -np.inf
    assert links_to_ids(best, best_sim, [0.5])[0].tolist() == [0, 1, 1]
    full = np.stack([(e[0] + e[1]) / np.sqrt(2), e[1], e[1]])
    assert greedy_ids(full, [0.5])[0].tolist() == [0, 0, 0]  # the clairvoyant rule links tracklet 1 to 0


def test_auto_rows_report_the_threshold_offline_linking_used() -> None:
    import argparse

    from market_tracklets import Part, auto_markdown, auto_rows, split_parts

    rng = np.random.default_rng(0)
    records, feats = [], []
    looks = rng.standard_normal((12, 16))
    for pid in range(1, 13):
        for cam in (0, 1, 2):
            for frame in range(4):
                records.append(record(pid, cam, 1, 10 * pid + frame))
                feats.append(looks[pid - 1] + 0.2 * rng.standard_normal(16))
    feats = np.array(feats, np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    offsets = sequence_offsets(records)
    parts = {k: Part(d, f) for k, (d, f) in split_parts(records, feats, offsets).items()}
    everyone = group_tracklets(records, offsets)
    parts["all"] = Part(everyone, feats[everyone.source])
    options = argparse.Namespace(margin=0.05, split=True, k1=3, k2=2, grid=[0.3, 0.5, 0.7], oracle=False)
    rows = auto_rows("toy", parts, options, {})
    offline = [r for r in rows if r["method"] == "offline"]
    assert len(offline) == 2 and all(r["used_t"] >= r["fitted_t"] for r in offline)
    assert all(r["idf1"] > 0.9 for r in offline)  # twelve distinct people, each seen by three cameras
    assert f"{offline[0]['fitted_t']:.3f} -> {offline[0]['used_t']:.3f}" in auto_markdown(rows)
