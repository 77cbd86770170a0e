"""Tracking metrics on hand-made cases with answers worked out by hand, file I/O, CLI and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluation.evaluate import evaluate_folders, evaluate_paths, evaluate_sequence, main, multicamera_idf1
from pipeline.evaluation.metrics_mot import box_iou_xywh
from pipeline.evaluation.mot_io import load_mot


def det(frame: int, tid: int, x: float, y: float = 0.0, w: float = 10.0, h: float = 20.0) -> tuple:
    return (frame, tid, x, y, w, h)


def track(tid: int, frames, x: float = 0.0) -> list[tuple]:
    return [det(f, tid, x) for f in frames]


def gt_rows(dets: list[tuple], consider: list[int] | None = None) -> np.ndarray:
    """MOT15 ground truth (N, 10): frame,id,x,y,w,h,consider,-1,-1,-1."""
    base = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
    flag = np.ones(len(base)) if consider is None else np.asarray(consider, dtype=np.float64)
    return np.column_stack([base, flag, -np.ones((len(base), 3))])


def pred_rows(dets: list[tuple]) -> np.ndarray:
    """Predictions (N, 10): frame,id,x,y,w,h,conf,-1,-1,-1."""
    base = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
    return np.column_stack([base, np.ones(len(base)), -np.ones((len(base), 3))])


F4 = range(1, 5)
# name -> (gt, pred, expected); every number worked out by hand (comments give the reasoning)
CASES = {
    "perfect": (
        gt_rows(track(1, F4) + track(2, F4, x=100)),
        pred_rows(track(7, F4) + track(9, F4, x=100)),
        {
            "HOTA": 1,
            "DetA": 1,
            "AssA": 1,
            "MOTA": 1,
            "IDF1": 1,
            "IDP": 1,
            "IDR": 1,
            "IDSW": 0,
            "FP": 0,
            "FN": 0,
            "GT_IDs": 2,
            "PRED_IDs": 2,
        },
    ),
    # one person, predicted id changes after frame 2: A(c) = 2 / (4 + 2 - 2) = 0.5 for every match
    "one_id_switch": (
        gt_rows(track(1, F4)),
        pred_rows(track(1, [1, 2]) + track(2, [3, 4])),
        {
            "HOTA": 0.5**0.5,
            "DetA": 1,
            "AssA": 0.5,
            "MOTA": 0.75,
            "IDF1": 0.5,
            "IDP": 0.5,
            "IDR": 0.5,
            "IDSW": 1,
            "FP": 0,
            "FN": 0,
        },
    ),
    # the switch is counted against the last match even across frames without the person
    "switch_after_gap": (
        gt_rows(track(1, [1, 2, 5, 6])),
        pred_rows(track(1, [1, 2]) + track(2, [5, 6])),
        {"HOTA": 0.5**0.5, "DetA": 1, "AssA": 0.5, "MOTA": 0.75, "IDF1": 0.5, "IDSW": 1, "FP": 0, "FN": 0},
    ),
    # two people swap predicted ids: every pair overlaps 2 of 4 boxes, A = 2 / (4 + 4 - 2)
    "two_ids_swap": (
        gt_rows(track(1, F4) + track(2, F4, x=100)),
        pred_rows(track(1, [1, 2]) + track(2, [3, 4]) + track(2, [1, 2], x=100) + track(1, [3, 4], x=100)),
        {
            "HOTA": (1 / 3) ** 0.5,
            "DetA": 1,
            "AssA": 1 / 3,
            "MOTA": 0.75,
            "IDF1": 0.5,
            "IDSW": 2,
            "FP": 0,
            "FN": 0,
        },
    ),
    "all_missed": (
        gt_rows(track(1, F4)),
        pred_rows(track(1, F4, x=500)),
        {
            "HOTA": 0,
            "DetA": 0,
            "AssA": 0,
            "MOTA": -1,
            "IDF1": 0,
            "IDP": 0,
            "IDR": 0,
            "IDSW": 0,
            "FP": 4,
            "FN": 4,
        },
    ),
    # DetA = 4 / (4 + 2), AssA = 1; IDTP 4, IDFP 2
    "extra_fp_track": (
        gt_rows(track(1, F4)),
        pred_rows(track(1, F4) + track(2, [1, 2], x=500)),
        {
            "HOTA": (2 / 3) ** 0.5,
            "DetA": 2 / 3,
            "AssA": 1,
            "MOTA": 0.5,
            "IDF1": 0.8,
            "IDP": 2 / 3,
            "IDR": 1,
            "FP": 2,
            "FN": 0,
        },
    ),
    # IoU 1/3 matches at alpha 0.05 .. 0.30 (6 of 19 alphas), never at the CLEAR / ID threshold 0.5
    "low_iou": (
        gt_rows(track(1, [1, 2])),
        pred_rows(track(4, [1, 2], x=5)),
        {"HOTA": 6 / 19, "DetA": 6 / 19, "AssA": 6 / 19, "MOTA": -1, "IDF1": 0, "IDSW": 0, "FP": 2, "FN": 2},
    ),
    # TrackEval leaves MOTA at 0 when one side is empty
    "empty_pred": (
        gt_rows(track(1, [1, 2, 3])),
        pred_rows([]),
        {
            "HOTA": 0,
            "DetA": 0,
            "AssA": 0,
            "MOTA": 0,
            "IDF1": 0,
            "IDSW": 0,
            "FP": 0,
            "FN": 3,
            "GT_IDs": 1,
            "PRED_IDs": 0,
        },
    ),
    "empty_gt": (
        gt_rows([]),
        pred_rows(track(3, [1, 2, 3])),
        {
            "HOTA": 0,
            "DetA": 0,
            "AssA": 0,
            "MOTA": 0,
            "IDF1": 0,
            "IDSW": 0,
            "FP": 3,
            "FN": 0,
            "GT_IDs": 0,
            "PRED_IDs": 1,
        },
    ),
    "both_empty": (gt_rows([]), pred_rows([]), {"HOTA": 0, "MOTA": 0, "IDF1": 0, "FP": 0, "FN": 0}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_cases(name: str) -> None:
    gt, pred, expected = CASES[name]
    res = evaluate_sequence(gt, pred)
    for key, value in expected.items():
        assert res[key] == pytest.approx(value, abs=1e-9), f"{name}: {key} = {res[key]}, expected {value}"


def test_arbitrary_frame_and_id_numbers_change_nothing() -> None:
    gt, pred, _ = CASES["two_ids_swap"]
    shifted_gt, shifted_pred = gt.copy(), pred.copy()
    shifted_gt[:, 0] = gt[:, 0] * 1000 - 7000  # negative, sparse frame numbers
    shifted_pred[:, 0] = pred[:, 0] * 1000 - 7000
    shifted_gt[:, 1] = -gt[:, 1] * 12345
    shifted_pred[:, 1] += 10**9
    ref, res = evaluate_sequence(gt, pred), evaluate_sequence(shifted_gt, shifted_pred)
    for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN"):
        assert res[key] == pytest.approx(ref[key])


# (gt_format, gt rows (9 or 10 columns), ignore_zero_marked, expected FP, TP, GT_IDs, PRED_IDs)
# gt id 1 is a pedestrian; id 2 is ignored (MOT15 consider 0 / MOT17 static_person); id 3 is a car (MOT17)
PRED_ON_ALL = pred_rows([det(1, 5, 0), det(2, 5, 0), det(1, 6, 100), det(1, 7, 200)])
MOT15_GT = gt_rows([det(1, 1, 0), det(2, 1, 0), det(1, 2, 100), det(1, 3, 500)], consider=[1, 1, 0, 1])
MOT17_GT = np.array(
    [[1, 1, 0, 0, 10, 20, 1, 1, 1.0], [2, 1, 0, 0, 10, 20, 1, 1, 1.0], [1, 2, 100, 0, 10, 20, 0, 7, 1.0]]
    + [[1, 3, 200, 0, 10, 20, 0, 3, 1.0]]
)
IGNORE_CASES = [
    ("mot15", MOT15_GT, False, 2, 2, 2, 3),  # TrackEval: pred on consider==0 stays and is a FP
    ("mot15", MOT15_GT, True, 1, 2, 2, 2),  # our option: it is dropped
    ("mot17", MOT17_GT, False, 1, 2, 1, 2),  # distractor match dropped, pred on the car is a FP
    ("mot17", MOT17_GT, True, 0, 2, 1, 1),  # option: the car (consider 0) match is dropped too
    ("auto", MOT17_GT, False, 1, 2, 1, 2),  # 9 columns -> MOT17 conventions
]


@pytest.mark.parametrize(("fmt", "gt", "ignore", "fp", "tp", "gt_ids", "pred_ids"), IGNORE_CASES)
def test_ignored_ground_truth(fmt, gt, ignore, fp, tp, gt_ids, pred_ids) -> None:
    res = evaluate_sequence(gt, PRED_ON_ALL, gt_format=fmt, ignore_zero_marked=ignore)
    got = (res["FP"], res["TP"], res["GT_IDs"], res["PRED_IDs"])
    assert got == (fp, tp, gt_ids, pred_ids)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 10, 10], [20, 20, 5, 5]], [[1 / 3, 0.0]]),
        ([[0, 0, 0, 10]], [[0, 0, 10, 10]], [[0.0]]),  # degenerate box
        (np.zeros((0, 4)), [[0, 0, 1, 1]], np.zeros((0, 1))),
        ([[0, 0, 1, 1]], np.zeros((0, 4)), np.zeros((1, 0))),
    ],
)
def test_box_iou_xywh(a, b, expected) -> None:
    np.testing.assert_allclose(box_iou_xywh(np.asarray(a, float), np.asarray(b, float)), np.asarray(expected))


# two cameras; gt person 1 walks from cam A (frames 1-4) to cam B (frames 5-8); person 2 stays in cam B
MC_GT = {"A": gt_rows(track(1, F4)), "B": gt_rows(track(1, range(5, 9)) + track(2, F4, x=100))}
MC_CASES = [
    # global predicted ids: same as per-camera combined (every box right)
    (
        {"A": pred_rows(track(10, F4)), "B": pred_rows(track(10, range(5, 9)) + track(20, F4, x=100))},
        1,
        1,
        12,
        0,
        0,
    ),
    # per-camera ids: person 1 is 10 in A and 11 in B; only one half can match: IDTP 8 of 12
    (
        {"A": pred_rows(track(10, F4)), "B": pred_rows(track(11, range(5, 9)) + track(20, F4, x=100))},
        2 / 3,
        1,
        8,
        4,
        4,
    ),
    # cam B missing from the predictions: person 1 matched in A only
    ({"A": pred_rows(track(10, F4))}, 0.5, 0.5, 4, 0, 8),
]


@pytest.mark.parametrize(("pred", "idf1", "combined_idf1", "idtp", "idfp", "idfn"), MC_CASES)
def test_multicamera_idf1(pred, idf1, combined_idf1, idtp, idfp, idfn, tmp_path: Path) -> None:
    res = multicamera_idf1(MC_GT, pred)
    assert (res["idtp"], res["idfp"], res["idfn"]) == (idtp, idfp, idfn)
    assert res["idf1"] == pytest.approx(idf1)
    for cam, rows in MC_GT.items():
        write_rows(tmp_path / "gt" / f"{cam}.txt", rows)
    for cam, rows in pred.items():
        write_rows(tmp_path / "run" / "mot" / f"{cam}.txt", rows)
    folders = evaluate_folders(tmp_path / "gt", tmp_path / "run")
    assert folders["multicamera"] == pytest.approx(res)
    assert folders["combined"]["IDF1"] == pytest.approx(combined_idf1)


def test_multicamera_rejects_unknown_camera() -> None:
    with pytest.raises(ValueError, match="without ground truth.*'C'"):
        multicamera_idf1(MC_GT, {"C": pred_rows(track(1, F4))})


def write_rows(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows))


def test_cli_folders_table_and_json(tmp_path: Path, capsys) -> None:
    for cam, rows in MC_GT.items():
        write_rows(tmp_path / "gt" / f"{cam}.txt", rows)
    write_rows(tmp_path / "run" / "mot" / "A.txt", pred_rows(track(10, F4)))
    write_rows(tmp_path / "run" / "mot" / "B.txt", pred_rows(track(11, range(5, 9)) + track(20, F4, x=100)))
    out_json = tmp_path / "out" / "metrics.json"
    assert main(["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "run"), "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["camera", "HOTA", "DetA", "AssA"]
    assert [line.split()[0] for line in lines[1:4]] == ["A", "B", "COMBINED"]
    assert lines[3].split()[5] == "100.000" and "IDF1 66.667" in lines[4]
    saved = json.loads(out_json.read_text())
    assert saved["multicamera"]["idtp"] == 8 and len(saved["combined"]["per_alpha"]["HOTA"]) == 19


def test_run_folder_scores_global_ids_when_the_run_linked(tmp_path: Path, capsys) -> None:
    # The tracker's per-camera ids (mot/) split person 1 across cameras; mot_global/ joins them.
    for cam, rows in MC_GT.items():
        write_rows(tmp_path / "gt" / f"{cam}.txt", rows)
    write_rows(tmp_path / "run" / "mot" / "A.txt", pred_rows(track(10, F4)))
    write_rows(tmp_path / "run" / "mot" / "B.txt", pred_rows(track(11, range(5, 9)) + track(20, F4, x=100)))
    write_rows(tmp_path / "run" / "mot_global" / "A.txt", pred_rows(track(1, F4)))
    write_rows(tmp_path / "run" / "mot_global" / "B.txt", pred_rows(track(1, range(5, 9)) + track(2, F4, x=100)))
    result = evaluate_paths(tmp_path / "gt", tmp_path / "run")
    assert result["multicamera"]["idf1"] == 1.0 and result["pred_dir"].endswith("mot_global")
    per_camera = evaluate_paths(tmp_path / "gt", tmp_path / "run" / "mot")
    assert per_camera["multicamera"]["idf1"] < 1.0
    assert main(["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "run" / "mot")]) == 0
    assert "per-camera tracker ids" in capsys.readouterr().out.splitlines()[-1]


def test_cli_single_files(tmp_path: Path, capsys) -> None:
    gt, pred, _ = CASES["one_id_switch"]
    write_rows(tmp_path / "gt.txt", gt)
    write_rows(tmp_path / "pred.txt", pred)
    assert main(["--gt", str(tmp_path / "gt.txt"), "--pred", str(tmp_path / "pred.txt")]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[0] == "pred" and row[4] == "75.000" and row[8] == "1"  # named after the prediction file (its camera)


def test_one_gt_file_against_a_one_camera_run_folder(tmp_path: Path, capsys) -> None:
    gt, pred, _ = CASES["one_id_switch"]
    write_rows(tmp_path / "gt.txt", gt)
    write_rows(tmp_path / "run" / "mot" / "view001.txt", gt)  # tracker ids: perfect
    write_rows(tmp_path / "run" / "mot_global" / "view001.txt", pred)  # global ids: one switch, scored first
    result = evaluate_paths(tmp_path / "gt.txt", tmp_path / "run")
    assert list(result["cameras"]) == ["view001"] and result["combined"]["IDSW"] == 1
    assert main(["--gt", str(tmp_path / "gt.txt"), "--pred", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("mot_global (global ids)")
    write_rows(tmp_path / "run" / "mot_global" / "view002.txt", pred)
    with pytest.raises(ValueError, match=r"holds 2 \(view001, view002\)"):
        evaluate_paths(tmp_path / "gt.txt", tmp_path / "run")


def test_extra_prediction_camera_is_an_error(tmp_path: Path) -> None:
    write_rows(tmp_path / "gt" / "A.txt", MC_GT["A"])
    write_rows(tmp_path / "pred" / "A.txt", MC_GT["A"])
    write_rows(tmp_path / "pred" / "Z9.txt", MC_GT["A"])
    with pytest.raises(ValueError, match="Z9.txt"):
        evaluate_folders(tmp_path / "gt", tmp_path / "pred")
    with pytest.raises(SystemExit):
        main(["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")])


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("", (0, 10)),
        ("1,2,3,4,5,6,1,-1,-1,-1\n2,2,3,4,5,6,1,-1,-1,-1\n", (2, 10)),
        ("1 2 3 4 5 6\n", (1, 6)),  # whitespace-separated
        ("1, 2, 3.5, 4, 5, 6, 0.9, -1, -1, -1,\r\n\r\n", (1, 10)),  # trailing comma, CRLF, blank line
    ],
)
def test_load_mot(text: str, shape: tuple, tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode())
    assert load_mot(path).shape == shape


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3,4,5\n", "at least 6 columns"),
        ("1,2,3,4,5,6\n1,2,3\n", "equal column counts"),
        ("1.5,2,3,4,5,6\n", "integer frame and id"),
        ("1,a,3,4,5,6\n", "rows of numbers"),
    ],
)
def test_load_mot_errors(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_mot(path)


def test_missing_files_and_mismatched_kinds(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected a file"):
        load_mot(tmp_path / "nope.txt")
    (tmp_path / "gt").mkdir()
    write_rows(tmp_path / "p.txt", pred_rows(track(1, F4)))
    with pytest.raises(ValueError, match="expected a folder when --gt is a folder"):
        evaluate_paths(tmp_path / "gt", tmp_path / "p.txt")
    with pytest.raises(ValueError, match="found none"):
        evaluate_paths(tmp_path / "gt", tmp_path / "gt")


DUP = gt_rows([det(1, 1, 0), det(1, 1, 50)])
GOOD = gt_rows(track(1, F4))


@pytest.mark.parametrize(
    ("gt", "pred", "kwargs", "message"),
    [
        (DUP, pred_rows([]), {}, "id 1 more than once in frame 1"),
        (GOOD, pred_rows([det(3, 4, 0), det(3, 4, 9)]), {}, "predictions: expected each id once"),
        (GOOD, GOOD, {"iou": 0.0}, "iou: expected a value in"),
        (GOOD, GOOD, {"gt_format": "mot99"}, "gt_format: expected one of"),
        (GOOD, np.zeros((2, 4)), {}, r"expected rows \(N, >=6\)"),
        (np.column_stack([GOOD[:, :7], np.full(4, 20), np.ones(4)]), GOOD, {}, "expected values in 1..13"),
    ],
)
def test_evaluate_sequence_errors(gt, pred, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_sequence(gt, pred, **kwargs)
