"""DBSCAN against a brute-force reference; tracklet units, video constraints and self-paced labels on literal
inputs (points on a line or plane, distance = euclidean, so the right answer can be read off)."""

from __future__ import annotations

import numpy as np
import pytest

from reid.trainer.pseudo_labels import (
    CANNOT_LINK_DISTANCE,
    NoClustersError,
    cannot_link_pairs,
    canonical_labels,
    cluster_pseudo_labels,
    cluster_units,
    crop_units,
    dbscan,
    make_units,
    pairs_within_groups,
    self_paced_labels,
    split_cannot_link,
    tracklet_linkage,
)


def _dbscan_reference(dist: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Textbook DBSCAN by breadth-first expansion; border points go to their nearest core point."""
    n = len(dist)
    core = [sum(dist[i, j] <= eps or i == j for j in range(n)) >= min_samples for i in range(n)]
    labels = [-1] * n
    cluster = 0
    for i in range(n):
        if not core[i] or labels[i] >= 0:
            continue
        labels[i], queue = cluster, [i]
        while queue:
            p = queue.pop()
            for q in range(n):
                if core[q] and labels[q] < 0 and dist[p, q] <= eps:
                    labels[q] = cluster
                    queue.append(q)
        cluster += 1
    for i in range(n):
        if not core[i]:
            near = [(dist[i, j], j) for j in range(n) if core[j] and dist[i, j] <= eps]
            if near:
                labels[i] = labels[min(near)[1]]
    return canonical_labels(np.array(labels))


def _points_dist(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - points[None], axis=2).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("eps", "min_samples"), [(0.15, 2), (0.3, 3), (0.5, 5), (0.05, 1)])
def test_dbscan_equals_brute_force(seed: int, eps: float, min_samples: int) -> None:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 2, size=(4, 2))
    points = np.concatenate([centers[rng.integers(0, 4, 30)] + rng.normal(0, 0.15, (30, 2)), rng.uniform(0, 2, (8, 2))])
    dist = _points_dist(points)
    np.testing.assert_array_equal(dbscan(dist, eps, min_samples), _dbscan_reference(dist, eps, min_samples))


def test_dbscan_literal_two_clusters_and_noise() -> None:
    dist = _points_dist(np.array([[0.0, 0], [0.1, 0], [0.2, 0], [5, 5], [5.1, 5], [5, 5.1], [9, 0]]))
    assert dbscan(dist, eps=0.15, min_samples=3).tolist() == [0, 0, 0, 1, 1, 1, -1]
    assert dbscan(np.zeros((0, 0), np.float32), 0.5, 2).tolist() == []


@pytest.mark.parametrize(("dist", "message"), [(np.zeros((2, 3)), "square"), (np.zeros(3), "square")])
def test_dbscan_rejects_non_square(dist: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dbscan(dist, 0.5, 2)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([5, 5, -1, 2, 7, 2], [0, 0, -1, 1, 2, 1]), ([-1, -1], [-1, -1]), ([3, 1, 3], [0, 1, 0])],
)
def test_canonical_labels(labels: list[int], expected: list[int]) -> None:
    assert canonical_labels(np.array(labels)).tolist() == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([0, 1, 0, -1, 1, 0], [[0, 2], [0, 5], [1, 4], [2, 5]]),
        ([-1, -1, 3], []),
        ([2, 2], [[0, 1]]),
    ],
)
def test_pairs_within_groups(keys: list[int], expected: list[list[int]]) -> None:
    assert pairs_within_groups(np.array(keys)).tolist() == expected


def test_cannot_link_pairs_same_camera_same_frame_only() -> None:
    cams = np.array([0, 0, 1, 0, 1, 0])
    frames = np.array([10, 10, 10, 11, 10, -1])
    assert cannot_link_pairs(cams, frames).tolist() == [[0, 1], [2, 4]]


@pytest.mark.parametrize(
    ("tracklets", "expected"),
    [
        ([5, -1, 5, 3, -1, 3], [0, 1, 0, 2, 3, 2]),  # a crop without tracklet is a unit of its own
        ([-1, -1], [0, 1]),
        ([9, 9, 9], [0, 0, 0]),
    ],
)
def test_crop_units(tracklets: list[int], expected: list[int]) -> None:
    assert crop_units(np.array(tracklets)).tolist() == expected


def _line(start: float, count: int = 6, step: float = 0.2) -> np.ndarray:
    """``count`` crops of one tracklet on the x axis, ``step`` apart: (count, 2)."""
    return np.stack([start + step * np.arange(count), np.zeros(count)], axis=1)


def _tracklets_dist(*lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) float32 distances of the crops of all ``lines`` and (N,) int64 tracklet id = line index."""
    return _points_dist(np.concatenate(lines)), np.repeat(np.arange(len(lines)), [len(x) for x in lines])


def test_tracklet_linkage_is_the_larger_one_way_lower_median() -> None:
    # A: x = 0 .. 1.0, B: x = 1.05 .. 2.05. A's crops lie 1.05, 0.85, 0.65, 0.45, 0.25, 0.05 from B's
    # nearest crop: lower median 0.45 (and the same for B). Single linkage: the closest pair, 0.05.
    dist, tracklets = _tracklets_dist(_line(0.0), _line(1.05))
    units = crop_units(tracklets)
    np.testing.assert_allclose(tracklet_linkage(dist, units), [[0, 0.45], [0.45, 0]], atol=1e-6)
    np.testing.assert_allclose(tracklet_linkage(dist, units, quantile=0.0), [[0, 0.05], [0.05, 0]], atol=1e-6)
    # Unequal sizes: A (6 crops) -> lone crop at 1.1 is 0.5 (lower median of 1.1 .. 0.1), the crop -> A 0.1.
    dist, tracklets = _tracklets_dist(_line(0.0), _line(1.1, count=1))
    np.testing.assert_allclose(tracklet_linkage(dist, crop_units(tracklets)), [[0, 0.5], [0.5, 0]], atol=1e-6)


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ((0.0, 1.05), [0] * 6 + [1] * 6),  # two people, one close crop pair at the ends: must NOT merge
        ((0.0, 1.05, 2.1), [0] * 6 + [1] * 6 + [2] * 6),  # nor chain through two such pairs
        ((0.0, 0.1), [0] * 12),  # one person in two tracklets (interleaved crops): merged
        ((0.0, 5.0), [0] * 6 + [1] * 6),  # far apart
    ],
)
def test_must_link_does_not_chain_tracklets_on_one_close_pair(starts: tuple, expected: list[int]) -> None:
    dist, tracklets = _tracklets_dist(*(_line(s) for s in starts))
    assert cluster_units(make_units(dist.copy(), tracklets), eps=0.25, min_samples=2).tolist() == expected
    if len(set(expected)) > 1 and starts[1] - starts[0] < 2:
        # The defect this replaces: crop-level DBSCAN (what a vote after it sees), or single linkage
        # (= distances inside tracklets set to 0), merges the tracklets into one cluster.
        assert dbscan(dist.copy(), 0.25, 2).max() == 0
        assert cluster_units(make_units(dist.copy(), tracklets, quantile=0.0), 0.25, 2).max() == 0


