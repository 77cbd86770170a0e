"""Camera-aware tracklet pseudo-labels and the label-free model check, on synthetic crops with known people."""

from __future__ import annotations

import numpy as np
import pytest

from reid.trainer.model_check import continuations, cross_camera_links, model_check, rank_auc
from reid.trainer.tracklet_labels import tracklet_pseudo_labels, tracklet_set

D = 32


def two_camera_crops(people: int = 4, crops: int = 6, noise: float = 0.6, camera_shift: float = 0.8, seed: int = 0):
    """Each person walks through cam 0 (frames 0..) then cam 1, one tracklet per camera; everyone in a camera
    is there at once (so the tracklets of one camera are cannot-links). Every camera adds its own strong
    offset, larger than the spread of one person, so raw features group by camera first.

    Returns:
        features (N, D), tracklets (N,), cameras (N,), frames (N,), person (N,) - the hidden answer.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, D))
    offsets = rng.normal(size=(2, D))
    offsets *= camera_shift / np.linalg.norm(offsets, axis=1, keepdims=True)
    rows = []
    for cam in (0, 1):
        for p in range(people):
            for j in range(crops):
                feat = centres[p] + offsets[cam] * np.linalg.norm(centres[p]) + noise * rng.normal(size=D)
                rows.append((feat, cam * people + p, cam, 100 * cam + j, p))
    feats = np.stack([r[0] for r in rows]).astype(np.float32)
    cols = [np.array([r[i] for r in rows], np.int64) for i in range(1, 5)]
    return (feats, *cols)


def test_tracklets_of_one_person_join_across_cameras() -> None:
    feats, tracklets, cameras, frames, person = two_camera_crops()
    result = tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=2)
    assert result.num_clusters == 4 and result.cross_camera == 4 and result.merged == 8
    # one label per person, and one person per label
    for p in range(4):
        assert len(np.unique(result.labels[person == p])) == 1
    assert len(np.unique(result.labels)) == 4 and result.num_outliers == 0


def test_without_centring_the_camera_offset_keeps_people_apart() -> None:
    feats, tracklets, cameras, frames, _ = two_camera_crops(noise=0.3)
    assert tracklet_pseudo_labels(feats, tracklets, cameras, frames, center_cameras=False).cross_camera == 0
    assert tracklet_pseudo_labels(feats, tracklets, cameras, frames, center_cameras=True).cross_camera == 4


def test_cannot_link_tracklets_never_share_a_label() -> None:
    # two identical-looking people in one camera at once, and their look-alike in the other camera
    feats, tracklets, cameras, frames, _ = two_camera_crops(people=2, noise=0.01)
    feats[tracklets == 1] = feats[tracklets == 0]
    result = tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=1)
    assert result.labels[tracklets == 0][0] != result.labels[tracklets == 1][0]


def test_small_clusters_are_outliers() -> None:
    feats, tracklets, cameras, frames, _ = two_camera_crops(crops=2)
    assert tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=5).num_clusters == 0
    assert tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=4).num_outliers == 0


def test_tracklet_set_halves_follow_frame_order() -> None:
    feats = np.eye(4, D, dtype=np.float32)[[0, 1, 2, 3]]
    ts = tracklet_set(feats, np.zeros(4, np.int64), np.zeros(4, np.int64), np.array([30, 10, 20, 0]),
                      center_cameras=False)  # fmt: skip
    # frame order: crops 3, 1, 2, 0 -> even ranks are crops 3 and 2, the first half in time crops 3 and 1
    np.testing.assert_allclose(ts.even[0], (feats[3] + feats[2]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(ts.head[0], (feats[3] + feats[1]) / np.sqrt(2), atol=1e-6)
    assert (ts.first[0], ts.last[0], ts.sizes[0]) == (0, 30, 4)


def test_bad_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"expected \(N, D\), \(N,\), \(N,\)"):
        tracklet_set(np.zeros((3, D)), np.zeros(2, np.int64), np.zeros(3, np.int64), None)
    with pytest.raises(ValueError, match="min_crops"):
        tracklet_pseudo_labels(np.zeros((3, D)), np.zeros(3, np.int64), np.zeros(3, np.int64), None, min_crops=0)


@pytest.mark.parametrize(
    ("pos", "neg", "auc"),
    [([1.0, 2.0], [0.0], 1.0), ([0.0], [1.0, 2.0], 0.0), ([1.0], [1.0], 0.5), ([1.0, 3.0], [2.0], 0.5)],
)
def test_rank_auc_table(pos, neg, auc) -> None:
    assert rank_auc(np.array(pos), np.array(neg)) == pytest.approx(auc)


def test_cross_camera_links_count_mutual_pairs_above_threshold() -> None:
    means = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9], [0.7, 0.7]], np.float64)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    cams = np.array([0, 0, 1, 1, 1])
    assert cross_camera_links(means, cams, 0.9) == pytest.approx(1.0)  # 2 mutual pairs / min(2, 3)
    assert cross_camera_links(means, cams, 0.999) == 0.0
    assert np.isnan(cross_camera_links(means, np.zeros(5, np.int64), 0.0))


def test_model_check_ranks_a_corrupted_model_below_the_original() -> None:
    feats, tracklets, cameras, frames, _ = two_camera_crops(people=20, crops=8, noise=2.0)
    good = model_check(feats, tracklets, cameras, frames)
    assert 0.8 < good.score < 1.0  # not saturated: the corruptions below have room to show
    rng = np.random.default_rng(3)
    noisy = feats + 2.0 * rng.normal(size=feats.shape).astype(np.float32)
    # a model that learned to tell cameras apart: every crop moves towards its camera's own direction
    camera_split = feats + 3.0 * np.eye(2, D, dtype=np.float32)[cameras] * np.linalg.norm(feats, axis=1)[:, None]
    camera_split[:, 2:] += 0.6 * rng.normal(size=(len(feats), D - 2)).astype(np.float32)
    for bad in (noisy, camera_split):
        worse = model_check(bad, tracklets, cameras, frames)
        assert worse.score < good.score
    assert good.tracklets == 40 and good.positives == 40 and good.negatives == 2 * 190
    assert 0.0 <= good.separation <= 1.0 and 0.0 <= good.cross_camera <= 1.0


def test_model_check_needs_tracklets_to_contrast() -> None:
    feats = np.random.default_rng(0).normal(size=(4, D)).astype(np.float32)
    with pytest.raises(ValueError, match="model check: expected at least 3 tracklets of 2\\+ crops"):
        model_check(feats, np.arange(4), np.zeros(4, np.int64), np.arange(4))


def test_hand_over_timing_joins_a_pair_appearance_alone_leaves_apart() -> None:
    """30 people each handed over from camera 0 to camera 1 0.2 s after leaving it (cosine 0.8 across the
    views); the last one's views are at cosine 0.5, below the calibrated threshold (about 0.6). Given the
    crops' timestamps, the learned hand-over timing joins it; without them it stays two clusters."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(30, D))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    feats, tracklets, cameras, stamps = [], [], [], []
    for p in range(30):
        other = rng.normal(size=D)
        other -= (other @ base[p]) * base[p]
        cosine = 0.5 if p == 29 else 0.8
        view = cosine * base[p] + np.sqrt(1 - cosine**2) * other / np.linalg.norm(other)
        for cam, vec, start in ((0, base[p], 40.0 * p), (1, view, 40.0 * p + 10.2)):
            for j in range(4):
                feats.append(vec + 0.02 * rng.normal(size=D))
                tracklets.append(2 * p + cam)
                cameras.append(cam)
                stamps.append(start + 3.0 * j)
    feats = np.asarray(feats, np.float32)
    tracklets, cameras, stamps = np.asarray(tracklets), np.asarray(cameras), np.asarray(stamps)
    frames = np.round(stamps * 10).astype(np.int64)
    args = (feats, tracklets, cameras, frames)
    plain = tracklet_pseudo_labels(*args, min_crops=1, center_cameras=False)
    timed = tracklet_pseudo_labels(*args, min_crops=1, center_cameras=False, timestamps=stamps)
    last = tracklets == 58
    assert plain.labels[last][0] != plain.labels[tracklets == 59][0]
    assert timed.labels[last][0] == timed.labels[tracklets == 59][0]
    assert timed.num_clusters == 30 and timed.cross_camera == 30
    with pytest.raises(ValueError, match="timestamps"):
        tracklet_pseudo_labels(*args, timestamps=stamps[:-1])


