"""Which epoch the trainer keeps and when it stops, from a sequence of label-free checks."""

from __future__ import annotations

import pytest

from reid.trainer.check import record_check, should_stop
from reid.trainer.model_check import ModelCheck


def _check(score: float) -> ModelCheck:
    return ModelCheck(score, score, score, score, 0.5, 10, 10, 10)


@pytest.mark.parametrize(
    ("start", "scores", "patience", "kept", "stop_at"),
    [
        (0.5, [0.6, 0.7, 0.65, 0.64, 0.8], 2, [1, 1, 0, 0], 4),  # stops 2 epochs after its peak at epoch 2
        (0.9, [0.6, 0.7, 0.65], 2, [1, 1], 2),  # never beats the start: stops 2 epochs after it
        (0.5, [0.6, 0.55, 0.5, 0.4], 0, [1, 0, 0, 0], None),  # patience 0: never stops
    ],
)
def test_best_epoch_is_kept_and_patience_counts_from_the_peak(start, scores, patience, kept, stop_at) -> None:
    checks = {"enabled": True, "start": {"score": start}, "best": None, "best_epoch": 0, "peak": start,
              "peak_epoch": 0}  # fmt: skip
    seen, stopped = [], None
    for epoch, score in enumerate(scores, start=1):
        row: dict = {}
        seen.append(int(record_check(checks, _check(score), epoch, row)))
        assert row["check"] == score and row["kept"] == seen[-1]
        if should_stop(checks, epoch, patience):
            stopped = epoch
            break
    assert seen == kept and stopped == stop_at
    assert checks["best"] == max(scores[: len(seen)])


def test_a_run_without_checks_never_stops_early() -> None:
    assert not should_stop({"enabled": False}, 10, 1)


def test_a_diverged_model_scores_zero_instead_of_failing() -> None:
    import numpy as np
    import torch

    from reid.trainer.check import epoch_check

    data = type("Data", (), {"tracklets": np.arange(6) // 2, "cameras": np.zeros(6, np.int64),
                             "frames": np.arange(6), "timestamps": None, "boxes": None})()  # fmt: skip
    check = epoch_check(torch.full((6, 4), float("nan")), data, None)
    assert check.score == 0.0 and check.tracklets == 0
