"""Memories: the momentum update equals its closed form; losses match hand-built references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reid.trainer.memory import CameraProxyMemory, ClusterMemory, HybridMemory, cluster_centroids, momentum_update


def _unit(rows: int, dim: int = 4, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize(
    ("slots", "momentum"),
    [
        ([0, 0, 2], 0.2),
        ([1, 1, 1], 0.5),
        ([2, 0, 1], 0.0),
        ([0, 2, 0], 0.9),
    ],
)
def test_momentum_update_equals_closed_form(slots: list[int], momentum: float) -> None:
    bank, feats = _unit(3, seed=1), _unit(3, seed=2)
    slots_t = torch.tensor(slots)
    expected = bank.clone()
    for s in set(slots):
        mean = feats[slots_t == s].mean(dim=0)
        expected[s] = F.normalize(momentum * bank[s] + (1 - momentum) * mean, dim=0)
    momentum_update(bank, feats, slots_t, momentum)
    torch.testing.assert_close(bank, expected)


def test_momentum_update_hard_uses_least_similar_sample() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    feats = F.normalize(torch.tensor([[1.0, 0.1], [1.0, 1.0], [0.2, 1.0], [0.9, 0.1]]), dim=1)
    momentum_update(bank, feats, torch.tensor([0, 0, 1, 1]), 0.5, hard=True)
    # row 0: sample 1 (cos 0.71) is harder than sample 0 (cos 0.995); row 1: sample 3 is harder than 2.
    torch.testing.assert_close(bank[0], F.normalize(0.5 * torch.tensor([1.0, 0.0]) + 0.5 * feats[1], dim=0))
    torch.testing.assert_close(bank[1], F.normalize(0.5 * torch.tensor([0.0, 1.0]) + 0.5 * feats[3], dim=0))


@pytest.mark.parametrize(
    ("slots", "message"),
    [([0, 3], r"slots: expected values in \[0, 3\)"), ([0], r"slots: expected \(2,\)")],
)
def test_momentum_update_rejects_bad_slots(slots: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        momentum_update(_unit(3), _unit(2), torch.tensor(slots), 0.2)


def test_cluster_centroids_ignore_outliers() -> None:
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [5.0, 5.0]])
    cents = cluster_centroids(feats, torch.tensor([0, 1, 0, -1]))
    torch.testing.assert_close(cents, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_cluster_memory_loss_and_update() -> None:
    feats = _unit(6, seed=3)
    labels = torch.tensor([0, 0, 1, 1, -1, 2])
    mem = ClusterMemory(feats, labels, temperature=0.1, momentum=0.3)
    assert mem.centroids.shape == (3, 4)
    batch = _unit(3, seed=4).requires_grad_(True)
    idx = torch.tensor([0, 3, 5])
    loss = mem(batch, idx)
    expected = F.cross_entropy(batch @ mem.centroids.t() / 0.1, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(loss, expected)
    before = mem.centroids.clone()
    loss.backward()
    assert batch.grad is not None and torch.equal(mem.centroids, before)  # no update hidden in backward
    mem.update(batch.detach(), idx)
    torch.testing.assert_close(mem.centroids[1], F.normalize(0.3 * before[1] + 0.7 * batch[1].detach(), dim=0))


def test_cluster_memory_rejects_outliers_and_empty_clusterings() -> None:
    mem = ClusterMemory(_unit(3), torch.tensor([0, 0, -1]))
    with pytest.raises(ValueError, match="outliers"):
        mem(_unit(1), torch.tensor([2]))
    with pytest.raises(ValueError, match="at least one cluster"):
        ClusterMemory(_unit(2), torch.tensor([-1, -1]))
    with pytest.raises(ValueError, match=r"indices: expected dataset indices in \[0, 3\)"):
        mem(_unit(1), torch.tensor([7]))


def test_hybrid_memory_prototypes_loss_and_update() -> None:
    feats = _unit(5, seed=5)
    slots = torch.tensor([0, 0, 1, 2, 0])  # cluster 0 of three, singletons 1 and 2
    mem = HybridMemory(feats, slots, temperature=0.05, momentum=0.2)
    protos = mem.prototypes()
    torch.testing.assert_close(protos[0], feats[[0, 1, 4]].mean(dim=0))
    torch.testing.assert_close(protos[2], feats[3])
    batch, idx = _unit(2, seed=6), torch.tensor([1, 3])
    torch.testing.assert_close(mem(batch, idx), F.cross_entropy(batch @ protos.t() / 0.05, torch.tensor([0, 2])))
    mem.update(batch, idx)
    torch.testing.assert_close(mem.features[3], F.normalize(0.2 * feats[3] + 0.8 * batch[1], dim=0))
    torch.testing.assert_close(mem.features[0], feats[0])


def test_camera_proxy_memory_builds_one_proxy_per_cluster_and_camera() -> None:
    feats = _unit(6, seed=7)
    labels = torch.tensor([0, 0, 0, 1, 1, -1])
    cams = torch.tensor([0, 1, 1, 0, 0, 1])
    mem = CameraProxyMemory(feats, labels, cams)
    assert mem.proxy_labels.tolist() == [0, 0, 1] and mem.proxy_cams.tolist() == [0, 1, 0]
    assert mem.instance_proxy.tolist() == [0, 1, 1, 2, 2, -1]
    torch.testing.assert_close(mem.proxies[1], F.normalize(feats[1] + feats[2], dim=0))
    batch, idx = _unit(2, seed=8).requires_grad_(True), torch.tensor([0, 4])
    loss = mem(batch, idx)
    loss.backward()
    assert torch.isfinite(loss) and batch.grad is not None
    mem.update(batch.detach(), idx)
    torch.testing.assert_close(mem.proxies[0], F.normalize(0.2 * feats[0] + 0.8 * batch[0].detach(), dim=0))