def test_must_links_join_views_appearance_keeps_apart() -> None:
    """Person 0's two views look like strangers (camera 1 shows someone else's appearance, as a back view
    can): alone the labels keep them apart; a must-link from the overlapping views joins them. A must-link
    between two tracklets of one camera at once (a cannot-link) and unknown tracklet ids are dropped."""
    feats, tracklets, cameras, frames, person = two_camera_crops(noise=0.3)
    rng = np.random.default_rng(3)
    feats[tracklets == 4] = rng.normal(size=(int((tracklets == 4).sum()), D)) * 3.0
    plain = tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=1)
    assert plain.labels[tracklets == 0][0] != plain.labels[tracklets == 4][0] and plain.linked == 0
    links = np.array([[0, 4], [1, 2], [4, 99]])
    linked = tracklet_pseudo_labels(feats, tracklets, cameras, frames, min_crops=1, links=links)
    assert linked.linked == 1
    assert linked.labels[tracklets == 0][0] == linked.labels[tracklets == 4][0]
    assert linked.labels[tracklets == 1][0] != linked.labels[tracklets == 2][0]
    for p in range(4):  # still one label per person
        assert len(np.unique(linked.labels[person == p])) == 1
    with pytest.raises(ValueError, match="links"):
        tracklet_pseudo_labels(feats, tracklets, cameras, frames, links=np.array([1, 2, 3]))


