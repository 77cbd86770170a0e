"""Render the project's sample scene: one courtyard, 8 walking people, 3 synchronized static cameras.

Usage: ``python sample_videos/render.py --seed 0 --out sample_videos`` writes, per camera id ``cam0``,
``cam1``, ``cam2``:

- ``<out>/<camera_id>.mp4`` — 480x270 BGR, 10 fps, 250 frames (25 s), OpenCV ``mp4v``;
- ``<out>/gt/<camera_id>.txt`` — exact ground truth, MOTChallenge style, one row per visible person and
  frame: ``frame,id,x,y,w,h,consider,class,visibility``.

Ground-truth columns: ``frame`` is 1-based (the first frame of the clip is 1); ``id`` is the person's global
id (1..8), the same person has the same id in every camera; ``x, y, w, h`` is the tight box, in pixels, of the
person's whole projected figure (occluded parts included) clipped to the image, with ``x, y`` the 0-based
column and row of its top-left pixel, so the box covers columns ``x .. x+w-1``; ``class`` is 1 (pedestrian);
``visibility`` in [0, 1] is the fraction of the figure's pixels that are visible (inside the image and hidden
neither by another person nor by a wall or prop); ``consider`` is 1 when visibility >= 0.3, the clipped box
height >= 20 px and at least half of the figure's pixels are inside the image, else 0 (the row is still
written). Persons with no visible pixel are omitted. Boxes come from the rendered masks, not from estimates.

The output depends only on the seed (and the optional size, frame range): same seed, same bytes of GT and the
same frames.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: import the sibling modules
from render_people import draw_person, make_people, pose  # noqa: E402
from render_world import CAMERA_SPECS, Camera, make_camera, render_background  # noqa: E402

LOGGER = logging.getLogger(__name__)
FPS = 10
N_FRAMES = 250
SIZE = (480, 270)
SENSOR_NOISE = 2.0  # gaussian sigma, grey levels
MIN_VISIBILITY, MIN_HEIGHT, MIN_INSIDE = 0.3, 20, 0.5


@dataclass
class SceneSummary:
    """What :func:`render_scene` wrote: frame count, people and per-camera ground-truth counts."""

    frames: int
    people: int
    boxes: dict[str, int] = field(default_factory=dict)
    considered: dict[str, int] = field(default_factory=dict)
    ids: dict[str, set[int]] = field(default_factory=dict)
    videos: list[Path] = field(default_factory=list)

    @property
    def multi_camera_ids(self) -> set[int]:
        """Global ids seen (at least one ground-truth row) by two or more cameras."""
        seen = [i for ids in self.ids.values() for i in ids]
        return {i for i in set(seen) if seen.count(i) >= 2}


def consider_flag(visibility: np.ndarray, box_height: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """MOT ``consider`` flag (N,) int: visibility >= 0.3, clipped height >= 20 px, >= 50 % inside the image."""
    visibility, box_height, inside = (np.asarray(v, float) for v in (visibility, box_height, inside))
    return ((visibility >= MIN_VISIBILITY) & (box_height >= MIN_HEIGHT) & (inside >= MIN_INSIDE)).astype(int)


def compose_frame(
    cam: Camera, background: np.ndarray, occluders: np.ndarray, poses: list[tuple[int, dict]]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the posed people far-to-near over the background of ``cam``.

    Returns the clean image (H, W, 3) uint8 and ground-truth rows (N, 7) float64:
    ``id, x, y, w, h, visibility, inside_fraction`` for each person with at least one visible pixel.
    """
    h, w = background.shape[:2]
    image = background.copy()
    owner = np.full((h, w), -1, np.int32)
    drawn = [(pid, d) for pid, parts in poses if (d := draw_person(parts, cam)) is not None]
    drawn.sort(key=lambda item: -item[1][4])
    stats = []
    for pid, (canvas, mask, x0, y0, depth) in drawn:
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + mask.shape[1], w), min(y0 + mask.shape[0], h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        inner = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        shown = inner & (occluders[cy0:cy1, cx0:cx1] > depth)
        image[cy0:cy1, cx0:cx1][shown] = canvas[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][shown]
        owner[cy0:cy1, cx0:cx1][shown] = pid
        rows, cols = np.flatnonzero(inner.any(axis=1)), np.flatnonzero(inner.any(axis=0))
        if len(rows) == 0:
            continue
        box = (cx0 + cols[0], cy0 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
        stats.append((pid, *box, mask.sum(), inner.sum()))
    if not stats:
        return image, np.zeros((0, 7))
    table = np.array(stats, float)
    visible = np.bincount(owner.ravel() + 1, minlength=int(table[:, 0].max()) + 2)[table[:, 0].astype(int) + 1]
    rows = np.column_stack([table[:, :5], visible / table[:, 5], table[:, 6] / table[:, 5]])
    return image, rows[visible > 0]


class Sensor:
    """Per-camera illumination (gain, bias) and gaussian sensor noise, from a bank of seeded noise frames."""

    def __init__(self, cam: Camera, rng: np.random.Generator, sigma: float = SENSOR_NOISE, bank: int = 6):
        w, h = cam.size
        self.gain, self.bias, self.rng = cam.gain, cam.bias, rng
        self.noise = rng.normal(0.0, sigma, (bank, h, w, 3)).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Clean image (H, W, 3) uint8 -> observed image (H, W, 3) uint8."""
        k = int(self.rng.integers(len(self.noise)))
        shift = (int(self.rng.integers(image.shape[0])), int(self.rng.integers(image.shape[1])))
        noisy = image.astype(np.float32) * self.gain + self.bias + np.roll(self.noise[k], shift, axis=(0, 1))
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _gt_lines(frame_number: int, rows: np.ndarray) -> list[str]:
    flags = consider_flag(rows[:, 5], rows[:, 4], rows[:, 6])
    return [
        f"{frame_number},{int(r[0])},{int(r[1])},{int(r[2])},{int(r[3])},{int(r[4])},{f},1,{r[5]:.4f}"
        for r, f in sorted(zip(rows, flags), key=lambda item: item[0][0])
    ]


def render_scene(
    seed: int, out_dir: str | Path, n_frames: int | None = None, size: tuple[int, int] | None = None, start: int = 0
) -> SceneSummary:
    """Render all cameras' clips and ground truth into ``out_dir`` (and ``out_dir/gt``).

    Renders ``n_frames`` frames (default: up to scene frame 250) from scene frame index ``start`` (0-based,
    default 0) at ``size`` (width, height; default 480x270, both even). The clip's first frame is GT frame 1.
    """
    n_frames = N_FRAMES - start if n_frames is None else n_frames
    size = SIZE if size is None else tuple(size)
    if n_frames < 1 or start < 0:
        raise ValueError(f"expected n_frames >= 1 and start >= 0, got n_frames={n_frames}, start={start}")
    if len(size) != 2 or min(size) < 16 or size[0] % 2 or size[1] % 2:
        raise ValueError(f"expected size (width, height), even and >= 16, got {size}")
    out_dir = Path(out_dir)
    (out_dir / "gt").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    people = make_people(rng)
    cams = [make_camera(spec, size) for spec in CAMERA_SPECS]
    views = [render_background(cam, rng) for cam in cams]
    sensors = [Sensor(cam, rng) for cam in cams]
    summary = SceneSummary(frames=n_frames, people=len(people))
    writers, lines = [], {cam.id: [] for cam in cams}
    for cam in cams:
        path = out_dir / f"{cam.id}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV could not open an mp4v VideoWriter for {path}")
        writers.append(writer)
        summary.videos.append(path)
    try:
        for i in range(n_frames):
            t = (start + i) / FPS
            poses = [(p.pid, parts) for p in people if (parts := pose(p, t)) is not None]
            for cam, (background, occluders), sensor, writer in zip(cams, views, sensors, writers):
                image, rows = compose_frame(cam, background, occluders, poses)
                writer.write(sensor(image))
                lines[cam.id] += _gt_lines(i + 1, rows)
    finally:
        for writer in writers:
            writer.release()
    for cam in cams:
        (out_dir / "gt" / f"{cam.id}.txt").write_text("".join(f"{line}\n" for line in lines[cam.id]))
        fields = [line.split(",") for line in lines[cam.id]]
        summary.boxes[cam.id] = len(fields)
        summary.considered[cam.id] = sum(f[6] == "1" for f in fields)
        summary.ids[cam.id] = {int(f[1]) for f in fields}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--frames", type=int, default=None, help=f"number of frames (default {N_FRAMES})")
    parser.add_argument("--start", type=int, default=0, help="first frame index of the scene to render")
    parser.add_argument("--size", type=int, nargs=2, default=list(SIZE), metavar=("W", "H"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = render_scene(args.seed, args.out, args.frames, tuple(args.size), args.start)
    total_mb = sum(p.stat().st_size for p in summary.videos) / 1e6
    print(f"frames {summary.frames}  people {summary.people}  clips {total_mb:.2f} MB")
    print(f"{'camera':8s}{'boxes':>8s}{'consider':>10s}{'ids':>6s}")
    for cam_id, boxes in summary.boxes.items():
        print(f"{cam_id:8s}{boxes:8d}{summary.considered[cam_id]:10d}{len(summary.ids[cam_id]):6d}")
    print(f"people seen by >= 2 cameras: {len(summary.multi_camera_ids)} {sorted(summary.multi_camera_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