@pytest.mark.parametrize("seed", range(4))
def test_must_link_gives_one_label_per_tracklet(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 2, size=(40, 2))
    tracklets = rng.integers(-1, 8, size=40)
    labels = cluster_units(make_units(_points_dist(points), tracklets), eps=0.5, min_samples=3)
    for t in np.unique(tracklets[tracklets >= 0]):
        assert len(np.unique(labels[tracklets == t])) == 1
    assert labels.max() >= 0


@pytest.mark.parametrize(("size", "expected"), [(3, [-1, -1, -1]), (4, [0, 0, 0, 0])])
def test_a_tracklet_counts_its_crops_towards_min_samples(size: int, expected: list[int]) -> None:
    # Crops 1.0 apart (eps 0.5): only the tracklet's weight can make it a core unit.
    dist, tracklets = _tracklets_dist(_line(0.0, count=size, step=1.0))
    assert cluster_units(make_units(dist, tracklets), eps=0.5, min_samples=4).tolist() == expected


@pytest.mark.parametrize("seed", range(4))
def test_weighted_dbscan_equals_dbscan_on_repeated_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 2, size=(25, 2))
    weights = rng.integers(1, 4, size=25)
    repeated = np.repeat(np.arange(25), weights)
    weighted = dbscan(_points_dist(points), 0.3, 4, weights)
    first_copy = np.cumsum(weights) - weights
    assert weighted.tolist() == dbscan(_points_dist(points[repeated]), 0.3, 4)[first_copy].tolist()


