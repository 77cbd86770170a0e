"""Configuration of an unsupervised ReID training run: a frozen dataclass, a YAML file and CLI flags.

The records a run writes into its folder (checkpoint, ``train_state.pth``, metrics) and the ``--resume``
reader :func:`reid.trainer.run.load_train_state` live in :mod:`reid.trainer.run`.

Precedence: defaults < ``--config FILE.yaml`` < command-line flags. Every field is a flag of the same
name with dashes (``min_samples`` -> ``--min-samples``; booleans also have ``--no-...``, e.g.
``--no-must-link``). YAML keys are validated like the pipeline config (unknown keys and out-of-range
values name the key and the allowed range).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from configs.validate import ConfigError, build, field, in_range, read_yaml_mapping

MemoryKind = Literal["cluster", "hybrid", "camera"]
HeadKind = Literal["global", "relation"]
LabelKind = Literal["auto", "tracklets", "dbscan"]


@dataclass(frozen=True)
class TrainConfig:
    """All knobs of ``python -m reid.train``; see ``--help`` for each one's meaning."""

    # data (exactly one of dataset+root or manifest)
    dataset: Literal["market1501"] | None = None
    root: str | None = None
    manifest: str | None = None
    max_images: int | None = field(None, check=in_range(1, None))
    out: str = "runs/reid"
    # model
    arch: str | None = None
    init: str | None = None
    input_size: tuple[int, int] = (256, 128)
    head: HeadKind | None = None
    parts: int = field(6, check=in_range(2, 64))
    part_dim: int = field(128, check=in_range(1, 4096))
    visibility: bool = False
    occlusion: float = field(0.5, check=in_range(0.0, 1.0))
    visibility_weight: float = field(1.0, check=in_range(0.0, 100.0))
    # clustering
    k1: int = field(30, check=in_range(1, 1000))
    k2: int = field(6, check=in_range(1, 1000))
    eps: float = field(0.6, check=in_range(0.0, 1.0, low_open=True))
    eps_gap: float = field(0.02, check=in_range(0.0, 0.5))
    min_samples: int = field(4, check=in_range(1, 1000))
    labels: LabelKind = "auto"
    label_fraction: float = field(0.8, check=in_range(0.0, 0.99, low_open=True))
    must_link: bool = True
    links: str | None = None
    cannot_link: bool = True
    # memory and losses
    memory: MemoryKind = "camera"
    hard: bool = False
    temperature: float = field(0.05, check=in_range(0.0, 10.0, low_open=True))
    momentum: float = field(0.2, check=in_range(0.0, 1.0))
    camera_temperature: float = field(0.07, check=in_range(0.0, 10.0, low_open=True))
    inter_weight: float = field(0.5, check=in_range(0.0, 100.0))
    hard_negatives: int = field(50, check=in_range(1, 100000))
    triplet_weight: float = field(0.0, check=in_range(0.0, 100.0))
    triplet_margin: float = field(0.3, check=in_range(0.0, 10.0))
    patch: bool = False
    patches: int = field(6, check=in_range(1, 64))
    patch_dim: int = field(64, check=in_range(1, 4096))
    patch_neighbours: int = field(4, check=in_range(0, 1000))
    patch_temperature: float = field(0.1, check=in_range(0.0, 10.0, low_open=True))
    patch_weight: float = field(1.0, check=in_range(0.0, 100.0))
    ipfl_weight: float = field(1.0, check=in_range(0.0, 100.0))
    ipfl_margin: float = field(0.3, check=in_range(0.0, 10.0))
    # optimisation
    epochs: int = field(20, check=in_range(1, 10000))
    iters: int = field(200, check=in_range(1, 1000000))
    batch_size: int = field(64, check=in_range(2, 4096))
    num_instances: int = field(4, check=in_range(1, 256))
    camera_sampler: bool = True
    lr: float = field(3.5e-4, check=in_range(0.0, 10.0, low_open=True))
    weight_decay: float = field(5e-4, check=in_range(0.0, 1.0))
    step_size: int = field(20, check=in_range(1, 10000))
    # run
    seed: int = 1
    device: str = "auto"
    workers: int = field(0, check=in_range(0, 64))
    threads: int = field(0, check=in_range(0, 1024))
    extract_batch: int = field(64, check=in_range(1, 4096))
    eval_every: int = field(1, check=in_range(0, 10000))
    evaluate: bool = True
    channels_last: bool = True
    plot: bool = True
    check: bool = True
    patience: int = field(2, check=in_range(0, 10000))
    resume: str | None = None


