"""detectors.boxes: clipping boxes to the image and the valid-box mask, on literal boxes with known answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from detectors.boxes import clip_boxes, valid_boxes

NAN, INF = np.nan, np.inf
W, H = 100, 50


@pytest.mark.parametrize(
    ("box", "clipped", "valid"),
    [
        ([10, 5, 20, 40], [10, 5, 20, 40], True),  # inside: unchanged
        ([-5, -3, 20, 40], [0, 0, 20, 40], True),  # over the top-left corner
        ([90, 40, 130, 70], [90, 40, 100, 50], True),  # over the bottom-right corner
        ([-10, -10, 110, 60], [0, 0, 100, 50], True),  # larger than the image
        ([120, 10, 150, 20], [100, 10, 100, 20], False),  # wholly right of the image: zero width
        ([10, -30, 20, -5], [10, 0, 20, 0], False),  # wholly above: zero height
        ([10, 10, 10, 30], [10, 10, 10, 30], False),  # zero width
        ([10, 30, 20, 30], [10, 30, 20, 30], False),  # zero height
        ([20, 10, 10, 30], [20, 10, 10, 30], False),  # inverted
        ([NAN, 10, 20, 30], [NAN, 10, 20, 30], False),  # NaN stays NaN, never valid
        ([-INF, 10, INF, 30], [0, 10, 100, 30], True),  # infinities go to the edges
    ],
)
def test_clip_and_valid(box: list[float], clipped: list[float], valid: bool) -> None:
    out = clip_boxes(np.array([box], dtype=np.float32), W, H)
    np.testing.assert_array_equal(out, np.array([clipped], dtype=np.float32))
    assert out.dtype == np.float32
    assert valid_boxes(out).tolist() == [valid]


def test_clip_keeps_integer_dtype_and_does_not_touch_the_input() -> None:
    boxes = np.array([[-1, 2, 300, 40], [5, 5, 6, 6]], dtype=np.int64)
    out = clip_boxes(boxes, W, H)
    assert out.dtype == np.int64 and out.tolist() == [[0, 2, 100, 40], [5, 5, 6, 6]]
    assert boxes[0].tolist() == [-1, 2, 300, 40]


def test_valid_needs_finite_corners_before_clipping() -> None:
    assert valid_boxes(np.array([[0, 0, INF, 10], [0, 0, 5, 10]])).tolist() == [False, True]


def test_empty_input() -> None:
    assert clip_boxes(np.zeros((0, 4), np.float32), W, H).shape == (0, 4)
    assert valid_boxes(np.zeros((0, 4))).shape == (0,)


@pytest.mark.parametrize("shape", [(3, 5), (4,), (2, 2, 4)])
def test_shape_errors_name_the_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"expected (_, 4), got {shape}")):
        clip_boxes(np.zeros(shape), W, H)
    with pytest.raises(ValueError, match="expected"):
        valid_boxes(np.zeros(shape))
