"""The streaming loop end to end with a scripted detector: outputs, clipping, ROI, Ctrl-C."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from configs import config_from_dict
from pipeline.engine import in_roi, run_pipeline, sanitize

W, H = 96, 64


def moving_box_video(path: Path, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for _ in range(n):
        writer.write(np.zeros((H, W, 3), np.uint8))
    writer.release()
    return path


class Scripted:
    """A box moving right by 2 px a frame per camera; optional box partly outside; Ctrl-C after N calls."""

    def __init__(self, outside: bool = False, interrupt_after: int | None = None, empty: bool = False) -> None:
        self.calls = 0
        self.seen: dict[str, int] = {}
        self.outside, self.interrupt_after, self.empty = outside, interrupt_after, empty

    def __call__(self, images: list[np.ndarray], camera_ids: list[str] | None = None) -> list[sv.Detections]:
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        out = []
        for cam in camera_ids:
            k = self.seen.get(cam, 0)
            self.seen[cam] = k + 1
            boxes = [[10 + 2 * k, 10, 30 + 2 * k, 50]]
            if self.outside:
                boxes.append([-20, 20, 15, 70])
            if self.empty:
                boxes = np.zeros((0, 4))
            xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
            out.append(
                sv.Detections(
                    xyxy=xyxy, confidence=np.full(len(xyxy), 0.9, np.float32), class_id=np.zeros(len(xyxy), int)
                )
            )
        return out


def config(tmp_path: Path, lengths: dict[str, int], **outputs) -> object:
    cams = [{"id": c, "source": str(moving_box_video(tmp_path / f"{c}.avi", n))} for c, n in lengths.items()]
    return config_from_dict({"cameras": cams, "detector": {"backend": "bgsub"}, "outputs": outputs})


def test_outputs_layout_and_contents(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"a": 12, "b": 6}, crops=True, crop_every=2, crop_min_height=8, video=True)
    summary = run_pipeline(cfg, tmp_path / "run", Scripted(), progress=False)
    run = tmp_path / "run"
    assert summary["frames"] == 18 and summary["tracks"] == 2 and not summary["interrupted"]
    mot_a = np.loadtxt(run / "mot" / "a.txt", delimiter=",", ndmin=2)
    # ByteTrack confirms a track on its 2nd frame: rows for frames 2..12 (1-based), one id
    assert mot_a[:, 0].tolist() == list(range(2, 13)) and set(mot_a[:, 1]) == {1}
    assert np.allclose(mot_a[:, 2], 10 + 2 * (mot_a[:, 0] - 1)) and np.allclose(mot_a[:, 4:6], [20, 40])
    with open(run / "tracks.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 11 + 5 and {r["global_id"] for r in rows} == {"-1"}
    lines = [json.loads(x) for x in (run / "tracks.jsonl").read_text().splitlines()]
    assert len(lines) == len(rows) and lines[0]["camera_id"] in ("a", "b")
    with open(run / "crops" / "manifest.csv") as fh:
        manifest = list(csv.DictReader(fh))
    assert len(manifest) == 6 + 3 and all((run / "crops" / m["path"]).is_file() for m in manifest)
    assert len({(m["camera_id"], m["tracklet_id"]) for m in manifest}) == 2
    assert cv2.VideoCapture(str(run / "videos" / "a.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 12
    saved = json.loads((run / "summary.json").read_text())
    assert saved["cameras"]["b"]["frames"] == 6 and "detect" in saved["fps"]


def test_boxes_outside_image_are_clipped_and_empty_frames_are_fine(tmp_path: Path) -> None:
    run_pipeline(config(tmp_path, {"a": 6}), tmp_path / "run", Scripted(outside=True), progress=False)
    mot = np.loadtxt(tmp_path / "run" / "mot" / "a.txt", delimiter=",", ndmin=2)
    assert (mot[:, 2] >= 0).all() and (mot[:, 3] + mot[:, 5] <= H + 1e-6).all()
    summary = run_pipeline(config(tmp_path, {"a": 6}), tmp_path / "run2", Scripted(empty=True), progress=False)
    assert summary["boxes"] == 0 and (tmp_path / "run2" / "mot" / "a.txt").read_text() == ""


def test_ctrl_c_keeps_everything_written(tmp_path: Path) -> None:
    summary = run_pipeline(config(tmp_path, {"a": 30}), tmp_path / "run", Scripted(interrupt_after=8), progress=False)
    assert summary["interrupted"] and summary["frames"] == 8
    mot = np.loadtxt(tmp_path / "run" / "mot" / "a.txt", delimiter=",", ndmin=2)
    assert len(mot) == 7  # frames 2..8 tracked, all flushed
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["interrupted"] is True
    assert len((tmp_path / "run" / "tracks.csv").read_text().splitlines()) == 1 + 7


@pytest.mark.parametrize(
    ("boxes", "kept"),
    [([[0, 0, 10, 10]], 1), ([[-5, -5, 5, 5]], 1), ([[50, 50, 60, 60]], 0), ([[5, 5, 5, 9]], 0)],
)
def test_sanitize(boxes: list, kept: int) -> None:
    d = sv.Detections(xyxy=np.asarray(boxes, np.float32), confidence=np.ones(len(boxes), np.float32))
    out = sanitize(d, 40, 40)
    assert len(out) == kept and (out.xyxy >= 0).all() and (out.xyxy <= 40).all()


def test_roi_keeps_boxes_by_centre() -> None:
    d = sv.Detections(xyxy=np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32))
    assert len(in_roi(d, (0, 0, 15, 15))) == 1 and len(in_roi(d, None)) == 2
