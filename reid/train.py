"""Unsupervised ReID training without identity labels (``python -m reid.train``).

One epoch, top to bottom (:func:`run_epoch`):

1. L2-normalised features of every training crop with the eval transform (the previous epoch's, which
   its check already extracted, when there is one); with ``--patch`` (PAUL, ``reid.trainer.patch``), on the first
   epoch only, also every crop's patch features, which fill the patch memory (kept, and momentum-updated,
   for the rest of the run);
2. pseudo labels (:func:`make_pseudo_labels`), by ``--labels``:
   - ``tracklets`` (the default for harvested crops): whole tracklets are the units, joined across cameras
     and within one by calibrated, cannot-link-constrained agglomerative clustering of their
     camera-centred means (``reid.trainer.tracklet_labels``);
   - ``dbscan`` (the default for datasets without tracklets): k-reciprocal Jaccard distance (``reid.cluster``,
     faiss k-NN), DBSCAN with the video constraints when there are any (``reid.trainer.pseudo_labels``); the hybrid
     memory adds SpCL's self-paced reliability;
3. rebuild the memory from the cluster centroids (``reid.trainer.memory``: cluster, hybrid or camera proxies);
4. train ``iters`` iterations on PK batches of pseudo identities (camera-aware: positives from other
   cameras first): contrastive loss against the memory (+ optional batch-hard triplet; + with ``--patch``
   PEDAL against the patch memory and IPFL against each image's augmented copy, which goes through the
   model in the same batch), optimiser step, then the explicit momentum updates of the memories;
   the model's embedding head is its own or, with ``--head relation``, the part / relation head
   (``reid.models.relation``), saved in the checkpoint's ``model_kwargs``; with ``--visibility`` some
   crops first get a synthetic occluder and the head's stripe-visibility scores learn which stripes it
   hid (``reid.trainer.occlusion``, + their binary cross-entropy);
5. check the model without labels on the crops' own constraints (``reid.trainer.model_check``: tracklet halves
   against cannot-link pairs, calibrated cross-camera mutual neighbours) when the crops have tracklets, and
   evaluate on a labelled query/gallery when there is one (labels used for scoring only);
6. write the trainer state for ``--resume``, ``metrics.csv`` and ``metrics.png``, and the checkpoint
   (atomically) when this epoch is the one to keep: the best check so far (every epoch without a check).
   Training stops early after ``--patience`` epochs without a better check
   (``reid.trainer.run``: those records, the run's torch settings and its state).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from configs.device import resolve_device
from reid.console import end_summary, progress, setup_logging
from reid.trainer.check import checkable, epoch_check, record_check, should_stop, start_checks
from reid.trainer.config import TrainConfig, config_from_args, config_to_dict
from reid.trainer.data import EvalSet, TrainData, load_manifest, load_market
from reid.trainer.losses import hard_triplet_loss, ipfl_loss
from reid.trainer.memory import CameraProxyMemory, ClusterMemory, HybridMemory, PatchMemory
from reid.trainer.model import build_model_from_init, head_kwargs
from reid.trainer.occlusion import occlude, stripe_visibility
from reid.trainer.patch import PatchNet, augmented_copies, image_level
from reid.trainer.pseudo_labels import (
    NoClustersError,
    cannot_link_pairs,
    cluster_pseudo_labels,
    cluster_units,
    make_units,
    self_paced_labels,
    singleton_slots,
)
from reid.trainer.run import TrainerState, load_train_state, save_run, torch_settings
from reid.trainer.tracklet_labels import tracklet_pseudo_labels

if TYPE_CHECKING:
    from reid.data.datasets import UnlabeledImages

log = logging.getLogger(__name__)

def _to_device(images: torch.Tensor, cfg: TrainConfig, device: torch.device) -> torch.Tensor:
    """A (B, 3, H, W) batch on ``device`` in the run's memory layout."""
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    return images.to(device).contiguous(memory_format=layout)


