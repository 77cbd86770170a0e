"""PAUL's patch branch: PatchNet shapes and boxes, the patch memory's closed-form update, PEDAL and IPFL
against loop references, and a seeded golden loss on a fixed tiny batch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reid.trainer.losses import ipfl_loss, multi_positive_nce
from reid.trainer.memory import PatchMemory
from reid.trainer.patch import PatchNet, augmented_copies, image_level, initial_boxes

torch.set_num_threads(1)


def _unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.mark.parametrize(
    ("channels", "patches", "dim", "fmap_hw"), [(16, 6, 8, (16, 8)), (32, 1, 4, (4, 2)), (8, 9, 2, (7, 3))]
)
def test_patch_net_shapes_and_boxes_inside_the_map(channels: int, patches: int, dim: int, fmap_hw: tuple) -> None:
    torch.manual_seed(0)
    net = PatchNet(channels, patches, dim)
    fmap = torch.randn(3, channels, *fmap_hw)
    out = net(fmap)
    assert out.shape == (3, patches, dim) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=2), torch.ones(3, patches))
    boxes = net.boxes(fmap)
    assert boxes.shape == (3, patches, 4)
    scale, centre = boxes[..., :2], boxes[..., 2:]
    assert bool(((scale > 0) & (scale < 1)).all()) and bool((centre.abs() + scale <= 1 + 1e-6).all())


def test_patch_net_starts_from_bands_top_to_bottom() -> None:
    expected = torch.tensor([[2 / 3, 0.8, -0.3, 0.0], [2 / 3, 0.8, 0.0, 0.0], [2 / 3, 0.8, 0.3, 0.0]])
    torch.testing.assert_close(initial_boxes(3), expected)
    boxes = PatchNet(4, 3, 2).boxes(torch.randn(2, 4, 8, 4))  # the locator's last layer starts at zero
    torch.testing.assert_close(boxes[0], initial_boxes(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("indices", "momentum"), [([0, 2], 0.2), ([1, 1], 0.5), ([3, 0], 0.0)])
def test_patch_memory_update_equals_closed_form(indices: list[int], momentum: float) -> None:
    bank, batch = _unit(4, 2, 3, seed=1), _unit(2, 2, 3, seed=2)
    memory = PatchMemory(bank, momentum=momentum)
    expected = bank.clone()
    idx = torch.tensor(indices)
    for i in set(indices):
        mean = batch[idx == i].mean(dim=0)  # (P, d): duplicates of one crop are averaged per patch
        expected[i] = F.normalize(momentum * bank[i] + (1 - momentum) * mean, dim=1)
    memory.update(batch, idx)
    torch.testing.assert_close(memory.bank, expected)


def test_patch_memory_update_on_known_vectors() -> None:
    memory = PatchMemory(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]), momentum=0.5)
    memory.update(torch.tensor([[[0.0, 1.0]]]), torch.tensor([0]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(memory.bank, torch.tensor([[[s, s]], [[0.0, 1.0]]]))


def test_pedal_matches_a_loop_reference() -> None:
    bank, batch = _unit(6, 2, 4, seed=3), _unit(3, 2, 4, seed=4)
    indices, k, tau = torch.tensor([0, 4, 5]), 2, 0.1
    got = PatchMemory(bank, temperature=tau, neighbours=k)(batch, indices)
    terms = []
    for b in range(3):
        for p in range(2):
            sims = bank[:, p] @ batch[b, p]
            others = [j for j in torch.argsort(sims, descending=True).tolist() if j != int(indices[b])][:k]
            positives = [int(indices[b]), *others]
            terms.append(-torch.log(torch.exp(sims[positives] / tau).sum() / torch.exp(sims / tau).sum()))
    torch.testing.assert_close(got, torch.stack(terms).mean())


def test_neighbour_mask_and_multi_positive_nce_checks() -> None:
    bank = torch.tensor([[[1.0, 0.0]], [[0.9, 0.1]], [[0.0, 1.0]], [[0.1, 0.9]]])
    memory = PatchMemory(bank, neighbours=1)
    mask = memory.neighbour_mask(F.normalize(bank[[0, 1, 2]], dim=2), torch.tensor([0, 1, 2]))
    assert mask.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    with pytest.raises(ValueError, match="at least one positive per row"):
        multi_positive_nce(torch.zeros(2, 3), torch.tensor([[True, False, False], [False] * 3]))
    with pytest.raises(ValueError, match=r"patches: expected \(B, 1, 2\)"):
        memory(torch.zeros(2, 3, 2), torch.tensor([0, 1]))


@pytest.mark.parametrize(
    ("points", "copies", "neighbours", "margin", "expected"),
    [
        # anchor 0: copy at 0.1, nearest negative image 1 at 1.0 -> 0; anchor 1: copy at 0.5, copy 0 at 0.9 -> 0.4
        ([0.0, 1.0], [0.1, 1.5], [[False, False], [False, False]], 0.8, (0.0 + 0.4) / 2),
        # every other image is a neighbour: no negative left, the loss is 0
        ([0.0, 1.0], [0.1, 1.5], [[True, True], [True, True]], 0.8, 0.0),
        # anchor 0 (image 2 a neighbour): copy 1 at 0.4 -> 0.1; anchor 1: copy at 1.6, image 0 at 2 -> 0.1;
        # anchor 2 (image 0 a neighbour): image 1 at 3 -> 0
        (
            [0.0, 2.0, 5.0],
            [0.0, 0.4, 5.0],
            [[False, False, True], [False, False, False], [True, False, False]],
            0.5,
            (0.1 + 0.1 + 0.0) / 3,
        ),
    ],
)
def test_ipfl_literal(points: list, copies: list, neighbours: list, margin: float, expected: float) -> None:
    as_col = lambda v: torch.tensor(v)[:, None]  # noqa: E731
    loss = ipfl_loss(as_col(points), as_col(copies), torch.tensor(neighbours), margin)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_augmented_copies_keep_the_shape_and_follow_the_seed() -> None:
    images = torch.randn(4, 3, 16, 8)
    torch.manual_seed(5)
    first = augmented_copies(images)
    torch.manual_seed(5)
    assert first.shape == images.shape and torch.equal(first, augmented_copies(images))
    assert not torch.allclose(first, images)


# PEDAL and IPFL of the seeded tiny batch below (PatchNet in train mode, CPU, fp32).
GOLDEN_PEDAL, GOLDEN_IPFL = 0.6542856097221375, 0.04749153554439545


def test_seeded_patch_losses_are_golden() -> None:
    torch.manual_seed(0)
    net = PatchNet(8, patches=3, dim=4)
    fmap = torch.randn(4, 8, 8, 4)
    copies = fmap + 0.1 * torch.randn_like(fmap)
    patches = net(torch.cat([fmap, copies]))
    memory = PatchMemory(F.normalize(torch.randn(10, 3, 4), dim=2), temperature=0.5, neighbours=2)
    indices = torch.tensor([0, 3, 5, 7])
    pedal = memory(patches[:4], indices)
    ipfl = ipfl_loss(image_level(patches[:4]), image_level(patches[4:]), memory.neighbour_mask(patches[:4], indices))
    assert pedal.item() == pytest.approx(GOLDEN_PEDAL, abs=1e-5)
    assert ipfl.item() == pytest.approx(GOLDEN_IPFL, abs=1e-5)
    (pedal + ipfl).backward()
    assert all(p.grad is not None for p in net.embed.parameters() if p.requires_grad)
