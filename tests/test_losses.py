"""Losses against literal values and loop references."""

from __future__ import annotations

import math

import pytest
import torch

from reid.trainer.losses import camera_proxy_loss, hard_triplet_loss, info_nce


def test_info_nce_literal() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(2)) / 2
    assert info_nce(logits, torch.tensor([0, 1])).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("logits_shape", "targets", "message"),
    [((2, 3), [0, 3], r"targets: expected values in \[0, 3\)"), ((2, 3), [0], r"expected logits \(B, S\)")],
)
def test_info_nce_rejects_bad_input(logits_shape: tuple[int, int], targets: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        info_nce(torch.zeros(logits_shape), torch.tensor(targets))


def _camera_proxy_reference(logits, targets, proxy_labels, proxy_cams, weight, k) -> float:
    total = 0.0
    for row, t in zip(logits.tolist(), targets.tolist()):
        same = [j for j in range(len(row)) if proxy_cams[j] == proxy_cams[t]]
        intra = -row[t] + math.log(sum(math.exp(row[j]) for j in same))
        pos = [j for j in range(len(row)) if proxy_labels[j] == proxy_labels[t]]
        neg = sorted((row[j] for j in range(len(row)) if proxy_labels[j] != proxy_labels[t]), reverse=True)[:k]
        norm = math.log(sum(math.exp(row[j]) for j in pos) + sum(math.exp(v) for v in neg))
        inter = sum(norm - row[j] for j in pos) / len(pos)
        total += intra + weight * inter
    return total / len(targets)


@pytest.mark.parametrize("k", [1, 2, 10])
def test_camera_proxy_loss_matches_loop_reference(k: int) -> None:
    logits = torch.tensor([[1.0, 0.5, -0.2, 0.3, 0.0], [0.1, 0.9, 0.4, -1.0, 0.2], [0.0, 0.0, 2.0, 0.5, 1.0]])
    targets = torch.tensor([0, 1, 2])
    proxy_labels = torch.tensor([0, 0, 1, 1, 2])
    proxy_cams = torch.tensor([0, 1, 0, 1, 1])
    got = camera_proxy_loss(logits, targets, proxy_labels, proxy_cams, inter_weight=0.5, hard_negatives=k)
    ref = _camera_proxy_reference(logits, targets, proxy_labels.tolist(), proxy_cams.tolist(), 0.5, k)
    assert got.item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize(
    ("points", "labels", "margin", "expected"),
    [
        # anchors 0,1: d_ap 1, d_an 3 and 2 -> relu(1-3+.5)=0, relu(1-2+.5)=0; anchor 2 has no positive
        ([0.0, 1.0, 3.0], [0, 0, 1], 0.5, 0.0),
        # d_ap 2 for both, d_an 1 (anchor 0) and 1 (anchor 1): relu(2-1+.3)=1.3
        ([0.0, 2.0, 1.0], [0, 0, 1], 0.3, 1.3),
        ([0.0, 1.0], [0, 1], 0.3, 0.0),  # no anchor has a positive
    ],
)
def test_hard_triplet_loss_literal(points: list[float], labels: list[int], margin: float, expected: float) -> None:
    feats = torch.tensor(points)[:, None].requires_grad_(True)
    loss = hard_triplet_loss(feats, torch.tensor(labels), margin)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert torch.isfinite(feats.grad).all()