def test_cannot_link_separates_two_tracklets_that_would_merge() -> None:
    dist, tracklets = _tracklets_dist(_line(0.0), _line(0.1))  # one person by appearance...
    cannot = np.array([[2, 8]])  # ...but two boxes in one frame
    assert cluster_units(make_units(dist, tracklets, cannot), 0.25, 2).tolist() == [0] * 6 + [1] * 6


def test_split_cannot_link_separates_the_pair_and_attaches_the_rest_to_the_nearest() -> None:
    # A chain 0-1-2-3 on a line, one cluster; 0 and 3 are cannot-link.
    dist = _points_dist(np.array([[0.0, 0], [1.0, 0], [2.2, 0], [3.0, 0]]))
    labels = split_cannot_link(np.array([0, 0, 0, 0]), dist, np.array([[0, 3]]))
    assert labels.tolist() == [0, 0, 1, 1]


def test_cluster_pseudo_labels_constraints_and_switches() -> None:
    points = np.array([[0.0, 0], [0.1, 0], [0.2, 0], [3.0, 0], [3.9, 0], [9, 9]])
    tracklets = np.array([-1, -1, -1, 5, 5, -1])
    cannot = np.array([[0, 2]])
    plain = cluster_pseudo_labels(make_units(_points_dist(points)), eps=0.25, min_samples=2)
    assert plain.labels.tolist() == [0, 0, 0, -1, -1, -1] and plain.num_outliers == 3
    must = cluster_pseudo_labels(make_units(_points_dist(points), tracklets), eps=0.25, min_samples=2)
    assert must.labels.tolist() == [0, 0, 0, 1, 1, -1] and must.num_clusters == 2
    both = cluster_pseudo_labels(make_units(_points_dist(points), tracklets, cannot), 0.25, 2)
    assert both.labels[0] != both.labels[2] and both.labels[3] == both.labels[4]


def test_make_units_writes_crop_constraints_in_place_and_ignores_them_inside_a_tracklet() -> None:
    dist = np.full((3, 3), 0.5, np.float32)
    units = make_units(dist, None, np.array([[1, 2]]))
    assert units.dist is dist and units.weights is None
    assert dist[1, 2] == dist[2, 1] == CANNOT_LINK_DISTANCE and dist[0, 1] == 0.5
    grouped = make_units(np.full((3, 3), 0.5, np.float32), np.array([4, 4, 7]), np.array([[0, 1], [1, 2]]))
    assert grouped.of_crop.tolist() == [0, 0, 1] and grouped.weights.tolist() == [2, 1]
    assert grouped.cannot_link.tolist() == [[0, 1]] and grouped.dist[0, 1] == CANNOT_LINK_DISTANCE


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dbscan(np.zeros((3, 3)), 0.5, 2, weights=np.ones(2, int)), r"weights: expected shape \(3"),
        (lambda: make_units(np.zeros((3, 3), np.float32), np.array([1, 1])), "tracklets: expected sh"),
        (lambda: make_units(np.zeros((2, 2), np.float32), np.zeros((2, 1))), "tracklets: expected a"),
        (lambda: tracklet_linkage(np.zeros((2, 2)), np.array([0, 0]), quantile=1.5), "quantile: expected"),
    ],
)
def test_bad_input_is_a_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_no_cluster_error_names_eps_and_a_suggestion() -> None:
    dist = _points_dist(np.array([[0.0, 0], [1.0, 0], [2.0, 0]]))
    with pytest.raises(NoClustersError, match=r"3 samples with eps=0.3 .*Try a larger --eps \(e.g. 0.4\)"):
        cluster_pseudo_labels(make_units(dist), eps=0.3, min_samples=2)
    with pytest.raises(NoClustersError, match=r"among 3 crops \(2 tracklet units\) with eps=0.3"):
        cluster_pseudo_labels(make_units(dist, np.array([0, 0, 1])), eps=0.3, min_samples=3)


def test_self_paced_labels_literal() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, -1])
    tight = np.array([0, 0, 0, -1, 1, 1, -1])  # sample 3 is not compact: it leaves cluster 0
    loose = np.array([0, 0, 0, 0, 0, 0, -1])  # cluster 1 (IoU 2/6) is less independent than 0 (4/6)
    slots, num_clusters, thr = self_paced_labels(labels, tight, loose, indep_threshold=0.5)
    assert num_clusters == 1 and thr == 0.5
    assert slots.tolist() == [0, 0, 0, 1, 2, 3, 4]
    _, _, auto = self_paced_labels(labels, tight, loose)
    assert auto == pytest.approx(1 - 2 / 6)
