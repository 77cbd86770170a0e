"""The Python API, ``from pipeline import Pipeline``, on the shipped sample clips."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from pipeline import FrameResult, Pipeline

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_videos"
CLIPS = [SAMPLES / "cam0.mp4", SAMPLES / "cam1.mp4"]


def test_stream_yields_every_frame_with_tracks_and_global_ids(tmp_path: Path) -> None:
    pipe = Pipeline(CLIPS, weights="bgsub", out=tmp_path / "run")
    results = list(pipe.stream())
    assert all(isinstance(r, FrameResult) and isinstance(r.detections, sv.Detections) for r in results)
    assert Counter(r.camera_id for r in results) == {"cam0": 250, "cam1": 250}
    cam0 = [r for r in results if r.camera_id == "cam0"]
    assert [r.frame_index for r in cam0] == list(range(250))
    assert cam0[10].timestamp == pytest.approx(1.0) and cam0[10].image.shape == (270, 480, 3)
    boxes = [r for r in results if len(r.detections)]
    assert boxes and all(r.detections.tracker_id is not None for r in boxes)
    assert max(int(r.global_ids.max()) for r in boxes) >= 1  # linked while streaming
    assert pipe.summary is not None and pipe.summary["frames"] == 500 and not pipe.summary["interrupted"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["frames"] == 500


def test_run_gives_the_same_run_as_the_command(tmp_path: Path) -> None:
    from pipeline.run import main

    summary = Pipeline(CLIPS, weights="bgsub", out=tmp_path / "api").run()
    assert main([*map(str, CLIPS), "--weights", "bgsub", "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert summary["identities"]["global_ids"] >= 4
    for cam in ("cam0", "cam1"):
        api = np.loadtxt(tmp_path / "api" / "mot_global" / f"{cam}.txt", delimiter=",")
        cli = np.loadtxt(tmp_path / "cli" / "mot_global" / f"{cam}.txt", delimiter=",")
        np.testing.assert_array_equal(api, cli)


def test_leaving_the_loop_early_ends_the_run_like_ctrl_c(tmp_path: Path) -> None:
    pipe = Pipeline(CLIPS, weights="bgsub", out=tmp_path / "run")
    for n, _ in enumerate(pipe.stream()):
        if n == 40:
            break
    assert pipe.summary is not None and pipe.summary["interrupted"]
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["interrupted"] and 40 <= saved["frames"] < 500
    assert (tmp_path / "run" / "tracks.csv").read_text().startswith("camera_id,frame,")


def test_from_yaml_takes_the_command_lines_flags(tmp_path: Path) -> None:
    summary = Pipeline.from_yaml(SAMPLES / "cams.yaml", out=tmp_path / "run", max_frames=30, no_reid=True).run()
    assert summary["frames"] == 90 and "identities" not in summary


def test_bad_arguments_say_what_was_expected() -> None:
    with pytest.raises(TypeError, match="unknown option 'colour'"):
        Pipeline(CLIPS, weights="bgsub", colour=True)
    with pytest.raises(ValueError, match="expected sources"):
        Pipeline()
