"""Our tracking metrics equal TrackEval's (MotChallenge2DBox + HOTA / CLEAR / Identity) to 1e-6.

TrackEval reads the same rows from MOTChallenge files written to ``tmp_path``, so its loading and
preprocessing are part of the reference, not re-implemented here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluation.evaluate import combine_results, evaluate_sequence
from pipeline.evaluation.mot_io import load_mot

trackeval = pytest.importorskip("trackeval")

from test_evaluate import CASES, det, gt_rows, pred_rows  # noqa: E402  (after the importorskip)

TOL = 1e-6
BENCHMARK = {"mot15": "MOT15", "mot17": "MOT17", "mot20": "MOT20"}


def write_mot(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(repr(float(v)) for v in row) for row in rows]  # round-trips exactly
    path.write_text("".join(line + "\n" for line in lines))


def trackeval_metrics(tmp: Path, seqs: dict[str, tuple[np.ndarray, np.ndarray]], fmt: str, iou: float = 0.5):
    """TrackEval per-sequence results and their combination: {seq: {metric: value}}, plus 'COMBINED'."""
    lengths = {}
    for name, (gt, pred) in seqs.items():
        write_mot(tmp / "gt" / f"{name}.txt", gt)
        write_mot(tmp / "trackers" / "ours" / f"{name}.txt", pred)
        lengths[name] = int(max([1, *gt[:, 0], *pred[:, 0]]))
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(tmp / "gt"),
            "TRACKERS_FOLDER": str(tmp / "trackers"),
            "TRACKERS_TO_EVAL": ["ours"],
            "BENCHMARK": BENCHMARK[fmt],
            "SEQ_INFO": lengths,
            "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt",
            "SKIP_SPLIT_FOL": True,
            "TRACKER_SUB_FOLDER": "",
            "PRINT_CONFIG": False,
        }
    )
    metric_config = {"THRESHOLD": iou, "PRINT_CONFIG": False}
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR(metric_config),
        trackeval.metrics.Identity(metric_config),
    ]
    per_metric = {m: {} for m in range(len(metrics))}
    for name in seqs:
        data = dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data("ours", name), "pedestrian")
        for i, metric in enumerate(metrics):
            per_metric[i][name] = metric.eval_sequence(data)
    out = {name: _flatten([per_metric[i][name] for i in per_metric]) for name in seqs}
    out["COMBINED"] = _flatten([m.combine_sequences(per_metric[i]) for i, m in enumerate(metrics)])
    return out


def _flatten(results: list[dict]) -> dict[str, float]:
    hota, clear, ident = results
    res = {k: float(np.mean(hota[k])) for k in ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr")}
    res.update({"MOTA": clear["MOTA"], "IDSW": clear["IDSW"], "FP": clear["CLR_FP"], "FN": clear["CLR_FN"]})
    res.update({"TP": clear["CLR_TP"], "MT": clear["MT"], "ML": clear["ML"], "Frag": clear["Frag"]})
    res.update({k: ident[k] for k in ("IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN")})
    return res


def assert_matches(ours: dict, ref: dict, label: str) -> None:
    bad = {k: (ours[k], v) for k, v in ref.items() if abs(float(ours[k]) - float(v)) > TOL}
    assert not bad, f"{label}: ours vs trackeval differ: {bad}"


def random_scene(rng: np.random.Generator, fmt: str, n_people: int = 10, n_frames: int = 60):
    """Random walking boxes as gt; prediction: jitter, drops, id swap, fragments, FPs, duplicate tracks."""
    rows = []
    for pid in range(1, n_people + 1):
        start, length = rng.integers(1, n_frames // 2), rng.integers(5, n_frames // 2)
        xy = rng.uniform(0, 120, 2) + np.cumsum(rng.normal(0, 4, (length, 2)), axis=0)
        wh = rng.uniform(20, 60, 2)
        for k in range(length):
            rows.append([start + k, pid, *xy[k], *wh])
    base = np.asarray(rows)
    n = len(base)
    if fmt == "mot15":
        gt = np.column_stack([base, (rng.random(n) > 0.05).astype(float), -np.ones((n, 3))])
    else:
        classes = rng.choice([1, 1, 1, 1, 1, 1, 2, 7, 8, 12, 3, 6], n)
        consider = np.where(classes == 1, (rng.random(n) > 0.05).astype(float), 0.0)
        gt = np.column_stack([base, consider, classes, rng.random(n)])
    keep = rng.random(n) > 0.15
    pred = base[keep].copy()
    pred[:, 2:6] += rng.normal(0, 3, (len(pred), 4))
    late = pred[:, 0] > n_frames // 2
    swap = {1: 2, 2: 1}
    pred[late, 1] = [swap.get(int(i), i) for i in pred[late, 1]]
    frag = (pred[:, 1] == 3) & (pred[:, 0] % 10 > 6)
    pred[frag, 1] = 100
    fps = np.column_stack(
        [
            rng.integers(1, n_frames, 12),
            200 + np.arange(12),
            rng.uniform(0, 300, (12, 2)),
            rng.uniform(20, 60, (12, 2)),
        ]
    )
    shadow = pred[np.isin(pred[:, 1], [4, 5])].copy()  # duplicate tracks competing for the same people
    shadow[:, 1] += 300
    shadow[:, 2:6] += rng.normal(0, 3, (len(shadow), 4))
    pred = np.concatenate([pred, fps, shadow])
    pred = np.column_stack([pred, np.ones(len(pred)), -np.ones((len(pred), 3))])
    return gt, pred[rng.permutation(len(pred))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_cases_match_trackeval(name: str, tmp_path: Path) -> None:
    gt, pred, _ = CASES[name]
    ref = trackeval_metrics(tmp_path, {"s": (gt, pred)}, "mot15")["s"]
    assert_matches(evaluate_sequence(gt, pred), ref, name)


@pytest.mark.parametrize(
    ("seed", "fmt", "iou"), [(0, "mot15", 0.5), (1, "mot15", 0.3), (2, "mot17", 0.5), (3, "mot20", 0.5)]
)
def test_random_scenes_match_trackeval(seed: int, fmt: str, iou: float, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    seqs = {f"cam{i}": random_scene(rng, fmt) for i in range(3)}
    ref = trackeval_metrics(tmp_path, seqs, fmt, iou)
    ours = {name: evaluate_sequence(gt, pred, iou=iou, gt_format=fmt) for name, (gt, pred) in seqs.items()}
    for name in seqs:
        assert_matches(ours[name], ref[name], f"seed {seed} {name}")
    assert_matches(combine_results(list(ours.values())), ref["COMBINED"], f"seed {seed} combined")
    assert ours["cam0"]["IDSW"] > 0 and ours["cam0"]["FP"] > 0, "the perturbation must produce errors"


def perturb_pets(gt: np.ndarray) -> np.ndarray:
    """Deterministic prediction from PETS gt: jitter, drop 10% of rows, swap two ids after frame 400, add FPs."""
    rng = np.random.default_rng(2009)
    pred = gt[rng.random(len(gt)) > 0.10, :6].copy()
    pred[:, 2:6] += rng.normal(0, 2.5, (len(pred), 4))
    late = pred[:, 0] > 400
    ids = pred[late, 1]
    a, b = ids == 1, ids == 9
    ids[a], ids[b] = 9, 1
    pred[late, 1] = ids
    n_fp = 150
    fps = np.column_stack(
        [
            rng.integers(1, 796, n_fp),
            1000 + rng.integers(0, 30, n_fp),
            rng.uniform(0, 700, (n_fp, 2)),
            [[30, 80]] * n_fp,
        ]
    )
    fps = fps[np.unique(fps[:, :2], axis=0, return_index=True)[1]]
    pred = np.concatenate([pred, fps])
    return np.column_stack([pred, np.ones(len(pred)), -np.ones((len(pred), 3))])


def test_pets_perturbed_matches_trackeval(shared, tmp_path: Path) -> None:
    gt = load_mot(shared("data/pets09_s2l1/mot15/gt.txt"))
    pred = perturb_pets(gt)
    start = time.process_time()
    ours = evaluate_sequence(gt, pred)
    elapsed = time.process_time() - start
    ref = trackeval_metrics(tmp_path, {"pets": (gt, pred)}, "mot15")["pets"]
    assert_matches(ours, ref, "PETS S2L1")
    assert ours["IDSW"] >= 2 and ours["FP"] > 150 and 0.5 < ours["HOTA"] < 0.95
    assert elapsed < 2.0, f"evaluating PETS took {elapsed:.2f} s of CPU, expected < 2 s"


def test_trackeval_sees_the_same_file_we_wrote(tmp_path: Path) -> None:
    """Guard for the harness itself: a perfect prediction must score 1 in TrackEval too."""
    gt = gt_rows([det(1, 1, 0, 0, 10, 20), det(2, 1, 1, 0, 10, 20)])
    ref = trackeval_metrics(
        tmp_path, {"s": (gt, pred_rows([det(1, 5, 0, 0, 10, 20), det(2, 5, 1, 0, 10, 20)]))}, "mot15"
    )
    assert ref["s"]["HOTA"] == pytest.approx(1.0) and ref["s"]["IDF1"] == pytest.approx(1.0)
