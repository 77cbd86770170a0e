"""k-reciprocal Jaccard distance and re-ranking against a plain brute-force reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from reid.cluster import k_reciprocal_jaccard, nearest_neighbours
from reid.rerank import re_rank


def brute_force_jaccard(x: np.ndarray, k1: int, k2: int, row_scale: np.ndarray | None = None) -> np.ndarray:
    """Zhong et al.'s k-reciprocal Jaccard distance written out with loops over dense matrices."""
    n = len(x)
    x = x.astype(np.float64)
    d = np.maximum(2 - 2 * x @ x.T, 0)
    rank = np.argsort(d, axis=1, kind="stable")

    def reciprocal(i: int, k: int) -> list[int]:
        return [j for j in rank[i, : k + 1] if i in rank[j, : k + 1]]

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for c in r:
            rc = reciprocal(c, int(np.around(k1 / 2)))
            if len(set(rc) & set(r)) > 2 / 3 * len(rc):
                expanded |= set(rc)
        idx = sorted(expanded)
        w = np.exp(-d[i, idx] / (1.0 if row_scale is None else row_scale[i]))
        v[i, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jd = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            jd[i, j] = 1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum()
    return jd


def brute_force_rerank(q: np.ndarray, g: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    x = np.concatenate([q, g]).astype(np.float64)
    d = np.maximum(2 - 2 * x @ x.T, 0)
    row_max = d.max(axis=1)
    jd = brute_force_jaccard(x, k1, k2, row_scale=row_max)
    nq = len(q)
    return (1 - lam) * jd[:nq, nq:] + lam * d[:nq, nq:] / row_max[:nq, None]


def clustered(n: int, dim: int, clusters: int, seed: int, spread: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("n", "dim", "clusters", "k1", "k2", "seed"),
    [
        (30, 8, 3, 20, 6, 0),
        (60, 16, 6, 20, 6, 1),
        (45, 4, 5, 10, 3, 2),
        (50, 32, 8, 5, 1, 3),
        (40, 12, 4, 7, 2, 4),
    ],
)
@pytest.mark.parametrize("search_with", ["faiss", "numpy"])
def test_jaccard_equals_brute_force(
    n: int, dim: int, clusters: int, k1: int, k2: int, seed: int, search_with: str
) -> None:
    x = clustered(n, dim, clusters, seed)
    got = k_reciprocal_jaccard(x, k1=k1, k2=k2, search_with=search_with)
    ref = brute_force_jaccard(x, k1, k2)
    assert got.shape == (n, n) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-6)
    assert np.ptp(ref[~np.eye(n, dtype=bool)]) > 0.3  # not a degenerate case: distances spread out


def test_jaccard_properties_and_torch_input() -> None:
    x = clustered(40, 8, 4, seed=5)
    d = k_reciprocal_jaccard(torch.from_numpy(x * 3.0), k1=8, k2=3)  # unnormalised torch input is accepted
    np.testing.assert_allclose(d, d.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-6)
    assert d.min() >= 0 and d.max() <= 1
    np.testing.assert_allclose(d, k_reciprocal_jaccard(x, k1=8, k2=3), atol=1e-6)


def test_nearest_neighbours_backends_agree() -> None:
    x = clustered(50, 16, 5, seed=6)
    a, b = nearest_neighbours(x, 7, "faiss"), nearest_neighbours(x, 7, "numpy")
    assert a.shape == (50, 7) and (a[:, 0] == np.arange(50)).all()
    np.testing.assert_array_equal(a, b)
    assert nearest_neighbours(x[:3], 7, "numpy").shape == (3, 3)


@pytest.mark.parametrize(("q", "g", "k1", "k2", "lam"), [(8, 30, 20, 6, 0.3), (12, 40, 10, 3, 0.5), (5, 25, 6, 1, 0.0)])
def test_rerank_equals_brute_force(q: int, g: int, k1: int, k2: int, lam: float) -> None:
    x = clustered(q + g, 16, 5, seed=q)
    got = re_rank(x[:q], x[q:], k1=k1, k2=k2, lambda_value=lam)
    assert got.shape == (q, g) and got.dtype == np.float32
    np.testing.assert_allclose(got, brute_force_rerank(x[:q], x[q:], k1, k2, lam), atol=2e-6)


def test_rerank_lambda_one_keeps_the_original_ranking() -> None:
    x = clustered(40, 16, 4, seed=7)
    d = re_rank(x[:10], x[10:], k1=8, k2=3, lambda_value=1.0)
    np.testing.assert_array_equal(np.argsort(d, axis=1), np.argsort(1 - x[:10] @ x[10:].T, axis=1))


def test_rerank_matches_torchreid_reference() -> None:
    spec = importlib.util.find_spec("torchreid")
    path = Path(next(iter(spec.submodule_search_locations))) / "reid/utils/rerank.py" if spec else None
    if path is None or not path.is_file():
        pytest.skip("torchreid (PyPI 'torchreid') with reid/utils/rerank.py not installed")
    module_spec = importlib.util.spec_from_file_location("torchreid_rerank_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    x = clustered(60, 16, 6, seed=8).astype(np.float64)
    q, g = x[:12], x[12:]

    def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(2 - 2 * a @ b.T, 0))

    ref = module.re_ranking(euclidean(q, g), euclidean(q, q), euclidean(g, g), k1=20, k2=6, lambda_value=0.3)
    np.testing.assert_allclose(re_rank(q, g), ref, atol=2e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k1": 5, "k2": 7}, "k2 <= k1 \\+ 1"),
        ({"search_with": "annoy"}, "search_with"),
        ({"lambda_value": 1.5}, "lambda_value"),
    ],
)
def test_rerank_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    x = clustered(20, 8, 2, seed=9)
    with pytest.raises(ValueError, match=message):
        re_rank(x[:5], x[5:], **kwargs)


def test_empty_inputs() -> None:
    assert k_reciprocal_jaccard(np.zeros((0, 4), np.float32)).shape == (0, 0)
    assert re_rank(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32)).shape == (0, 3)
    assert k_reciprocal_jaccard(np.ones((1, 4), np.float32), k1=0, k2=0).tolist() == [[0.0]]
    pair = clustered(2, 4, 1, seed=0)
    np.testing.assert_allclose(k_reciprocal_jaccard(pair, k1=1, k2=1), brute_force_jaccard(pair, 1, 1), atol=1e-6)


def test_bad_features() -> None:
    with pytest.raises(ValueError, match="\\(N, D\\)"):
        k_reciprocal_jaccard(np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="finite"):
        k_reciprocal_jaccard(np.full((4, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="one dimension"):
        re_rank(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
