"""The trainer's label-free checks (``reid.trainer.model_check``): the starting model's, each epoch's, which epoch
to keep and when to stop.

``checks`` is a plain dict kept in the trainer state (and so through ``--resume``): ``enabled``, ``start``
(the starting model's :class:`ModelCheck` as a dict), ``best`` / ``best_epoch`` (the best trained epoch: the
one ``checkpoint.pth`` holds) and ``peak`` / ``peak_epoch`` (the best including the start: patience counts
from it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from reid.calibration import DEFAULT_FRACTION
from reid.trainer.model_check import ModelCheck, model_check

if TYPE_CHECKING:
    import torch

    from reid.trainer.config import TrainConfig
    from reid.trainer.data import TrainData

log = logging.getLogger("reid.train")


def checkable(cfg: TrainConfig, data: TrainData) -> bool:
    """A check is asked for and the crops carry tracklets (the check's evidence)."""
    return bool(cfg.check and data.tracklets is not None and (data.tracklets >= 0).any())


def label_free_check(features: torch.Tensor, data: TrainData, cfg: TrainConfig) -> ModelCheck:
    """The label-free check of (N, D) features of the training crops, at the linker's default calibration
    fraction (how the deployment will link), whatever fraction the pseudo-labels use."""
    return model_check(features.numpy(), data.tracklets, data.cameras, data.frames, DEFAULT_FRACTION,
                       data.timestamps, data.boxes)  # fmt: skip


def epoch_check(features: torch.Tensor, data: TrainData, cfg: TrainConfig) -> ModelCheck:
    """:func:`label_free_check` of a trained epoch; a model that cannot be checked any more (its features
    turned non-finite, or collapsed so no evidence is left) scores 0, so it is never kept."""
    try:
        return label_free_check(features, data, cfg)
    except ValueError as err:
        log.warning("the trained model cannot be checked (%s): it scores 0", err)
        return ModelCheck(0.0, 0.0, 0.0, 0.0, float("nan"), 0, 0, 0, 0.0)


def start_checks(features: torch.Tensor, data: TrainData, cfg: TrainConfig) -> dict[str, Any]:
    """The checks of a fresh run from the starting model's features; ``{"enabled": False}`` when the crops
    cannot be checked (too few tracklets of two crops)."""
    try:
        start = label_free_check(features, data, cfg)
    except ValueError as err:
        log.warning("no label-free check for this run: %s", err)
        return {"enabled": False}
    log.info("label-free check of the starting model: %.4f (separation %.4f, cross-camera %.4f)",
             start.score, start.separation, start.cross_camera)  # fmt: skip
    return {"enabled": True, "start": start.as_dict(), "best": None, "best_epoch": 0,
            "peak": start.score, "peak_epoch": 0}  # fmt: skip


def record_check(checks: dict[str, Any], check: ModelCheck, epoch: int, row: dict[str, Any]) -> bool:
    """Add ``check``'s columns to the epoch's ``row`` and update ``checks``; True = keep this epoch (the best
    trained epoch so far)."""
    row.update(check.row())
    keep = checks["best"] is None or check.score > checks["best"]
    if keep:
        checks["best"], checks["best_epoch"] = check.score, epoch
    if check.score > checks["peak"]:
        checks["peak"], checks["peak_epoch"] = check.score, epoch
    row["kept"] = int(keep)
    log.info("epoch %d: label-free check %.4f (separation %.4f, cross-camera %.4f; start %.4f)%s",
             epoch, check.score, check.separation, check.cross_camera, checks["start"]["score"],
             ", kept" if keep else "")  # fmt: skip
    return keep


def should_stop(checks: dict[str, Any], epoch: int, patience: int) -> bool:
    """True after ``patience`` epochs (0 = never) without a check better than the best so far, start included."""
    if not checks.get("enabled") or not patience or epoch - checks["peak_epoch"] < patience:
        return False
    log.info("stopping early: no better check for %d epochs (best %.4f at epoch %d)",
             patience, checks["peak"], checks["peak_epoch"])  # fmt: skip
    return True
