"""Choosing boxes to embed, cropping them, their quality, and batching crops of several cameras."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.embed import (
    EmbedBatcher,
    EmbedSelector,
    adaptive_gaps,
    coverage,
    crop_boxes,
    quality,
    select_for_embedding,
)
from pipeline.records import Frame, embeddings_of

HW = (480, 640)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([[0, 0, 10, 10]], [0.0]),
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.0, 0.0]),
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.5, 0.5]),
        ([[0, 0, 100, 100], [10, 10, 20, 20]], [0.01, 1.0]),
        ([[0, 0, 10, 10], [0, 0, 5, 10], [5, 0, 10, 10]], [0.5, 1.0, 1.0]),  # max over single boxes, not union
        ([[5, 5, 5, 5], [0, 0, 10, 10]], [1.0, 0.0]),  # a zero-area box counts as covered
    ],
)
def test_coverage(boxes: list, expected: list) -> None:
    np.testing.assert_allclose(coverage(np.array(boxes, np.float32)), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([[100, 100, 140, 228]], [True]),  # 40x128: big enough
        ([[100, 100, 140, 140]], [False]),  # 40 px tall < 48
        ([[100, 100, 110, 228]], [False]),  # 10 px wide < 16
        ([[100, 100, 140, 228], [105, 100, 145, 228]], [False, False]),  # each 87% covered by the other
        ([[100, 100, 140, 228], [130, 100, 170, 228]], [True, True]),  # 25% overlap <= 0.4
        ([[100, 100, 160, 300], [130, 150, 170, 278]], [True, False]),  # small box 75% covered, big one 32%
        ([[-60, 100, 20, 228]], [False]),  # 75% outside the image
        ([[620, 100, 650, 228]], [False]),  # 20 of 30 px inside: 0.67 < min_inside 0.8
        ([[608, 100, 648, 228]], [True]),  # 32 of 40 px inside: 0.8
        ([], []),
    ],
)
def test_select_size_overlap_inside(boxes: list, expected: list) -> None:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    mask = select_for_embedding(xyxy, np.arange(len(xyxy)), 0, HW, last_embedded={})
    assert mask.tolist() == expected


def test_select_every_k_per_track() -> None:
    last: dict[int, int] = {}
    xyxy = np.array([[0, 0, 40, 128], [200, 0, 240, 128]], np.float32)
    chosen = []
    for frame in range(7):
        ids = np.array([1, 2]) if frame >= 2 else np.array([1, 3])
        chosen.append(select_for_embedding(xyxy, ids, frame, HW, every_k=3, last_embedded=last).tolist())
    # track 1 on frames 0, 3, 6; track 3 on frame 0; track 2 (new on frame 2) on frames 2 and 5
    assert chosen == [
        [True, True],
        [False, False],
        [False, True],
        [True, False],
        [False, False],
        [False, True],
        [True, False],
    ]
    assert last == {1: 6, 3: 0, 2: 5}


@pytest.mark.parametrize(
    ("crops", "every_k", "slow_after", "max_every_k", "expected"),
    [
        ([0, 5, 9, 10, 20, 40, 80, 500], 3, 10, 24, [3, 3, 3, 3, 6, 12, 24, 24]),
        ([0, 10, 500], 3, 0, 24, [3, 3, 3]),  # slow_after 0: every_k for good
        ([0, 4, 8], 1, 2, 3, [1, 2, 3]),
        ([], 3, 10, 24, []),
    ],
)
def test_adaptive_gaps(crops: list, every_k: int, slow_after: int, max_every_k: int, expected: list) -> None:
    gaps = adaptive_gaps(np.array(crops, dtype=np.int64), every_k, slow_after, max_every_k)
    assert gaps.dtype == np.int64 and gaps.tolist() == expected


def test_selector_slows_down_on_long_tracks() -> None:
    dets = sv.Detections(xyxy=np.array([[0, 0, 40, 128]], np.float32), tracker_id=np.array([7]))
    image = np.zeros((*HW, 3), np.uint8)

    def chosen(selector: EmbedSelector) -> list[int]:
        return [i for i in range(60) if selector(dets, Frame("a", i, i / 10, image))[0]]

    assert chosen(EmbedSelector(every_k=2)) == list(range(0, 60, 2))  # slow_after 0: the old fixed rate
    # every 2nd frame, then a gap of 2 * crops // 4: 3 frames from the 6th crop, 4 from the 8th, ... at most 6
    assert chosen(EmbedSelector(every_k=2, slow_after=4, max_every_k=6)) == [
        0, 2, 4, 6, 8, 10, 13, 16, 20, 24, 29, 34, 40, 46, 52, 58,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="max_every_k >= every_k"):
        EmbedSelector(every_k=4, max_every_k=3)


def test_select_duplicate_track_id_embeds_one_box() -> None:
    xyxy = np.array([[0, 0, 40, 128], [200, 0, 240, 128]], np.float32)
    assert select_for_embedding(xyxy, np.array([4, 4]), 0, HW, last_embedded={}).tolist() == [True, False]


@pytest.mark.parametrize(
    ("xyxy", "ids", "kwargs", "message"),
    [
        (np.zeros((2, 3)), np.arange(2), {}, r"xyxy: expected \(_, 4\), got \(2, 3\)"),
        (np.zeros((2, 4)), np.arange(3), {}, r"tracker_id: expected \(2,\), got \(3,\)"),
        (np.zeros((2, 4)), np.arange(2), {"every_k": 0}, "every_k: expected an int >= 1, got 0"),
        (np.zeros((2, 4)), np.arange(2), {"every_k": np.ones(3, int)}, r"every_k: expected an int or \(2,\) ints"),
    ],
)
def test_select_bad_input(xyxy: np.ndarray, ids: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        select_for_embedding(xyxy, ids, 0, HW, last_embedded={}, **kwargs)


def test_selector_uses_frame_and_forgets() -> None:
    selector = EmbedSelector(every_k=2, forget_after=5)
    dets = sv.Detections(xyxy=np.array([[0, 0, 40, 128]], np.float32), tracker_id=np.array([7]))
    image = np.zeros((*HW, 3), np.uint8)
    got = [selector(dets, Frame("a", i, i / 10, image))[0] for i in range(4)]
    assert got == [True, False, True, False]
    with pytest.raises(ValueError, match="tracker_id"):
        selector(sv.Detections(xyxy=np.zeros((1, 4), np.float32)), Frame("a", 0, 0.0, image))


def test_crop_boxes_clips_and_flags_empty() -> None:
    image = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
    xyxy = np.array([[2, 3, 6.5, 8], [-5, -5, 4, 4], [30, 0, 40, 5], [5, 5, 5, 9]], np.float32)
    crops, valid = crop_boxes(image, xyxy)
    assert valid.tolist() == [True, True, False, False]
    assert [c.shape for c in crops] == [(5, 5, 3), (4, 4, 3)]
    np.testing.assert_array_equal(crops[0], image[3:8, 2:7])
    assert crops[0].flags["C_CONTIGUOUS"] and not np.shares_memory(crops[0], image)


@pytest.mark.parametrize(
    ("box", "overlap", "conf", "expected"),
    [
        ([0, 0, 50, 128], 0.0, 1.0, 1.0),
        ([0, 0, 50, 64], 0.0, 1.0, 0.5),
        ([0, 0, 50, 256], 0.5, 0.8, 0.4),
        ([0, 0, 50, 128], 1.0, 1.0, 0.0),
        ([0, 0, 50, 128], 0.0, np.nan, 0.0),
    ],
)
def test_quality(box: list, overlap: float, conf: float, expected: float) -> None:
    q = quality(np.array([box], np.float32), np.array([overlap]), np.array([conf]))
    assert q.dtype == np.float32 and q.shape == (1,)
    assert q[0] == pytest.approx(expected)


class CountingEmbedder:
    """Embeds a crop as a one-hot of its mean pixel value (mod 8); NaN for crops whose value is 99."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        self.calls.append(len(crops))
        out = np.zeros((len(crops), 8), np.float32)
        values = np.array([int(c.mean()) for c in crops])
        out[np.arange(len(crops)), values % 8] = 1.0
        out[values == 99] = np.nan
        return out