HELP = {
    "dataset": "labelled dataset whose training split is used WITHOUT labels (needs --root)",
    "root": "Market-1501 zip or folder",
    "manifest": "harvested crops: manifest.csv (or its folder) written by the pipeline",
    "max_images": "train on a seeded random subset of this many crops (smoke runs)",
    "out": "run folder: checkpoint.pth, train_state.pth, metrics.csv, metrics.png",
    "arch": "reid.models architecture (default: the --init checkpoint's, else osnet_x0_25)",
    "init": "initial weights: our checkpoint, a torchreid zoo file or ImageNet weights for --arch",
    "input_size": "H W of the network input",
    "head": "embedding head: global (the architecture's own pooling) or relation (horizontal stripes, "
    "one-vs-rest part relations and global contrastive pooling, Park & Ham 2020; CNN backbones); "
    "default: the --init checkpoint's head, else global",
    "parts": "relation head: horizontal stripes P (embedding width (P + 1) x --part-dim)",
    "part_dim": "relation head: width of each stripe's and the global reduced vector",
    "visibility": "relation head: self-supervised stripe visibility that weights each stripe's block of the "
    "embedding, learned from synthetic top / bottom occluders (needs --head relation)",
    "occlusion": "visibility: share of training crops given a synthetic occluder",
    "visibility_weight": "visibility: weight of its binary cross-entropy",
    "k1": "k-reciprocal neighbours for the Jaccard distance",
    "k2": "neighbours for local query expansion",
    "eps": "DBSCAN radius on the Jaccard distance",
    "eps_gap": "hybrid memory: tight/loose eps = eps -/+ gap (self-paced reliability)",
    "min_samples": "DBSCAN neighbours (self included) of a core point",
    "labels": "pseudo-labels: tracklets (joined across cameras by calibrated clustering), dbscan (Jaccard "
    "+ DBSCAN), auto = tracklets when the crops have tracklet ids",
    "label_fraction": "tracklet labels: where the merge threshold sits between strangers and tracklet halves "
    "(higher: fewer, purer merges)",
    "must_link": "crops of one tracklet share a pseudo label; whole tracklets are clustered (manifest)",
    "links": "tracklet labels: CSV of tracklet_a,tracklet_b pairs that are one person by other evidence "
    "(pipeline.adapt writes the run's overlapping-view pairs); each pair shares a pseudo label",
    "cannot_link": "two boxes of one camera in one frame are never one pseudo label",
    "memory": "camera (camera-aware proxies, the default: best on Market), cluster (Cluster-Contrast) or hybrid (SpCL)",
    "hard": "cluster memory: update centroids with the hardest batch sample instead of the mean",
    "temperature": "InfoNCE temperature (cluster and hybrid memories)",
    "momentum": "memory momentum m: row <- normalize(m row + (1-m) batch mean)",
    "camera_temperature": "temperature of the camera-proxy loss",
    "inter_weight": "weight of the inter-camera proxy term",
    "hard_negatives": "hard negative proxies in the inter-camera term",
    "triplet_weight": "weight of the batch-hard triplet loss (0 = off)",
    "triplet_margin": "triplet margin",
    "patch": "add PAUL's patch branch (Yang et al. 2019) to any --memory: a learned patch network on the "
    "backbone's feature map, PEDAL against a patch memory (each patch with its nearest neighbours) and "
    "IPFL against augmented copies; trains the backbone, the saved embedding stays the model's",
    "patches": "patch branch: patches per crop",
    "patch_dim": "patch branch: width of a patch feature",
    "patch_neighbours": "patch branch: k nearest memory rows that count as positives (PEDAL) and are never "
    "negatives (IPFL)",
    "patch_temperature": "patch branch: PEDAL temperature",
    "patch_weight": "patch branch: weight of the PEDAL loss",
    "ipfl_weight": "patch branch: weight of the IPFL loss (image vs its augmented copy)",
    "ipfl_margin": "patch branch: IPFL triplet margin",
    "epochs": "clustering rounds",
    "iters": "training iterations per epoch",
    "batch_size": "images per batch (P identities x K instances)",
    "num_instances": "K: instances per pseudo identity in a batch",
    "camera_sampler": "prefer positives from other cameras in a batch",
    "lr": "Adam learning rate",
    "weight_decay": "Adam weight decay",
    "step_size": "epochs between 10x learning-rate drops",
    "seed": "seed of every random choice (runs are repeatable)",
    "device": "auto, cpu, cuda or cuda:N",
    "workers": "DataLoader worker processes",
    "threads": "torch CPU threads (0 = all cores)",
    "extract_batch": "batch size of feature extraction",
    "eval_every": "evaluate on the labelled query/gallery every N epochs (0 = only at the end)",
    "evaluate": "score on the labelled query/gallery when the dataset has one (labels for scoring only)",
    "channels_last": "NHWC memory layout (about 1.6x faster OSNet training on CPU)",
    "plot": "draw metrics.png after every epoch",
    "check": "score every epoch with the label-free check on the crops' own constraints (crops with "
    "tracklets); checkpoint.pth is the best-checked epoch",
    "patience": "stop after this many epochs without a better label-free check (0 = never)",
    "resume": "continue a run: its folder or its train_state.pth",
}


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(non-None member of an Optional annotation, whether None is allowed)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m reid.train`` argument parser; every option defaults to 'not given' (None)."""
    parser = argparse.ArgumentParser(
        prog="python -m reid.train",
        description="Unsupervised ReID training: cluster pseudo-labels + contrastive memory, label-free.",
    )
    parser.add_argument("--config", help="YAML file with TrainConfig keys (flags override it)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        tp, _ = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"default": None, "help": f"{HELP[f.name]} (default: {f.default})"}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is tuple:
            parser.add_argument(flag, nargs=len(typing.get_args(tp)), type=int, metavar=("H", "W"), **kwargs)
        elif typing.get_origin(tp) is Literal:
            parser.add_argument(flag, choices=typing.get_args(tp), **kwargs)
        else:
            parser.add_argument(flag, type=tp, **kwargs)
    return parser


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse flags (and the optional ``--config`` YAML) into a validated :class:`TrainConfig`."""
    args = vars(build_parser().parse_args(argv))
    raw: dict[str, Any] = {}
    config_path = args.pop("config")
    if config_path is not None:
        raw = load_yaml(config_path)
    raw.update({k: list(v) if isinstance(v, tuple) else v for k, v in args.items() if v is not None})
    return make_config(raw)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping of TrainConfig keys; FileNotFoundError / ConfigError on bad files."""
    return read_yaml_mapping(Path(path), "training config")


def make_config(raw: dict[str, Any]) -> TrainConfig:
    """Validate a mapping of options (types, ranges, and that the data source is given once).

    A ``resume`` without an explicit ``out`` continues writing into the resumed run's folder.
    """
    raw = dict(raw)
    if raw.get("resume") is not None and raw.get("out") is None:
        resume = Path(raw["resume"])
        raw["out"] = str(resume if resume.is_dir() or resume.suffix != ".pth" else resume.parent)
    cfg: TrainConfig = build(TrainConfig, raw, "")
    if (cfg.dataset is None) == (cfg.manifest is None):
        raise ConfigError(
            "data: expected exactly one of --dataset market1501 --root PATH or --manifest PATH, "
            f"got dataset={cfg.dataset!r}, manifest={cfg.manifest!r}"
        )
    if cfg.links is not None and cfg.manifest is None:
        raise ConfigError(f"links: expected with --manifest (tracklet ids of harvested crops), got {cfg.links!r}")
    if cfg.dataset is not None and cfg.root is None:
        raise ConfigError(f"root: --dataset {cfg.dataset} needs --root (its zip or folder)")
    if cfg.batch_size % cfg.num_instances:
        raise ConfigError(f"batch_size: expected a multiple of num_instances={cfg.num_instances}, got {cfg.batch_size}")
    if cfg.eps_gap >= cfg.eps and cfg.memory == "hybrid":
        raise ConfigError(f"eps_gap: expected < eps={cfg.eps} for the hybrid memory, got {cfg.eps_gap}")
    if min(cfg.input_size) < 16:
        raise ConfigError(f"input_size: expected H, W >= 16, got {list(cfg.input_size)}")
    if cfg.visibility and cfg.head != "relation":
        raise ConfigError(f"visibility: expected --head relation, got head={cfg.head!r}")
    if cfg.arch is not None:
        from reid.models import list_models

        if cfg.arch not in list_models():
            raise ConfigError(f"arch: expected one of {list_models()}, got {cfg.arch!r}")
        if (cfg.patch or cfg.head == "relation") and cfg.arch.startswith("vit"):
            raise ConfigError(f"arch: --patch and --head relation need a CNN feature map (osnet*, resnet50), "
                              f"got {cfg.arch!r}")  # fmt: skip
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain-data form (lists for tuples) for checkpoints and logs."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
