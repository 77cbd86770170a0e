"""Memory banks for unsupervised contrastive ReID: cluster, hybrid (SpCL), camera-aware proxies and PAUL's
patch memory (PEDAL).

Every memory is an ``nn.Module`` whose state is buffers (so it moves with ``.to(device)`` and is saved
with ``state_dict``) and exposes the same two calls, keyed by the *dataset indices* of the batch samples
(the memory keeps the per-instance pseudo-label tables it was built with):

- ``forward(features, indices) -> loss``: the contrastive loss of a batch (gradients flow into
  ``features`` only);
- ``update(features, indices)``: the explicit momentum update of the rows those samples belong to,
  run by the trainer under ``torch.no_grad()`` after the optimiser step (never hidden in ``backward``).

``features`` are (B, D) float32 L2-normalised embeddings (the trainer normalises them); ``indices`` are
(B,) int64 indices into the training set the memory was built for.

The update rule, shared by all of them (:func:`momentum_update`), for every row ``s`` hit by the batch::

    bank[s] <- normalize(m * bank[s] + (1 - m) * mean{features[i] : slot[i] == s})

i.e. one vectorised step per row with the batch mean of its samples (not a per-sample sequence). In the
``hard`` mode of :class:`ClusterMemory` the mean is replaced by the hardest sample of the row in the
batch, the one least similar to the current ``bank[s]`` (Cluster-Contrast's hard-instance update).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.trainer.losses import camera_proxy_loss, info_nce, multi_positive_nce


@torch.no_grad()
def momentum_update(
    bank: torch.Tensor, features: torch.Tensor, slots: torch.Tensor, momentum: float, hard: bool = False
) -> None:
    """Update rows of ``bank`` in place (see the module docstring for the closed form).

    Args:
        bank: (S, D) float32, L2-normalised rows.
        features: (B, D) float32 batch embeddings (detached by this function).
        slots: (B,) int64 row of ``bank`` each sample belongs to, in [0, S).
        momentum: ``m`` in [0, 1]; 0 replaces the row, 1 keeps it.
        hard: use the batch sample least similar to the row instead of the batch mean.
    """
    if features.ndim != 2 or features.shape[1] != bank.shape[1]:
        raise ValueError(f"features: expected (B, {bank.shape[1]}), got {tuple(features.shape)}")
    if slots.shape != (features.shape[0],):
        raise ValueError(f"slots: expected ({features.shape[0]},), got {tuple(slots.shape)}")
    if features.shape[0] == 0:
        return
    if int(slots.min()) < 0 or int(slots.max()) >= bank.shape[0]:
        raise ValueError(
            f"slots: expected values in [0, {bank.shape[0]}), got [{int(slots.min())}, {int(slots.max())}]"
        )
    features = features.detach().to(bank.dtype)
    rows, inverse = torch.unique(slots, return_inverse=True)
    if hard:
        sims = (features * bank[slots]).sum(dim=1)
        by_sim = torch.argsort(sims, stable=True)
        by_row = by_sim[torch.argsort(inverse[by_sim], stable=True)]
        counts = torch.bincount(inverse, minlength=len(rows))
        starts = torch.cumsum(counts, 0) - counts
        target = features[by_row[starts]]
    else:
        sums = torch.zeros(len(rows), bank.shape[1], dtype=bank.dtype, device=bank.device)
        sums.index_add_(0, inverse, features)
        counts = torch.bincount(inverse, minlength=len(rows)).to(bank.dtype)
        target = sums / counts[:, None]
    bank[rows] = F.normalize(momentum * bank[rows] + (1.0 - momentum) * target, dim=1)


def cluster_centroids(features: torch.Tensor, labels: torch.Tensor, num_clusters: int | None = None) -> torch.Tensor:
    """L2-normalised mean feature of every cluster.

    Args:
        features: (N, D) float32.
        labels: (N,) int64 cluster ids, -1 (outlier) ignored.
        num_clusters: C (default ``labels.max() + 1``); a cluster without members gets a zero row.
    Returns:
        (C, D) float32.
    """
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels: expected ({features.shape[0]},), got {tuple(labels.shape)}")
    num = int(labels.max()) + 1 if num_clusters is None else num_clusters
    keep = labels >= 0
    sums = torch.zeros(max(num, 0), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels[keep], features[keep])
    return F.normalize(sums, dim=1)


def _check_batch(features: torch.Tensor, indices: torch.Tensor, dim: int, size: int) -> None:
    if features.ndim != 2 or features.shape[1] != dim:
        raise ValueError(f"features: expected (B, {dim}), got {tuple(features.shape)}")
    if indices.shape != (features.shape[0],):
        raise ValueError(f"indices: expected ({features.shape[0]},), got {tuple(indices.shape)}")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= size):
        raise ValueError(
            f"indices: expected dataset indices in [0, {size}), got [{int(indices.min())}, {int(indices.max())}]"
        )


class ClusterMemory(nn.Module):
    """Cluster-Contrast memory: one L2-normalised centroid per pseudo-label cluster.

    Buffers: ``centroids`` (C, D) float32; ``labels`` (N,) int64 cluster of each training sample (-1 =
    outlier; outliers must not be fed to ``forward``: the sampler skips them). Loss: InfoNCE of each
    sample against all centroids, target its own cluster, logits = cosine / temperature.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        temperature: float = 0.05,
        momentum: float = 0.2,
        hard: bool = False,
    ) -> None:
        """``features`` (N, D) float32 normalised embeddings of the training set, ``labels`` (N,) int64."""
        super().__init__()
        if labels.numel() == 0 or int(labels.max()) < 0:
            raise ValueError("labels: expected at least one cluster (label >= 0), got only outliers")
        self.temperature, self.momentum, self.hard = float(temperature), float(momentum), bool(hard)
        self.register_buffer("labels", labels.to(torch.int64).clone())
        self.register_buffer("centroids", cluster_centroids(features.float(), self.labels))

    def forward(self, features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Scalar InfoNCE loss of (B, D) ``features`` whose dataset indices are ``indices`` (B,)."""
        _check_batch(features, indices, self.centroids.shape[1], len(self.labels))
        targets = self.labels[indices]
        if bool((targets < 0).any()):
            raise ValueError("ClusterMemory: the batch holds outliers (label -1); sample clustered crops only")
        return info_nce(features @ self.centroids.t() / self.temperature, targets)

    @torch.no_grad()
    def update(self, features: torch.Tensor, indices: torch.Tensor) -> None:
        """Momentum update of the centroids of the batch's clusters (mean or hard sample)."""
        _check_batch(features, indices, self.centroids.shape[1], len(self.labels))
        momentum_update(self.centroids, features, self.labels[indices], self.momentum, hard=self.hard)


class HybridMemory(nn.Module):
    """SpCL hybrid memory: cluster centroids plus un-clustered instances as their own classes.

    Buffers: ``features`` (N, D) float32 instance bank (one row per training sample); ``labels`` (N,)
    int64 slot of each sample in [0, S): reliable clusters first (0..C-1), then one slot per un-clustered
    instance. A slot's prototype is the mean of its members' bank rows (for a single instance, the row
    itself), so ``forward`` is InfoNCE over S prototypes. ``update`` moves each sample's own bank row.
    """

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.05, momentum: float = 0.2
    ) -> None:
        """``features`` (N, D) float32 normalised bank init, ``labels`` (N,) int64 slots covering 0..S-1."""
        super().__init__()
        if labels.shape != (features.shape[0],) or (labels.numel() and int(labels.min()) < 0):
            raise ValueError(f"labels: expected ({features.shape[0]},) slots >= 0, got {tuple(labels.shape)}")
        self.temperature, self.momentum = float(temperature), float(momentum)
        self.register_buffer("features", F.normalize(features.float(), dim=1).clone())
        self.register_buffer("labels", labels.to(torch.int64).clone())

    def prototypes(self) -> torch.Tensor:
        """(S, D) float32 mean bank row of every slot."""
        num = int(self.labels.max()) + 1
        sums = torch.zeros(num, self.features.shape[1], dtype=self.features.dtype, device=self.features.device)
        sums.index_add_(0, self.labels, self.features)
        counts = torch.bincount(self.labels, minlength=num).clamp(min=1).to(sums.dtype)
        return sums / counts[:, None]

    def forward(self, features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Scalar InfoNCE loss over the S slot prototypes, target each sample's slot."""
        _check_batch(features, indices, self.features.shape[1], len(self.labels))
        return info_nce(features @ self.prototypes().t() / self.temperature, self.labels[indices])

    @torch.no_grad()
    def update(self, features: torch.Tensor, indices: torch.Tensor) -> None:
        """Momentum update of each sample's own instance row (duplicates in a batch are averaged)."""
        _check_batch(features, indices, self.features.shape[1], len(self.labels))
        momentum_update(self.features, features, indices, self.momentum)


class CameraProxyMemory(nn.Module):
    """Camera-aware proxies (CAP): one centroid per (cluster, camera) pair.

    Buffers: ``proxies`` (P, D) float32; ``proxy_labels`` / ``proxy_cams`` (P,) int64; ``instance_proxy``
    (N,) int64 proxy of each sample (-1 for outliers, which must not be fed to ``forward``). The loss is
    the intra-camera InfoNCE (a sample against the proxies of its own camera) plus ``inter_weight`` times
    the inter-camera term (its cluster's proxies in every camera against the ``hard_negatives`` most
    similar proxies of other clusters); see :func:`reid.trainer.losses.camera_proxy_loss`.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        cameras: torch.Tensor,
        temperature: float = 0.07,
        momentum: float = 0.2,
        inter_weight: float = 0.5,
        hard_negatives: int = 50,
    ) -> None:
        """``features`` (N, D) float32, ``labels`` (N,) int64 (-1 outliers), ``cameras`` (N,) int64 >= 0."""
        super().__init__()
        if labels.shape != (features.shape[0],) or cameras.shape != labels.shape:
            raise ValueError(
                f"labels, cameras: expected ({features.shape[0]},), got {tuple(labels.shape)}, {tuple(cameras.shape)}"
            )
        keep = labels >= 0
        if not bool(keep.any()):
            raise ValueError("labels: expected at least one cluster (label >= 0), got only outliers")
        self.temperature, self.momentum = float(temperature), float(momentum)
        self.inter_weight, self.hard_negatives = float(inter_weight), int(hard_negatives)
        pairs = torch.stack([labels[keep], cameras[keep]], dim=1).to(torch.int64)
        unique_pairs, inverse = torch.unique(pairs, dim=0, return_inverse=True)
        instance_proxy = torch.full_like(labels, -1, dtype=torch.int64)
        instance_proxy[keep] = inverse
        self.register_buffer("instance_proxy", instance_proxy)
        self.register_buffer("proxy_labels", unique_pairs[:, 0].contiguous())
        self.register_buffer("proxy_cams", unique_pairs[:, 1].contiguous())
        self.register_buffer("proxies", cluster_centroids(features.float(), instance_proxy, len(unique_pairs)))

    def forward(self, features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Scalar intra-camera + weighted inter-camera proxy loss of the batch."""
        _check_batch(features, indices, self.proxies.shape[1], len(self.instance_proxy))
        targets = self.instance_proxy[indices]
        if bool((targets < 0).any()):
            raise ValueError("CameraProxyMemory: the batch holds outliers (label -1); sample clustered crops only")
        sims = features @ self.proxies.t() / self.temperature
        return camera_proxy_loss(
            sims, targets, self.proxy_labels, self.proxy_cams, self.inter_weight, self.hard_negatives
        )

    @torch.no_grad()
    def update(self, features: torch.Tensor, indices: torch.Tensor) -> None:
        """Momentum update of the proxies of the batch's samples (batch mean per proxy)."""
        _check_batch(features, indices, self.proxies.shape[1], len(self.instance_proxy))
        momentum_update(self.proxies, features, self.instance_proxy[indices], self.momentum)


class PatchMemory(nn.Module):
    """PEDAL's patch memory (PAUL): one L2-normalised row per (crop, patch), kept across epochs.

    Buffer ``bank`` (N, P, d) float32. ``forward(patches, indices)`` is the patch-level discriminative loss:
    patch p of sample i is scored against every crop's row of patch p (cosine / ``temperature``), and its
    positives are its own row and the ``neighbours`` rows most similar to it (chosen without gradient);
    see :func:`reid.trainer.losses.multi_positive_nce`, averaged over the P patches. ``update`` is the momentum
    update of the module docstring on every (sample, patch) row.
    """

    def __init__(
        self, patches: torch.Tensor, temperature: float = 0.1, momentum: float = 0.2, neighbours: int = 4
    ) -> None:
        """``patches`` (N, P, d) float32 unit patch features of the whole training set (the bank's start, taken
        as is: a resumed bank must not be renormalised)."""
        super().__init__()
        if patches.ndim != 3 or len(patches) == 0:
            raise ValueError(f"patches: expected (N, P, d) with N >= 1, got {tuple(patches.shape)}")
        self.temperature, self.momentum, self.neighbours = float(temperature), float(momentum), int(neighbours)
        self.register_buffer("bank", patches.float().clone())

    def _check(self, patches: torch.Tensor, indices: torch.Tensor) -> None:
        if patches.ndim != 3 or patches.shape[1:] != self.bank.shape[1:]:
            raise ValueError(f"patches: expected (B, {self.bank.shape[1]}, {self.bank.shape[2]}), got "
                             f"{tuple(patches.shape)}")  # fmt: skip
        _check_batch(patches[:, 0], indices, self.bank.shape[2], len(self.bank))

    def forward(self, patches: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Scalar PEDAL loss of (B, P, d) unit ``patches`` whose dataset indices are ``indices`` (B,)."""
        self._check(patches, indices)
        sims = torch.einsum("bpd,npd->bpn", patches, self.bank)
        own = F.one_hot(indices, len(self.bank)).bool()[:, None, :].expand_as(sims)
        positive = own.clone()
        k = min(self.neighbours, len(self.bank) - 1)
        if k > 0:
            nearest = sims.detach().masked_fill(own, float("-inf")).topk(k, dim=2).indices
            positive.scatter_(2, nearest, True)
        logits = sims / self.temperature
        return multi_positive_nce(logits.flatten(0, 1), positive.flatten(0, 1))

    @torch.no_grad()
    def neighbour_mask(self, patches: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """(B, B) bool: sample j's crop is among sample i's ``neighbours`` nearest crops of the memory at
        image level (mean patch similarity), or is the same crop; IPFL never uses these as negatives."""
        self._check(patches, indices)
        sims = patches.flatten(1) @ self.bank.flatten(1).t()  # (B, N): P times the mean patch similarity
        sims[torch.arange(len(indices), device=sims.device), indices] = float("-inf")
        k = min(self.neighbours, len(self.bank) - 1)
        near = torch.zeros_like(sims, dtype=torch.bool)
        if k > 0:
            near.scatter_(1, sims.topk(k, dim=1).indices, True)
        return near[:, indices] | (indices[:, None] == indices[None, :])

    @torch.no_grad()
    def update(self, patches: torch.Tensor, indices: torch.Tensor) -> None:
        """Momentum update of the rows of every (sample, patch) of the batch (duplicates averaged)."""
        self._check(patches, indices)
        p = self.bank.shape[1]
        slots = (indices[:, None] * p + torch.arange(p, device=indices.device)[None, :]).flatten()
        momentum_update(self.bank.view(-1, self.bank.shape[2]), patches.flatten(0, 1), slots, self.momentum)


MEMORIES = ("cluster", "hard", "hybrid", "camera")
