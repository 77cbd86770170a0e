"""A tiny synthetic Market-1501 (same folder layout and file names) for tests and smoke runs.

Each identity is a cartoon person whose shirt and trouser colours come from its id; cameras change the
brightness and the crop jitters, so colour features re-identify people across cameras while exact pixel
matching does not. Distractors (pid 0) and junk (pid -1) are added to the gallery as in the real set,
and one file per split carries the real set's doubled ``.jpg.jpg`` extension.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT_NAME = "Market-1501-v15.09.15"
HEIGHT, WIDTH = 128, 64


def identity_colours(pid: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(shirt, trousers) BGR colours of a person id: saturated hues stepping differently per garment."""
    hsv = np.array([[[(pid * 37) % 180, 230, 220], [(pid * 97 + 45) % 180, 200, 120]]], dtype=np.uint8)
    shirt, trousers = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]
    return tuple(int(c) for c in shirt), tuple(int(c) for c in trousers)


def render_person(
    shirt: tuple[int, int, int],
    trousers: tuple[int, int, int],
    rng: np.random.Generator,
    brightness: float = 1.0,
    noise: float = 6.0,
) -> np.ndarray:
    """A (128, 64, 3) uint8 BGR crop: grey noisy background, skin head, shirt torso, trouser legs."""
    img = np.full((HEIGHT, WIDTH, 3), 120, dtype=np.float32)
    dx, dy = (int(v) for v in rng.integers(-4, 5, size=2))
    cv2.circle(img, (32 + dx, 16 + dy), 10, (140, 170, 210), -1)
    cv2.rectangle(img, (16 + dx, 28 + dy), (48 + dx, 74 + dy), shirt, -1)
    cv2.rectangle(img, (19 + dx, 75 + dy), (30 + dx, 124), trousers, -1)
    cv2.rectangle(img, (34 + dx, 75 + dy), (45 + dx, 124), trousers, -1)
    img = img * brightness + rng.normal(0.0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("could not JPEG-encode a synthetic crop")
    return buf.tobytes()


def _split_images(
    pids: list[int], cameras: int, per_camera: int, rng: np.random.Generator, frame0: int
) -> list[tuple[str, np.ndarray]]:
    """File names and crops: ``per_camera`` images of each id in each camera."""
    out = []
    frame = frame0
    for pid in pids:
        shirt, trousers = identity_colours(pid)
        for cam in range(1, cameras + 1):
            for b in range(per_camera):
                frame += 25
                image = render_person(shirt, trousers, rng, brightness=0.8 + 0.1 * cam)
                out.append((f"{pid:04d}_c{cam}s1_{frame:06d}_{b:02d}.jpg", image))
    return out


def write_synthetic_market(
    path: str | os.PathLike,
    num_train_ids: int = 6,
    num_test_ids: int = 4,
    cameras: int = 3,
    per_camera: int = 2,
    distractors: int = 2,
    junk: int = 2,
    as_zip: bool = True,
    seed: int = 0,
) -> Path:
    """Write a Market-1501-shaped data set and return its path (the zip, or the top folder).

    Train ids are 1..num_train_ids, test ids follow; every test id has one query per camera and
    ``per_camera`` gallery images per camera. Counts: train ``num_train_ids * cameras * per_camera``,
    query ``num_test_ids * cameras``, gallery ``num_test_ids * cameras * per_camera + distractors + junk``.
    """
    if not 2 <= cameras <= 9 or per_camera < 1 or num_train_ids < 1 or num_test_ids < 1:
        raise ValueError(
            f"synthetic market: expected 2 <= cameras <= 9 and at least one id/image, got cameras={cameras}, "
            f"per_camera={per_camera}, ids={num_train_ids}/{num_test_ids}"
        )
    rng = np.random.default_rng(seed)
    train_ids = list(range(1, num_train_ids + 1))
    test_ids = list(range(num_train_ids + 1, num_train_ids + num_test_ids + 1))
    files: dict[str, list[tuple[str, np.ndarray]]] = {
        "bounding_box_train": _split_images(train_ids, cameras, per_camera, rng, 0),
        "query": _split_images(test_ids, cameras, 1, rng, 100000),
        "bounding_box_test": _split_images(test_ids, cameras, per_camera, rng, 200000),
    }
    gallery = files["bounding_box_test"]
    for i in range(distractors):
        gallery.append(
            (
                f"0000_c{1 + i % cameras}s1_{300000 + i:06d}_00.jpg",
                render_person((90, 90, 90), (60, 60, 60), rng),
            )
        )
    for i in range(junk):
        gallery.append(
            (
                f"-1_c{1 + i % cameras}s1_{400000 + i:06d}_00.jpg",
                rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8),
            )
        )
    for items in files.values():  # the real set's ".jpg.jpg" quirk
        items[-1] = (items[-1][0] + ".jpg", items[-1][1])
    return _write(Path(path), files, as_zip)


def _write(path: Path, files: dict[str, list[tuple[str, np.ndarray]]], as_zip: bool) -> Path:
    """Write the split folders as a zip (at ``path``) or below the folder ``path``."""
    if as_zip:
        with zipfile.ZipFile(path, "w") as zf:
            for folder, items in files.items():
                zf.writestr(f"{ROOT_NAME}/{folder}/", b"")
                for name, image in items:
                    zf.writestr(f"{ROOT_NAME}/{folder}/{name}", _encode(image))
        return path
    for folder, items in files.items():
        (path / ROOT_NAME / folder).mkdir(parents=True, exist_ok=True)
        for name, image in items:
            (path / ROOT_NAME / folder / name).write_bytes(_encode(image))
    return path
