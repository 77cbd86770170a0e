"""Losses of the unsupervised ReID trainer: InfoNCE against a memory, camera-proxy loss, batch-hard triplet,
and PAUL's multi-positive InfoNCE (PEDAL) and image-level triplet (IPFL).

All take (B, ...) float32 tensors and return a scalar tensor; none of them touches a memory's state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean InfoNCE (softmax cross-entropy) of each row against its target column.

    Args:
        logits: (B, S) float32 similarities already divided by the temperature.
        targets: (B,) int64 column of each row's positive, in [0, S).
    """
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits (B, S) and targets (B,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(
            f"targets: expected values in [0, {logits.shape[1]}), got [{int(targets.min())}, {int(targets.max())}]"
        )
    return F.cross_entropy(logits, targets)


def camera_proxy_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    proxy_labels: torch.Tensor,
    proxy_cams: torch.Tensor,
    inter_weight: float = 0.5,
    hard_negatives: int = 50,
) -> torch.Tensor:
    """Camera-aware proxy loss (CAP): intra-camera InfoNCE + ``inter_weight`` x inter-camera loss.

    Intra: softmax over the proxies of the sample's own camera, target its own proxy. Inter: the positives
    are every proxy of the sample's cluster (all cameras), the negatives the ``hard_negatives`` most
    similar proxies of other clusters; the loss is ``-mean_p log(exp(l_p) / sum_{pos+neg} exp(l))``.

    Args:
        logits: (B, P) float32 sample-proxy similarities divided by the temperature.
        targets: (B,) int64 proxy of each sample.
        proxy_labels: (P,) int64 cluster of each proxy.
        proxy_cams: (P,) int64 camera of each proxy.
    """
    if logits.ndim != 2 or proxy_labels.shape != (logits.shape[1],) or proxy_cams.shape != proxy_labels.shape:
        raise ValueError(
            f"expected logits (B, P), proxy_labels and proxy_cams (P,), got {tuple(logits.shape)}, "
            f"{tuple(proxy_labels.shape)}, {tuple(proxy_cams.shape)}"
        )
    neg_inf = torch.finfo(logits.dtype).min
    same_cam = proxy_cams[None, :] == proxy_cams[targets][:, None]
    intra = info_nce(logits.masked_fill(~same_cam, neg_inf), targets)
    positive = proxy_labels[None, :] == proxy_labels[targets][:, None]
    k = min(int(hard_negatives), logits.shape[1])
    hard_neg = logits.masked_fill(positive, neg_inf).topk(k, dim=1).values
    log_norm = torch.logsumexp(torch.cat([logits.masked_fill(~positive, neg_inf), hard_neg], dim=1), dim=1)
    mean_pos = (logits * positive).sum(dim=1) / positive.sum(dim=1)
    inter = (log_norm - mean_pos).mean()
    return intra + inter_weight * inter


def hard_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss with Euclidean distances (Hermans et al. 2017).

    For each anchor: its farthest same-label sample and nearest other-label sample;
    ``relu(d_ap - d_an + margin)`` averaged over anchors that have both (0 when none has).

    Args:
        features: (B, D) float32 embeddings.
        labels: (B,) int64 pseudo-labels.
    """
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"expected features (B, D) and labels (B,), got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    dist = torch.cdist(features, features).clamp(min=1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    if not bool(valid.any()):
        return features.sum() * 0.0
    d_ap = dist.masked_fill(~pos_mask, float("-inf")).max(dim=1).values
    d_an = dist.masked_fill(~neg_mask, float("inf")).min(dim=1).values
    return F.relu(d_ap[valid] - d_an[valid] + margin).mean()


def multi_positive_nce(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log(sum_pos exp(l) / sum_all exp(l))`` over rows (PEDAL: a patch and its neighbours).

    Args:
        logits: (B, S) float32 similarities already divided by the temperature.
        positive: (B, S) bool, at least one True per row.
    """
    if logits.ndim != 2 or positive.shape != logits.shape:
        raise ValueError(f"expected logits and positive (B, S), got {tuple(logits.shape)} and {tuple(positive.shape)}")
    if not bool(positive.any(dim=1).all()):
        raise ValueError("positive: expected at least one positive per row, got a row without any")
    neg_inf = torch.finfo(logits.dtype).min
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(logits.masked_fill(~positive, neg_inf), dim=1)).mean()


def ipfl_loss(
    features: torch.Tensor, copies: torch.Tensor, neighbours: torch.Tensor, margin: float = 0.3
) -> torch.Tensor:
    """PAUL's image-level triplet: anchor an image, positive its augmented copy, negative the nearest other
    image or copy of the batch that is not one of the anchor's neighbours (Euclidean distances).

    ``relu(d(a, copy) - min_n d(a, n) + margin)`` averaged over anchors with a negative (0 when none has).

    Args:
        features: (B, D) float32 image-level features of the batch.
        copies: (B, D) float32 the same of the augmented copies, row for row.
        neighbours: (B, B) bool, True where image j counts as i's neighbour (never a negative; the
            diagonal is always excluded).
    """
    if features.ndim != 2 or copies.shape != features.shape or neighbours.shape != (len(features),) * 2:
        raise ValueError(f"expected features and copies (B, D), neighbours (B, B), got {tuple(features.shape)}, "
                         f"{tuple(copies.shape)}, {tuple(neighbours.shape)}")  # fmt: skip
    b = len(features)
    dist = torch.cdist(features, torch.cat([features, copies])).clamp(min=1e-12)  # (B, 2B)
    eye = torch.eye(b, dtype=torch.bool, device=features.device)
    excluded = (neighbours | eye).repeat(1, 2)
    valid = (~excluded).any(dim=1)
    if not bool(valid.any()):
        return features.sum() * 0.0
    d_ap = dist[:, b:].diagonal()
    d_an = dist.masked_fill(excluded, float("inf")).min(dim=1).values
    return F.relu(d_ap[valid] - d_an[valid] + margin).mean()
