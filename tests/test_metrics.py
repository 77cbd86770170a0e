"""evaluate_rank: hand-computed CMC / AP / INP, the Market protocol's removals, torchreid parity."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from reid.metrics import evaluate_rank


def _ranked(matches: str, cams: str | None = None) -> tuple[np.ndarray, ...]:
    """One query (pid 1, camera 0) against a gallery ranked in the given order.

    ``matches``: one letter per gallery item, best first: ``h`` true match, ``n`` other person,
    ``d`` distractor (pid 0), ``j`` junk (pid -1). ``cams``: gallery camera digits (default all 1).
    """
    pid_of = {"h": 1, "n": 2, "d": 0, "j": -1}
    g_pids = np.array([pid_of[c] for c in matches])
    g_camids = np.array([int(c) for c in cams]) if cams else np.ones(len(matches), dtype=int)
    distmat = np.arange(len(matches), dtype=np.float64)[None, :]
    return distmat, np.array([1]), g_pids, np.array([0]), g_camids


@pytest.mark.parametrize(
    ("matches", "cams", "ap", "first", "inp"),
    [
        ("hnhnnhnnhh", None, (1 / 1 + 2 / 3 + 3 / 6 + 4 / 9 + 5 / 10) / 5, 1, 5 / 10),
        ("nnhnh", None, (1 / 3 + 2 / 5) / 2, 3, 2 / 5),
        ("nnnnnnnnnh", None, 1 / 10, 10, 1 / 10),
        ("h", None, 1.0, 1, 1.0),
        # same pid in the query's camera (0) is removed: ranks shift up
        ("hnh", "001", 1 / 2, 2, 1 / 2),
        ("hhnh", "0111", (1 / 1 + 2 / 3) / 2, 1, 2 / 3),
        # another person in the query's camera stays (only same pid AND same camera is removed)
        ("nh", "01", 1 / 2, 2, 1 / 2),
        # junk is removed, distractors count as negatives
        ("jjhdh", None, (1 / 1 + 2 / 3) / 2, 1, 2 / 3),
        ("dh", None, 1 / 2, 2, 1 / 2),
    ],
)
def test_hand_computed(matches: str, cams: str | None, ap: float, first: int, inp: float) -> None:
    res = evaluate_rank(*_ranked(matches, cams), max_rank=5)
    assert res["mAP"] == pytest.approx(ap)
    assert res["mINP"] == pytest.approx(inp)
    expected_cmc = (np.arange(1, min(5, len(matches)) + 1) >= first).astype(float)
    np.testing.assert_allclose(res["cmc"], expected_cmc)
    assert res["num_valid_queries"] == 1


def test_two_queries_average_and_skip_unmatched() -> None:
    distmat = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2], [0.5, 0.6, 0.7]])
    q_pids, g_pids = np.array([1, 2, 9]), np.array([2, 1, 2])  # query 3 (pid 9) has no match: skipped
    q_cams, g_cams = np.array([0, 0, 0]), np.array([1, 1, 1])
    res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    # query 1: ranking 2,1,2 -> hit at rank 2: AP 1/2, INP 1/2; query 2: ranking 1,2,2 -> hits at 2, 3
    assert res["num_valid_queries"] == 2
    assert res["mAP"] == pytest.approx((1 / 2 + (1 / 2 + 2 / 3) / 2) / 2)
    assert res["mINP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    np.testing.assert_allclose(res["cmc"], [0.0, 1.0, 1.0])


def test_chunking_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    dm = rng.random((37, 90))
    args = (rng.integers(1, 8, 37), rng.integers(-1, 8, 90), rng.integers(0, 3, 37), rng.integers(0, 3, 90))
    a, b = evaluate_rank(dm, *args, chunk_size=1), evaluate_rank(dm, *args, chunk_size=1000)
    np.testing.assert_allclose(a["cmc"], b["cmc"])
    assert a["mAP"] == pytest.approx(b["mAP"]) and a["mINP"] == pytest.approx(b["mINP"])


def test_bad_inputs() -> None:
    dm, qp, gp, qc, gc = _ranked("hn")
    with pytest.raises(ValueError, match=r"g_pids: expected shape \(2,\)"):
        evaluate_rank(dm, qp, gp[:1], qc, gc)
    with pytest.raises(ValueError, match="expected \\(Q, G\\)"):
        evaluate_rank(dm[0], qp, gp, qc, gc)
    with pytest.raises(ValueError, match="at least one query whose identity"):
        evaluate_rank(dm, np.array([5]), gp, qc, gc)
    with pytest.raises(ValueError, match="at least one query whose identity"):
        evaluate_rank(*_ranked("hn", "01"))  # the only match is in the query's camera


def _torchreid_rank_module():
    """torchreid's pure-python rank.py, loaded by file (``import torchreid`` needs extra packages)."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchreid (PyPI 'torchreid') not installed")
    for rel in ("reid/metrics/rank.py", "metrics/rank.py"):
        path = Path(next(iter(spec.submodule_search_locations))) / rel
        if path.is_file():
            break
    else:
        pytest.skip("torchreid installed but its metrics/rank.py was not found")
    module_spec = importlib.util.spec_from_file_location("torchreid_rank_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torchreid(seed: int) -> None:
    ref = _torchreid_rank_module()
    rng = np.random.default_rng(seed)
    q, g = 30, 200
    args = (
        rng.random((q, g)),
        rng.integers(1, 12, q),
        rng.integers(0, 12, g),
        rng.integers(0, 3, q),
        rng.integers(0, 3, g),
    )
    cmc, mean_ap = ref.evaluate_rank(*args, max_rank=20, use_cython=False)
    res = evaluate_rank(*args, max_rank=20)
    np.testing.assert_allclose(res["cmc"], cmc, atol=1e-6)
    assert res["mAP"] == pytest.approx(mean_ap, abs=1e-9)