def test_links_csv_reads_pairs_and_names_bad_rows(tmp_path) -> None:
    from reid.trainer.data import read_links

    good = tmp_path / "links.csv"
    good.write_text("tracklet_a,tracklet_b,common_frames\n3,7,40\n1,2,12\n")
    assert read_links(good).tolist() == [[3, 7], [1, 2]]
    (tmp_path / "empty.csv").write_text("tracklet_a,tracklet_b\n")
    assert read_links(tmp_path / "empty.csv").shape == (0, 2)
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="tracklet_a,tracklet_b"):
        read_links(tmp_path / "header.csv")
    (tmp_path / "row.csv").write_text("tracklet_a,tracklet_b\n1,x\n")
    with pytest.raises(ValueError, match="row.csv:2"):
        read_links(tmp_path / "row.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_links(tmp_path / "missing.csv")


def _broken_walks(people: int = 12, crops: int = 6, seed: int = 0):
    """One camera; each person's walk is seen as two tracklets (the tracker lost them for 0.5 s), the second
    starting where the first ended; two people at a time, so their tracklets are cannot-links. Returns
    features (N, D), tracklets, cameras, frames, stamps, boxes and the person of each crop."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, D))
    rows = []
    for p in range(people):
        start, x, y = 10.0 * (p // 2), 100.0 + 300.0 * (p % 2), 200.0 + 10 * p
        for half in (0, 1):
            for j in range(crops):
                t = start + half * (0.5 + 0.4 * (crops - 1)) + 0.4 * j
                x_now = x + 20.0 * (half * (crops - 1) + j) + (0.0 if half == 0 else 5.0)
                box = (x_now - 15, y - 80, x_now + 15, y)
                rows.append((centres[p] + 0.5 * rng.normal(size=D), 2 * p + half, t, box, p))
    feats = np.stack([r[0] for r in rows]).astype(np.float32)
    tracklets = np.array([r[1] for r in rows], np.int64)
    stamps = np.array([r[2] for r in rows])
    boxes = np.array([r[3] for r in rows], np.float64)
    person = np.array([r[4] for r in rows])
    frames = np.round(stamps * 10).astype(np.int64)
    return feats, tracklets, np.zeros(len(rows), np.int64), frames, stamps, boxes, person


def test_continuations_are_the_tracks_that_pick_up_where_another_ended() -> None:
    feats, tracklets, cameras, frames, stamps, boxes, _ = _broken_walks()
    units = tracklet_set(feats, tracklets, cameras, frames).of_crop
    a, b = continuations(units, cameras, stamps, boxes)
    assert sorted(zip(a.tolist(), b.tolist())) == [(2 * p, 2 * p + 1) for p in range(12)]
    still = np.tile(boxes[:1], (len(boxes), 1))  # boxes that carry no place: nothing continues anything
    assert len(continuations(units, cameras, stamps, still)[0]) == 0


def test_model_check_sees_a_model_that_splits_one_walk_in_two() -> None:
    """A model that tells the two stretches of each walk apart (as training on labels that kept them apart
    does) gains nothing elsewhere here, but loses the continuations."""
    feats, tracklets, cameras, frames, stamps, boxes, person = _broken_walks()
    good = model_check(feats, tracklets, cameras, frames, stamps=stamps, boxes=boxes)
    assert good.continuations == 12 and good.continuity == 1.0
    split = feats.copy()
    second = tracklets % 2 == 1
    split[second] = np.random.default_rng(5).normal(size=(int(second.sum()), D)) * 2 + feats[second] * 0.1
    bad = model_check(split, tracklets, cameras, frames, stamps=stamps, boxes=boxes)
    assert bad.continuity < 0.5 and bad.score < good.score
    assert np.isnan(model_check(feats, tracklets, cameras, frames).continuity)  # no boxes: no such part
