"""Re-stitching on a rendered clip: a person hidden long enough for the tracker to lose them rejoins their
global id, and the camera's global ids are never worse than the tracker's own."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.evaluation.evaluate import evaluate_paths
from pipeline.run import main as run_main
from tests.test_samples import read_frames

SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
PERSON, HIDE = 1, (150, 175)  # person 1 walks through cam0 on frames 122-224 (1-based); hidden for 2.5 s


def hidden_clip(out: Path) -> tuple[Path, Path]:
    """cam0 with PERSON painted over by the background on HIDE frames, and its ground truth without them."""
    frames = list(read_frames(SAMPLES / "cam0.mp4"))
    background = np.median(np.stack(frames[::5]), axis=0).astype(np.uint8)  # people move: the median is empty
    gt = np.loadtxt(SAMPLES / "gt" / "cam0.txt", delimiter=",")
    hide = (gt[:, 1] == PERSON) & (gt[:, 0] >= HIDE[0]) & (gt[:, 0] < HIDE[1])
    for row in gt[hide]:
        x, y, w, h = (int(v) for v in row[2:6])
        f = int(row[0]) - 1
        frames[f][max(y - 3, 0) : y + h + 3, max(x - 3, 0) : x + w + 3] = background[
            max(y - 3, 0) : y + h + 3, max(x - 3, 0) : x + w + 3
        ]
    video = out / "cam0.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frames[0].shape[1], frames[0].shape[0]))
    for image in frames:
        writer.write(image)
    writer.release()
    gt_file = out / "gt.txt"
    np.savetxt(gt_file, gt[~hide], delimiter=",", fmt="%g")
    return video, gt_file


@pytest.fixture(scope="module")
def hidden_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("restitch")
    video, gt_file = hidden_clip(tmp)
    (tmp / "cams.yaml").write_text(
        f"cameras:\n  - {{id: cam0, source: {video}}}\ndetector: {{backend: bgsub}}\nembed: {{weights: classical}}\n"
    )
    assert run_main(["--cameras", str(tmp / "cams.yaml"), "--out", str(tmp / "run"), "--no-progress"]) == 0
    return tmp / "run", gt_file


def test_hidden_person_loses_the_track_and_keeps_the_global_id(hidden_run: tuple[Path, Path]) -> None:
    run, gt_file = hidden_run
    gt = np.loadtxt(gt_file, delimiter=",")
    person = gt[gt[:, 1] == PERSON]
    rows = list(csv.DictReader(open(run / "tracks.csv")))
    before, after = set(), set()
    for r in rows:
        frame = int(r["frame"]) + 1
        match = person[person[:, 0] == frame]
        if not len(match):
            continue
        x, y, w, h = match[0, 2:6]
        cx, cy = (float(r["x1"]) + float(r["x2"])) / 2, (float(r["y1"]) + float(r["y2"])) / 2
        if x <= cx <= x + w and y <= cy <= y + h:
            side = before if frame < HIDE[0] else after
            side.add((int(r["track_id"]), int(r["global_id"])))
    tracks_before, tracks_after = {t for t, _ in before}, {t for t, _ in after}
    assert tracks_before and tracks_after and not tracks_before & tracks_after  # the tracker lost them
    gids_before, gids_after = {g for _, g in before}, {g for _, g in after}
    assert gids_before & gids_after and -1 not in gids_before | gids_after  # one global id across the gap


def test_single_camera_global_ids_are_never_worse_than_tracks(hidden_run: tuple[Path, Path]) -> None:
    run, gt_file = hidden_run
    tracks = evaluate_paths(gt_file, run / "mot" / "cam0.txt")["combined"]["IDF1"]
    linked = evaluate_paths(gt_file, run / "mot_global" / "cam0.txt")["combined"]["IDF1"]
    assert linked >= tracks, (linked, tracks)
