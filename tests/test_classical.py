"""The weight-free colour-histogram embedder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reid.classical import ClassicalEmbedder
from reid.data.synthetic import render_person

RED, BLUE, GREEN, DARK = (30, 30, 200), (200, 60, 30), (40, 180, 40), (50, 40, 40)


def person(shirt: tuple[int, int, int], seed: int, brightness: float = 1.0, noise: float = 6.0) -> np.ndarray:
    return render_person(shirt, DARK, np.random.default_rng(seed), brightness=brightness, noise=noise)


def test_separates_shirts_and_matches_the_same_person_under_noise() -> None:
    embed = ClassicalEmbedder()
    anchor = person(RED, 0)
    same = cv2.resize(person(RED, 1, brightness=0.9, noise=15.0), (50, 110))  # other noise, jitter, size
    others = [person(BLUE, 2), person(GREEN, 3)]
    f = embed([anchor, same, *others])
    sims = f[1:] @ f[0]
    assert sims.argmax() == 0
    assert sims[0] > 0.95 and sims[0] - sims[1:].max() > 0.05


@pytest.mark.parametrize(("stripes", "texture", "dim"), [(6, False, 6 * 56), (1, False, 56), (4, True, 4 * (56 + 59))])
def test_output_shape_norm_and_batch_independence(stripes: int, texture: bool, dim: int) -> None:
    embed = ClassicalEmbedder(stripes=stripes, texture=texture)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (int(h), int(w), 3), dtype=np.uint8) for h, w in [(100, 40), (30, 90), (128, 64)]]
    f = embed(crops)
    assert embed.embedding_dim == dim and f.shape == (3, dim) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embed(crops[1:2])[0], f[1], atol=1e-6)
    assert embed([]).shape == (0, dim)


def test_gray_and_bgra_inputs() -> None:
    embed = ClassicalEmbedder()
    bgr = person(BLUE, 4)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    f = embed([bgr, bgra, gray, gray[:, :, None]])
    np.testing.assert_allclose(f[1], f[0], atol=1e-6)
    np.testing.assert_allclose(f[3], f[2], atol=1e-6)
    assert f[0] @ f[2] < 0.99  # colour matters


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), r"crops\[1\]: expected a non-empty crop"),
        (np.zeros((10, 10, 3), np.float32), r"crops\[1\]: expected a uint8"),
        (np.zeros((10, 10, 2), np.uint8), r"crops\[1\]: expected shape"),
        ("not an image", r"crops\[1\]"),
    ],
)
def test_rejects_bad_crops(crop: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClassicalEmbedder()([person(RED, 0), crop])


def test_rejects_bad_stripes() -> None:
    with pytest.raises(ValueError, match="stripes"):
        ClassicalEmbedder(stripes=0)
