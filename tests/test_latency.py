"""Frame ages: percentiles of what was added, bounded memory over long runs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.latency import FrameAges


def test_percentiles_of_a_known_set() -> None:
    ages = FrameAges()
    for value in np.arange(1, 101) / 100:  # 0.01 .. 1.00 s
        ages.add("a", float(value))
    assert ages.summary("a") == {"p50": pytest.approx(0.505), "p95": pytest.approx(0.9505), "frames": 100}
    assert ages.summary("b") is None


def test_reservoir_keeps_a_uniform_sample_of_a_long_run() -> None:
    ages = FrameAges(size=500)
    for value in np.linspace(0.0, 1.0, 20000):
        ages.add("a", float(value))
    out = ages.summary("a")
    assert out["frames"] == 20000 and ages._kept["a"].shape == (500,)
    assert out["p50"] == pytest.approx(0.5, abs=0.06) and out["p95"] == pytest.approx(0.95, abs=0.03)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="expected an int >= 1, got 0"):
        FrameAges(size=0)
