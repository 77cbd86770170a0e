"""The rendered sample scene: deterministic rendering, exact ground truth, and the committed clips."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
CAMERAS = ("cam0", "cam1", "cam2")
TINY = {"n_frames": 5, "size": (160, 90), "start": 118}  # a moment when several people are in view


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("sample_videos_render", SAMPLES / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_frames(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return np.array(frames)


def load_gt(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2).reshape(-1, 9)


def test_render_is_deterministic_and_seeded(tmp_path, render):
    runs = {name: tmp_path / name for name in ("a", "b", "other")}
    for name, seed in (("a", 0), ("b", 0), ("other", 1)):
        summary = render.render_scene(seed, runs[name], **TINY)
        assert summary.frames == TINY["n_frames"]
    for cam in CAMERAS:
        gt_a, gt_b = ((runs[n] / "gt" / f"{cam}.txt").read_text() for n in ("a", "b"))
        assert gt_a == gt_b
        frames_a, frames_b = (read_frames(runs[n] / f"{cam}.mp4") for n in ("a", "b"))
        assert frames_a.shape == (TINY["n_frames"], 90, 160, 3)
        assert np.array_equal(frames_a, frames_b)
    assert sum(len(load_gt(runs["a"] / "gt" / f"{cam}.txt")) for cam in CAMERAS) > 0
    differs = [
        (runs["a"] / "gt" / f"{cam}.txt").read_text() != (runs["other"] / "gt" / f"{cam}.txt").read_text()
        or not np.array_equal(read_frames(runs["a"] / f"{cam}.mp4"), read_frames(runs["other"] / f"{cam}.mp4"))
        for cam in CAMERAS
    ]
    assert all(differs)


def test_gt_boxes_are_tight_around_the_drawn_pixels(render):
    rng = np.random.default_rng(0)
    people = render.make_people(rng)
    cams = [render.make_camera(spec, (240, 136)) for spec in render.CAMERA_SPECS]
    t = 12.0
    poses = [(p.pid, parts) for p in people if (parts := render.pose(p, t)) is not None]
    checked = 0
    for cam in cams:
        background, occluders = render.render_background(cam, rng)
        image, rows = render.compose_frame(cam, background, occluders, poses)
        changed = (image != background).any(axis=2)
        boxes = rows[:, 1:5].astype(int)
        inside_any = np.zeros_like(changed)
        for x, y, w, h in boxes:
            inside_any[y : y + h, x : x + w] = True
        assert not (changed & ~inside_any).any(), "drawn pixels outside every ground-truth box"
        for (x, y, w, h), vis in zip(boxes, rows[:, 5]):
            others = [b for b in boxes if not np.array_equal(b, (x, y, w, h))]
            alone = all(bx >= x + w or bx + bw <= x or by >= y + h or by + bh <= y for bx, by, bw, bh in others)
            if vis == 1.0 and alone:
                ys, xs = np.nonzero(changed[y : y + h, x : x + w])
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (0, 0, w, h)
                checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("visibility", "height", "inside", "expected"),
    [
        (1.0, 50, 1.0, 1),
        (0.3, 20, 0.5, 1),
        (0.29, 50, 1.0, 0),
        (1.0, 19, 1.0, 0),
        (0.9, 60, 0.49, 0),
        (0.0, 0, 0.0, 0),
    ],
)
def test_consider_flag(render, visibility, height, inside, expected):
    assert render.consider_flag([visibility], [height], [inside]).tolist() == [expected]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_frames": 0}, "n_frames"),
        ({"start": -1}, "start"),
        ({"size": (161, 90)}, "size"),
        ({"size": (8, 8)}, "size"),
    ],
)
def test_render_scene_rejects_bad_arguments(tmp_path, render, kwargs, message):
    with pytest.raises(ValueError, match=message):
        render.render_scene(0, tmp_path, **kwargs)


@pytest.mark.parametrize("cam", CAMERAS)
def test_committed_gt_is_consistent(render, cam):
    gt = load_gt(SAMPLES / "gt" / f"{cam}.txt")
    width, height = render.SIZE
    frame, pid, x, y, w, h, consider, cls, vis = gt.T
    assert len(gt) > 200
    assert frame.min() >= 1 and frame.max() <= render.N_FRAMES
    assert set(pid.astype(int)) <= set(range(1, 9))
    assert (x >= 0).all() and (y >= 0).all() and (w >= 1).all() and (h >= 1).all()
    assert (x + w <= width).all() and (y + h <= height).all()
    assert (cls == 1).all() and ((vis > 0) & (vis <= 1)).all()
    assert len({(int(f), int(i)) for f, i in zip(frame, pid)}) == len(gt), "duplicate (frame, id) rows"
    rule = (vis >= 0.3) & (h >= 20)
    assert not (consider.astype(bool) & ~rule).any()
    on_border = (x == 0) | (y == 0) | (x + w == width) | (y + h == height)
    assert not ((consider == 0) & rule & ~on_border).any(), "consider=0 only for boxes cut by the border"
    assert (consider == 1).mean() > 0.8


def test_committed_scene_spans_cameras():
    ids = [set(load_gt(SAMPLES / "gt" / f"{cam}.txt")[:, 1].astype(int)) for cam in CAMERAS]
    in_two = {i for i in set().union(*ids) if sum(i in s for s in ids) >= 2}
    assert len(in_two) >= 4


@pytest.mark.parametrize("cam", CAMERAS)
def test_committed_clip_matches_gt(render, cam):
    frames = read_frames(SAMPLES / f"{cam}.mp4")
    gt = load_gt(SAMPLES / "gt" / f"{cam}.txt")
    assert frames.shape[1:] == (render.SIZE[1], render.SIZE[0], 3)
    assert len(frames) == int(gt[:, 0].max()) == render.N_FRAMES


def test_committed_clips_fit_the_size_budget():
    total = sum((SAMPLES / f"{cam}.mp4").stat().st_size for cam in CAMERAS)
    assert total < 5_000_000


def test_sample_config_loads():
    from configs import load_config

    cfg = load_config(SAMPLES / "cams.yaml")
    assert [c.id for c in cfg.cameras] == list(CAMERAS)
    assert all(Path(c.source).is_file() for c in cfg.cameras)
    assert cfg.detector.backend == "bgsub" and cfg.tracker.kind == "bytetrack"
