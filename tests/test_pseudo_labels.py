"""DBSCAN against a brute-force reference; video constraints and self-paced labels on literal inputs."""

from __future__ import annotations

import numpy as np
import pytest

from reid.pseudo_labels import (
    NoClustersError,
    apply_constraints,
    cannot_link_pairs,
    canonical_labels,
    cluster_pseudo_labels,
    dbscan,
    enforce_must_link,
    pairs_within_groups,
    self_paced_labels,
    split_cannot_link,
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
    ("labels", "tracklets", "expected"),
    [
        ([0, 0, 1, -1], [7, 7, 7, -1], [0, 0, 0, -1]),  # majority vote
        (
            [0, 1, -1, -1, -1],
            [4, 4, 5, 5, -1],
            [0, 0, 1, 1, -1],
        ),  # tie -> lowest label; outlier tracklet -> new
        ([-1, 0, 0], [3, -1, -1], [-1, 0, 0]),  # a one-crop outlier tracklet stays an outlier
    ],
)
def test_enforce_must_link(labels: list[int], tracklets: list[int], expected: list[int]) -> None:
    assert enforce_must_link(np.array(labels), np.array(tracklets)).tolist() == expected


def test_split_cannot_link_separates_the_pair_and_attaches_the_rest_to_the_nearest() -> None:
    # A chain 0-1-2-3 on a line, one cluster; 0 and 3 are cannot-link.
    dist = _points_dist(np.array([[0.0, 0], [1.0, 0], [2.2, 0], [3.0, 0]]))
    labels = split_cannot_link(np.array([0, 0, 0, 0]), dist, np.array([[0, 3]]))
    assert labels.tolist() == [0, 0, 1, 1]


def test_split_cannot_link_keeps_tracklets_together() -> None:
    dist = _points_dist(np.array([[0.0, 0], [2.9, 0], [2.2, 0], [3.0, 0]]))
    # crops 0 and 1 are one tracklet; 1 conflicts with 3 -> the tracklet {0,1} stays whole.
    labels = split_cannot_link(np.array([0, 0, 0, 0]), dist, np.array([[1, 3]]), tracklets=np.array([9, 9, -1, -1]))
    assert labels[0] == labels[1] and labels[1] != labels[3]


def test_cluster_pseudo_labels_constraints_and_switches() -> None:
    points = np.array([[0.0, 0], [0.1, 0], [0.2, 0], [3.0, 0], [3.9, 0], [9, 9]])
    tracklets = np.array([-1, -1, -1, 5, 5, -1])
    cannot = np.array([[0, 2]])
    plain = cluster_pseudo_labels(_points_dist(points), eps=0.25, min_samples=2)
    assert plain.labels.tolist() == [0, 0, 0, -1, -1, -1] and plain.num_outliers == 3
    must = cluster_pseudo_labels(_points_dist(points), eps=0.25, min_samples=2, tracklets=tracklets)
    assert must.labels.tolist() == [0, 0, 0, 1, 1, -1] and must.num_clusters == 2
    both = cluster_pseudo_labels(_points_dist(points), 0.25, 2, tracklets=tracklets, cannot_link=cannot)
    assert both.labels[0] != both.labels[2] and both.labels[3] == both.labels[4]


def test_apply_constraints_writes_distances_in_place() -> None:
    dist = np.full((3, 3), 0.5, np.float32)
    apply_constraints(dist, np.array([1, 1, -1]), np.array([[1, 2]]))
    assert dist[0, 1] == dist[1, 0] == 0.0 and dist[1, 2] == dist[2, 1] == 2.0 and dist[0, 2] == 0.5


def test_no_cluster_error_names_eps_and_a_suggestion() -> None:
    dist = _points_dist(np.array([[0.0, 0], [1.0, 0], [2.0, 0]]))
    with pytest.raises(NoClustersError, match=r"eps=0.3 .*Try a larger --eps \(e.g. 0.4\)"):
        cluster_pseudo_labels(dist, eps=0.3, min_samples=2)


def test_self_paced_labels_literal() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, -1])
    tight = np.array([0, 0, 0, -1, 1, 1, -1])  # sample 3 is not compact: it leaves cluster 0
    loose = np.array([0, 0, 0, 0, 0, 0, -1])  # cluster 1 (IoU 2/6) is less independent than 0 (4/6)
    slots, num_clusters, thr = self_paced_labels(labels, tight, loose, indep_threshold=0.5)
    assert num_clusters == 1 and thr == 0.5
    assert slots.tolist() == [0, 0, 0, 1, 2, 3, 4]
    _, _, auto = self_paced_labels(labels, tight, loose)
    assert auto == pytest.approx(1 - 2 / 6)