def extract_features(
    model: nn.Module, dataset: UnlabeledImages, cfg: TrainConfig, device: torch.device, desc: str,
    patch_net: nn.Module | None = None,
) -> torch.Tensor:  # fmt: skip
    """(N, D) float32 L2-normalised eval-mode embeddings of ``dataset`` (eval transform), on the CPU;
    with ``patch_net``, its (N, P, d) unit patch features of the model's feature maps instead."""
    from torch.utils.data import DataLoader

    from reid.data.transforms import build_eval_transform

    loader = DataLoader(dataset.with_transform(build_eval_transform(*cfg.input_size)),
                        batch_size=cfg.extract_batch, shuffle=False, num_workers=cfg.workers)  # fmt: skip
    model.eval()
    if patch_net is not None:
        patch_net.eval()
    chunks = []
    with torch.no_grad():
        for images, _cams, _idx in progress(loader, desc=desc, leave=False):
            images = _to_device(images, cfg, device)
            if patch_net is not None:
                chunks.append(patch_net(model.featuremaps(images)).cpu())
            else:
                chunks.append(F.normalize(model(images).float(), dim=1).cpu())
    return torch.cat(chunks)


def evaluate(model: nn.Module, ev: EvalSet, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """``{"mAP", "rank1"}`` on the labelled query/gallery (cosine distance, Market protocol)."""
    from reid.metrics import evaluate_rank

    query = extract_features(model, ev.query, cfg, device, "evaluate: query")
    gallery = extract_features(model, ev.gallery, cfg, device, "evaluate: gallery")
    result = evaluate_rank((1.0 - query @ gallery.t()).numpy(), ev.q_pids, ev.g_pids, ev.q_cams, ev.g_cams)
    log.info("evaluation: mAP %.1f%%, Rank-1 %.1f%%", 100 * result["mAP"], 100 * result["cmc"][0])
    return {"mAP": result["mAP"], "rank1": float(result["cmc"][0])}


def label_kind(cfg: TrainConfig, data: TrainData) -> str:
    """``tracklets`` or ``dbscan``: what ``--labels`` means for this data (``auto``: tracklets when there are)."""
    if cfg.labels != "auto":
        if cfg.labels == "tracklets" and data.tracklets is None:
            raise ValueError("labels: 'tracklets' needs crops with tracklet ids (a pipeline manifest)")
        return cfg.labels
    return "tracklets" if data.tracklets is not None and (data.tracklets >= 0).any() else "dbscan"


def _tracklet_labels(features: torch.Tensor, data: TrainData, cfg: TrainConfig):
    """Step 2 with ``--labels tracklets`` (hybrid memory: every outlier becomes its own instance slot)."""
    result = tracklet_pseudo_labels(features.numpy(), data.tracklets, data.cameras, data.frames,
                                    fraction=cfg.label_fraction, min_crops=cfg.min_samples,
                                    timestamps=data.timestamps, links=data.links)  # fmt: skip
    log.info("tracklet pseudo-labels: %s; %d clusters span cameras, %d tracklets merged%s",
             result.calibration.describe(), result.cross_camera, result.merged,
             "" if data.links is None else f", {result.linked} must-links")  # fmt: skip
    if result.num_clusters == 0:
        raise NoClustersError(f"tracklet pseudo-labels: every cluster has fewer than {cfg.min_samples} crops "
                              "(--min-samples); harvest more crops per person (outputs.crop_every)")  # fmt: skip
    if cfg.memory == "hybrid":
        slots = singleton_slots(result.labels)
        return slots, result.num_clusters, int(len(slots) - np.isin(slots, np.arange(result.num_clusters)).sum())
    return result.labels, result.num_clusters, result.num_outliers


def make_pseudo_labels(features: torch.Tensor, data: TrainData, cfg: TrainConfig, state: TrainerState):
    """Step 2: tracklet labels joined across cameras, or Jaccard distance + DBSCAN on tracklet or crop units
    with the constraints (and SpCL reliability for the hybrid memory).

    Returns:
        (labels (N,) int64 numpy — cluster ids with -1 outliers, or hybrid slots all >= 0 —,
        number of clusters, number of outliers / un-clustered instances).
    """
    from reid.cluster import k_reciprocal_jaccard

    if label_kind(cfg, data) == "tracklets":
        return _tracklet_labels(features, data, cfg)
    dist = k_reciprocal_jaccard(features, k1=cfg.k1, k2=min(cfg.k2, cfg.k1 + 1))
    tracklets = data.tracklets if cfg.must_link else None
    cannot = cannot_link_pairs(data.cameras, data.frames) if cfg.cannot_link and data.frames is not None else None
    units = make_units(dist, tracklets, cannot)
    result = cluster_pseudo_labels(units, cfg.eps, cfg.min_samples)
    if cfg.memory != "hybrid":
        return result.labels, result.num_clusters, result.num_outliers
    tight = cluster_units(units, cfg.eps - cfg.eps_gap, cfg.min_samples)
    loose = cluster_units(units, cfg.eps + cfg.eps_gap, cfg.min_samples)
    slots, num_clusters, state.indep_threshold = self_paced_labels(result.labels, tight, loose, state.indep_threshold)
    return slots, num_clusters, int(len(slots) - np.isin(slots, np.arange(num_clusters)).sum())


def build_memory(cfg: TrainConfig, features: torch.Tensor, labels: np.ndarray, cameras: np.ndarray) -> nn.Module:
    """Step 4: a fresh memory initialised from this epoch's features and pseudo labels."""
    labels_t = torch.as_tensor(labels, dtype=torch.int64, device=features.device)
    if cfg.memory == "cluster":
        return ClusterMemory(features, labels_t, cfg.temperature, cfg.momentum, hard=cfg.hard)
    if cfg.memory == "hybrid":
        return HybridMemory(features, labels_t, cfg.temperature, cfg.momentum)
    cams = torch.as_tensor(cameras, dtype=torch.int64, device=features.device)
    return CameraProxyMemory(
        features, labels_t, cams, cfg.camera_temperature, cfg.momentum, cfg.inter_weight, cfg.hard_negatives
    )


def make_train_loader(data: TrainData, labels: np.ndarray, cfg: TrainConfig, epoch: int):
    """PK batches (P = batch_size / K pseudo identities x K crops) for ``cfg.iters`` iterations."""
    from torch.utils.data import DataLoader

    from reid.data.samplers import CameraAwarePKSampler, PKSampler
    from reid.data.transforms import build_train_transform

    k = cfg.num_instances
    num_ids = len(np.unique(labels[labels >= 0]))
    p = min(cfg.batch_size // k, num_ids)
    if p < cfg.batch_size // k:
        log.warning("only %d pseudo identities: batches of %d x %d instead of %d x %d", num_ids, p, k,
                    cfg.batch_size // k, k)  # fmt: skip
    if cfg.camera_sampler:
        sampler = CameraAwarePKSampler(labels, data.cameras, p=p, k=k, seed=cfg.seed, num_batches=cfg.iters)
    else:
        sampler = PKSampler(labels, p=p, k=k, seed=cfg.seed, num_batches=cfg.iters)
    sampler.set_epoch(epoch)
    dataset = data.train.with_transform(build_train_transform(*cfg.input_size))
    return DataLoader(dataset, batch_size=p * k, sampler=sampler, num_workers=cfg.workers, drop_last=True)


def train_iterations(
    model: nn.Module, memory: nn.Module, loader, optimizer: torch.optim.Optimizer, labels: np.ndarray,
    cfg: TrainConfig, device: torch.device, desc: str, state: TrainerState | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Step 5. Returns the mean of ``loss`` and of every term (``contrast``, ``triplet``; ``pedal`` and
    ``ipfl`` with the patch branch of ``state``; ``visibility`` with a visibility head) and the
    per-iteration ``losses`` list."""
    model.train()
    patch_net, patch_memory = (state.patch_net, state.patch_memory) if state is not None else (None, None)
    if patch_net is not None:
        patch_net.train()
    occluding = isinstance(getattr(model, "visibility", None), nn.Module)
    labels_t = torch.as_tensor(labels, dtype=torch.int64)
    history: dict[str, list[float]] = {"losses": [], "contrast": [], "triplet": []}
    for images, _cams, indices in progress(loader, desc=desc, leave=False):
        images, indices, batch = _to_device(images, cfg, device), indices.to(device), len(images)
        visible_rows = None
        if occluding:  # self-supervised part visibility: synthetic occluders hide known stripes
            images, visible_rows = occlude(images, cfg.occlusion)
        if patch_net is not None:  # IPFL: the augmented copies go through the model in the same batch
            images = torch.cat([images, augmented_copies(images)])
        out = model(_to_device(images, cfg, device))
        embedding = F.normalize(out.embedding[:batch], dim=1)
        terms = {"contrast": memory(embedding, indices), "triplet": torch.zeros(())}
        loss = terms["contrast"]
        if cfg.triplet_weight > 0:
            terms["triplet"] = hard_triplet_loss(out.features[:batch], labels_t[indices.cpu()].to(device),
                                                 cfg.triplet_margin)  # fmt: skip
            loss = loss + cfg.triplet_weight * terms["triplet"]
        patches = None
        if patch_net is not None:
            patches = patch_net(out.feature_map)  # (2B, P, d): the batch, then its copies
            terms["pedal"] = patch_memory(patches[:batch], indices)
            neighbours = patch_memory.neighbour_mask(patches[:batch].detach(), indices)
            terms["ipfl"] = ipfl_loss(image_level(patches[:batch]), image_level(patches[batch:]), neighbours,
                                      cfg.ipfl_margin)  # fmt: skip
            loss = loss + cfg.patch_weight * terms["pedal"] + cfg.ipfl_weight * terms["ipfl"]
        if occluding:
            target = stripe_visibility(visible_rows, out.visibility.shape[1]).to(device)
            terms["visibility"] = F.binary_cross_entropy_with_logits(out.visibility[:batch], target)
            loss = loss + cfg.visibility_weight * terms["visibility"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            memory.update(embedding.detach(), indices)
            if patches is not None:
                patch_memory.update(patches[:batch].detach(), indices)
        for key, value in {"losses": loss, **terms}.items():
            history.setdefault(key, []).append(value.item())
    means = {key: float(np.mean(values)) for key, values in history.items() if key != "losses"}
    return {"loss": float(np.mean(history["losses"])), **means, "losses": history["losses"]}


def run_epoch(
    model: nn.Module, data: TrainData, cfg: TrainConfig, state: TrainerState, optimizer, device: torch.device
) -> dict[str, Any]:
    """One clustering round plus ``cfg.iters`` training iterations: the recipe of the module doc."""
    epoch = state.epoch
    torch.manual_seed(cfg.seed * 1000 + epoch)  # augmentation stream: repeatable through --resume
    t0 = time.perf_counter()
    features, state.features = state.features, None  # the previous epoch's check extracted them already
    if features is None:
        features = extract_features(model, data.train, cfg, device, desc=f"epoch {epoch + 1}: features")
    if state.patch_net is not None and state.patch_memory is None:  # --patch: fill the patch memory once
        patches = extract_features(model, data.train, cfg, device, f"epoch {epoch + 1}: patches", state.patch_net)
        state.patch_memory = build_patch_memory(cfg, patches.to(device))
    t1 = time.perf_counter()
    labels, num_clusters, num_outliers = make_pseudo_labels(features, data, cfg, state)
    t2 = time.perf_counter()
    log.info("epoch %d: %d clusters, %d outliers / un-clustered of %d crops (eps %.3f)",
             epoch + 1, num_clusters, num_outliers, len(labels), cfg.eps)  # fmt: skip
    memory = build_memory(cfg, features.to(device), labels, data.cameras).to(device)
    loader = make_train_loader(data, labels, cfg, epoch)
    stats = train_iterations(model, memory, loader, optimizer, labels, cfg, device, f"epoch {epoch + 1}: train",
                             state)  # fmt: skip
    t3 = time.perf_counter()
    return {
        "epoch": epoch + 1, **{k: v for k, v in stats.items() if k != "losses"},
        "clusters": num_clusters, "outliers": num_outliers, "lr": optimizer.param_groups[0]["lr"],
        "extract_s": t1 - t0, "cluster_s": t2 - t1, "train_s": t3 - t2, "losses": stats["losses"],
    }  # fmt: skip


def build_patch_memory(cfg: TrainConfig, patches: torch.Tensor) -> PatchMemory:
    """Step 1 (``--patch``): PEDAL's memory from (N, P, d) patch features, kept for the rest of the run."""
    return PatchMemory(patches, cfg.patch_temperature, cfg.momentum, cfg.patch_neighbours)


def make_optimizer(model: nn.Module, cfg: TrainConfig, extra: nn.Module | None = None):
    """Adam with weight decay and a 10x step decay every ``step_size`` epochs (over ``extra``'s parameters too)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if extra is not None:
        params += [p for p in extra.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=0.1)
    return optimizer, scheduler


def _model_and_state(cfg: TrainConfig, device: torch.device):
    """Model, optimizer, scheduler and trainer state: fresh from ``--init`` or restored by ``--resume``."""
    from reid.models import build_model

    resumed = load_train_state(cfg.resume) if cfg.resume is not None else None
    if resumed is not None:
        arch, model_kwargs = resumed["arch"], resumed["model_kwargs"]
        model = build_model(arch, **model_kwargs)
        model.load_state_dict(resumed["model"])
    else:
        model, arch, model_kwargs = build_model_from_init(cfg.arch, cfg.init, head_kwargs(cfg))
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    patch_net = None
    if cfg.patch:
        if not hasattr(model, "feature_channels"):
            raise ValueError(f"patch: expected a CNN with a feature map (osnet*, resnet50), got {arch}")
        patch_net = PatchNet(model.feature_channels, cfg.patches, cfg.patch_dim).to(device)
    optimizer, scheduler = make_optimizer(model, cfg, patch_net)
    state = TrainerState(history=[], patch_net=patch_net)
    if resumed is not None:
        if ("patch_net" in resumed) != cfg.patch:
            trained = "with" if "patch_net" in resumed else "without"
            raise ValueError(f"resume: {cfg.resume} was trained {trained} --patch; resume it {trained} --patch")
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        state = TrainerState(
            resumed["epoch"], resumed["indep_threshold"], list(resumed["history"]), resumed.get("checks"),
            patch_net=patch_net,
        )
        if patch_net is not None:
            patch_net.load_state_dict(resumed["patch_net"])
            if resumed.get("patch_bank") is not None:
                state.patch_memory = build_patch_memory(cfg, resumed["patch_bank"].to(device))
        log.info("resuming %s after epoch %d", cfg.resume, state.epoch)
    return model, arch, model_kwargs, optimizer, scheduler, state


def train(
    cfg: TrainConfig, created_by: str | None = None, data: TrainData | None = None,
    on_epoch: Callable[[dict[str, Any], torch.Tensor | None], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run (or resume) training per ``cfg``; returns the per-epoch history (also in ``metrics.csv``).

    ``data`` replaces the data ``cfg`` names (a caller's own label-free set, e.g. a benchmark's tracklets).
    ``on_epoch(row, features)`` sees each epoch's row before it is recorded, with the crop features of the
    epoch's model when the check extracted them (None otherwise); columns it adds are kept in the history.
    """
    with torch_settings(cfg.seed, cfg.threads):
        device = torch.device(resolve_device(cfg.device))
        model, arch, model_kwargs, optimizer, scheduler, state = _model_and_state(cfg, device)
        if data is None:
            data = load_market(cfg) if cfg.dataset == "market1501" else load_manifest(cfg)
        log.info("training on %s (%d crops, %d skipped) with %s (%s head), %s memory%s, on %s", data.description,
                 len(data.train), data.skipped, arch, model_kwargs.get("head", "global"), cfg.memory,
                 " + patch branch" if cfg.patch else "", device)  # fmt: skip
        created_by = created_by or " ".join(shlex.quote(a) for a in sys.argv)
        if state.checks is None:
            state.checks = {"enabled": False}
            if checkable(cfg, data):
                state.features = extract_features(model, data.train, cfg, device, desc="start: features")
                state.checks = start_checks(state.features, data, cfg)
        while state.epoch < cfg.epochs:
            row = run_epoch(model, data, cfg, state, optimizer, device)
            scheduler.step()
            state.epoch += 1
            keep = True
            if state.checks.get("enabled"):
                state.features = extract_features(model, data.train, cfg, device, f"epoch {state.epoch}: check")
                keep = record_check(state.checks, epoch_check(state.features, data, cfg), state.epoch, row)
            due = state.epoch == cfg.epochs or (cfg.eval_every and state.epoch % cfg.eval_every == 0)
            if data.evaluation is not None and cfg.evaluate and due:
                row.update(evaluate(model, data.evaluation, cfg, device))
            if on_epoch is not None:
                on_epoch(row, state.features)
            state.history.append(row)
            checks = state.checks or {}
            summary = {"data": data.description, "crops": len(data.train), "skipped": data.skipped,
                       "epochs": state.epoch, "clusters": row["clusters"], "memory": cfg.memory,
                       "labels": label_kind(cfg, data), "check": row.get("check"),
                       "start_check": checks.get("start"), "config": config_to_dict(cfg)}  # fmt: skip
            trainer = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "epoch": state.epoch, "indep_threshold": state.indep_threshold,
                       "history": state.history, "checks": state.checks}  # fmt: skip
            if state.patch_net is not None:
                trainer.update(patch_net=state.patch_net.state_dict(), patch_bank=state.patch_memory.bank.cpu())
            save_run(Path(cfg.out), model, arch, model_kwargs, cfg, created_by, summary, trainer, keep)
            if should_stop(state.checks, state.epoch, cfg.patience):
                break
        return state.history


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit code 0 on success, 130 on Ctrl-C, 2 on bad input."""
    setup_logging("INFO")
    try:
        cfg = config_from_args(argv)
        history = train(cfg, created_by=" ".join(["python -m reid.train", *map(shlex.quote, argv or sys.argv[1:])]))
    except KeyboardInterrupt:
        log.warning("interrupted: the last complete epoch's checkpoint in the run folder stays valid")
        return 130
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    if history:
        print(train_summary(history, Path(cfg.out)))
    return 0


def train_summary(history: list[dict], out: Path) -> str:
    """The end-of-training lines: epochs, clusters, scores, the kept checkpoint and the command that uses it."""
    last = history[-1]
    facts = [f"{last['epoch']} epochs", f"{last['clusters']} clusters"]
    if "mAP" in last:
        facts += [f"mAP {last['mAP']:.1%}", f"Rank-1 {last['rank1']:.1%}"]
    kept = [r for r in history if r.get("kept")]
    checkpoint = out / "checkpoint.pth"
    if kept:
        facts.append(f"kept epoch {kept[-1]['epoch']} (label-free check {kept[-1]['check']:.4f})")
    steps = [f"mcpa run --cameras CAMS.yaml --reid {checkpoint}",
             f"python -m reid.evaluate --dataset market1501 --root MARKET --weights {checkpoint}"]  # fmt: skip
    return end_summary("train done", facts, checkpoint if checkpoint.is_file() else out, steps)


if __name__ == "__main__":
    raise SystemExit(main())
