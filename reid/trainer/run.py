"""The run of ``python -m reid.train``: its torch settings, its state and the records in its folder.

Records, all in the run folder and each written atomically (temporary file, then ``os.replace``, so
Ctrl-C never leaves a half-written file): ``checkpoint.pth`` (the checkpoint format of ARCHITECTURE.md,
via ``reid.weights.save_checkpoint``), ``train_state.pth`` (everything ``--resume`` needs: weights,
optimizer, scheduler, :class:`TrainerState`), ``metrics.csv`` (one row an epoch) and ``metrics.png``.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid.trainer.config import TrainConfig, config_to_dict

STATE_FILE = "train_state.pth"
CHECKPOINT_FILE = "checkpoint.pth"
METRICS_COLUMNS = ("epoch", "loss", "contrast", "triplet", "pedal", "ipfl", "visibility", "clusters", "outliers", "lr",
                   "extract_s", "cluster_s", "train_s", "check", "separation", "cross_camera",
                   "consistency", "continuity", "link_threshold", "kept", "mAP", "rank1")  # fmt: skip
_STATE_KEYS = (
    "arch",
    "model_kwargs",
    "model",
    "optimizer",
    "scheduler",
    "epoch",
    "indep_threshold",
    "history",
)


@dataclass
class TrainerState:
    """What carries over between epochs (and through ``--resume``)."""

    epoch: int = 0
    indep_threshold: float | None = None
    history: list[dict[str, Any]] | None = None
    checks: dict[str, Any] | None = None  # the label-free checks: start, best kept epoch, peak (for patience)
    features: torch.Tensor | None = None  # the latest model's crop features (not saved: recomputed on resume)
    patch_net: torch.nn.Module | None = None  # --patch: PAUL's PatchNet (trained with the model)
    patch_memory: torch.nn.Module | None = None  # --patch: its patch memory, kept across epochs


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch and make torch deterministic (warn-only where no such kernel exists)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


@contextmanager
def torch_settings(seed: int, threads: int) -> Iterator[None]:
    """Seed everything, make torch deterministic and set its threads for the run; restore afterwards."""
    deterministic, num_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(num_threads)


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` (same folder, so the rename is atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_run(
    out: Path, model: torch.nn.Module, arch: str, model_kwargs: dict[str, Any], cfg: TrainConfig,
    created_by: str, summary: dict[str, Any], trainer: dict[str, Any], checkpoint: bool = True,
) -> None:  # fmt: skip
    """Write the trainer state (``trainer``: optimizer, scheduler, epoch, indep_threshold, history, checks),
    the metrics and, when ``checkpoint``, the epoch's checkpoint into ``out``."""
    from reid.checkpoint import IMAGENET_MEAN, IMAGENET_STD
    from reid.weights import save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    if checkpoint:
        save_checkpoint(out / CHECKPOINT_FILE, model, arch, cfg.input_size, IMAGENET_MEAN, IMAGENET_STD,
                        created_by, summary, model_kwargs)  # fmt: skip
    state = {"arch": arch, "model_kwargs": dict(model_kwargs), "config": config_to_dict(cfg),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **trainer}  # fmt: skip
    _atomic_write(out / STATE_FILE, lambda tmp: torch.save(state, tmp))
    write_metrics(out, trainer["history"], cfg.plot)


def load_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``train_state.pth`` (or a run folder holding it) for ``--resume``.

    Raises:
        FileNotFoundError: nothing there. ValueError: the file is truncated, corrupt or not ours.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"resume: expected a run folder holding {STATE_FILE} or that file, got {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"resume: cannot read {path}: truncated or not a torch file ({type(err).__name__})") from None
    missing = [k for k in _STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(
            f"resume: {path} is not a reid.train state (missing {missing}); pass the run folder or its "
            f"{STATE_FILE} ({CHECKPOINT_FILE} alone holds only weights: use it with --init)"
        )
    return state


def write_metrics(out: Path, history: list[dict[str, Any]], plot: bool = True) -> None:
    """``metrics.csv`` (one row an epoch; mAP/rank1 empty when not evaluated) and ``metrics.png``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    _atomic_write(out / "metrics.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    if plot:
        _atomic_write(out / "metrics.png", lambda tmp: _plot(history, tmp))


def _plot(history: list[dict[str, Any]], path: Path) -> None:
    """Loss, clusters/outliers and mAP/Rank-1 per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    scores = {}
    for key, label in (("mAP", "mAP"), ("rank1", "Rank-1"), ("check", "label-free check"),
                       ("cross_camera", "cross-camera links")):  # fmt: skip
        scored = [r for r in history if r.get(key) is not None]
        if scored:
            scores[label] = ([r["epoch"] for r in scored], [100 * r[key] for r in scored])
    titles = ["training loss", "pseudo labels"] + (["evaluation and check (%)"] if scores else [])  # no empty panel
    fig, axes = plt.subplots(1, len(titles), figsize=(4.4 * len(titles), 3.5), squeeze=False)
    axes = axes[0]
    axes[0].plot(epochs, [r["loss"] for r in history], "o-", label="loss")
    axes[1].plot(epochs, [r["clusters"] for r in history], "o-", label="clusters")
    axes[1].plot(epochs, [r["outliers"] for r in history], "s--", label="outliers / un-clustered")
    for label, (x, y) in scores.items():
        axes[2].plot(x, y, "o-", label=label)
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