def _camera(camera_id: str, values: list[int]) -> tuple[Frame, sv.Detections]:
    """A frame with one 40x128 box per value, each box filled with that value."""
    image = np.zeros((200, 400, 3), np.uint8)
    boxes = []
    for i, v in enumerate(values):
        x = 50 * i
        image[10:138, x : x + 40] = v
        boxes.append([x, 10, x + 40, 138])
    dets = sv.Detections(xyxy=np.array(boxes, np.float32).reshape(-1, 4), tracker_id=np.arange(len(values)))
    return Frame(camera_id, 0, 0.0, image), dets


def test_batcher_one_call_for_several_cameras_and_scatter_back() -> None:
    (fa, da), (fb, db) = _camera("a", [1, 2, 3]), _camera("b", [5, 6])
    embedder = CountingEmbedder()
    out = EmbedBatcher(embedder)([fa, fb], [da, db], [np.array([True, False, True]), np.array([True, True])])
    assert embedder.calls == [4]
    emb_a, emb_b = embeddings_of(out[0]), embeddings_of(out[1])
    assert emb_a.shape == (3, 8) and np.isnan(emb_a[1]).all()
    assert emb_a[0].argmax() == 1 and emb_a[2].argmax() == 3
    assert [e.argmax() for e in emb_b] == [5, 6]
    assert embeddings_of(da) is None  # inputs untouched


def test_batcher_splits_batches_and_rejects_nan(caplog: pytest.LogCaptureFixture) -> None:
    (fa, da), (fb, db) = _camera("a", [1, 99, 3]), _camera("b", [99])
    embedder = CountingEmbedder()
    batcher = EmbedBatcher(embedder, max_batch=3)
    out = batcher([fa, fb], [da, db], [np.ones(3, bool), np.ones(1, bool)])
    assert embedder.calls == [3, 1]
    assert batcher.n_rejected == 2 and "non-finite" in caplog.text
    emb_a = embeddings_of(out[0])
    assert np.isnan(emb_a[1]).all() and np.isfinite(emb_a[[0, 2]]).all()
    assert embeddings_of(out[1]) is None  # nothing usable in camera b: no column at all


@pytest.mark.parametrize(
    ("masks", "embed_out", "message"),
    [
        ([np.ones(2, bool)], None, r"mask for camera a: expected \(3,\), got \(2,\)"),
        ([np.ones(3, bool)], np.zeros((2, 8)), r"embedder output: expected \(3, D\), got \(2, 8\)"),
    ],
)
def test_batcher_bad_input(masks: list, embed_out: np.ndarray | None, message: str) -> None:
    frame, dets = _camera("a", [1, 2, 3])
    with pytest.raises(ValueError, match=message):
        EmbedBatcher(lambda crops: embed_out)([frame], [dets], masks)
