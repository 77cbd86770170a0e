"""The part / relation head: stripe bounds, one-vs-rest and GCP closed forms, shapes, registry options,
the checkpoint contract, zoo weights loading into its backbone, and the self-supervised stripe visibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reid import load_embedder
from reid.models import build_model
from reid.models.relation import RelationHead, stripe_bounds
from reid.trainer.model import build_model_from_init
from reid.trainer.occlusion import occlude, stripe_visibility
from reid.weights import load_model, save_checkpoint

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("height", "parts", "expected"),
    [
        (16, 4, [(0, 4), (4, 8), (8, 12), (12, 16)]),
        (16, 6, [(0, 3), (2, 6), (5, 8), (8, 11), (10, 14), (13, 16)]),
        (4, 6, [(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4)]),
    ],
)
def test_stripe_bounds_are_adaptive_pooling_bounds(height: int, parts: int, expected: list) -> None:
    assert stripe_bounds(height, parts) == expected
    fmap = torch.randn(1, 1, height, 1)
    pooled = torch.nn.functional.adaptive_max_pool2d(fmap, (parts, 1)).flatten()
    torch.testing.assert_close(pooled, torch.stack([fmap[0, 0, a:b].max() for a, b in expected]))


def test_relation_head_matches_its_closed_form() -> None:
    torch.manual_seed(0)
    head = RelationHead(channels=4, parts=3, part_dim=2).eval()
    with torch.no_grad():  # non-trivial BN parameters and statistics: the zero-initialised residuals join in
        for bn in (m for m in head.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    fmap = torch.randn(2, 4, 6, 2)
    parts = head.part_vectors(fmap)
    torch.testing.assert_close(parts[:, 1], fmap[:, :, 2:4].amax(dim=(2, 3)))
    expected = []
    g_max, g_avg = fmap.amax(dim=(2, 3)), fmap.mean(dim=(2, 3))
    q0 = g_max + head.relate_global(torch.cat([head.reduce_max(g_max), head.reduce_contrast(g_avg - g_max)], 1))
    expected.append(q0 @ head.embed[0])
    for i in range(3):
        rest = torch.stack([parts[:, j] for j in range(3) if j != i]).mean(dim=0)
        qi = parts[:, i] + head.relate(torch.cat([head.reduce_part(parts[:, i]), head.reduce_rest(rest)], 1))
        expected.append(qi @ head.embed[i + 1])
    features, part_vectors = head(fmap)
    torch.testing.assert_close(part_vectors, parts)
    torch.testing.assert_close(features, torch.cat(expected, dim=1), atol=1e-5, rtol=1e-5)


def test_a_new_relation_head_starts_as_a_projection_of_the_pooled_stripes() -> None:
    torch.manual_seed(1)
    head = RelationHead(channels=8, parts=4, part_dim=3).train()
    fmap = torch.randn(5, 8, 8, 4)
    pooled = torch.cat([fmap.amax(dim=(2, 3))[:, None], head.part_vectors(fmap)], dim=1)  # (B, P + 1, C)
    expected = torch.einsum("bpc,pcd->bpd", pooled, head.embed).reshape(5, -1)
    torch.testing.assert_close(head(fmap)[0], expected)


@pytest.mark.parametrize("arch", ["osnet_x0_25", "resnet50"])
def test_relation_model_shapes_eval_and_train(arch: str) -> None:
    model = build_model(arch, head="relation", parts=4, part_dim=16)
    assert model.embedding_dim == 80
    x = torch.randn(2, 3, 64, 32)
    assert model.eval()(x).shape == (2, 80)
    out = model.train()(x)
    assert out.features.shape == out.embedding.shape == (2, 80) and out.logits is None
    assert out.feature_map.shape[:2] == (2, model.feature_channels)


@pytest.mark.parametrize(
    ("arch", "kwargs", "message"),
    [
        ("osnet_x0_25", {"head": "stripes"}, "head: expected one of"),
        ("osnet_x0_25", {"parts": 4}, r"\['parts'\]: expected only with head='relation'"),
        ("osnet_x0_25", {"head": "relation", "parts": 1}, "parts: expected >= 2"),
        ("vit_transreid_tiny", {"head": "relation"}, "expected a CNN backbone"),
    ],
)
def test_bad_head_options(arch: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(arch, **kwargs)


def test_relation_checkpoint_builds_the_same_embedder(tmp_path: Path) -> None:
    torch.manual_seed(2)
    kwargs = {"head": "relation", "parts": 6, "part_dim": 8}
    model = build_model("osnet_x0_25", **kwargs).eval()
    path = save_checkpoint(tmp_path / "r.pth", model, "osnet_x0_25", (64, 32), model_kwargs=kwargs)
    loaded, meta = load_model(path)
    assert meta["model_kwargs"] == kwargs and meta["embedding_dim"] == 56
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(loaded(x), model(x))
    crops = [np.random.default_rng(i).integers(0, 256, (50, 20, 3), dtype=np.uint8) for i in range(2)]
    assert load_embedder(str(path), device="cpu")(crops).shape == (2, 56)


def test_zoo_weights_load_into_the_relation_backbone(shared) -> None:
    zoo = shared("weights/osnet_x0_25_msmt17.pth")
    head = {"head": "relation", "parts": 6, "part_dim": 16}
    model, arch, kwargs = build_model_from_init("osnet_x0_25", str(zoo), head)
    plain, _, _ = build_model_from_init("osnet_x0_25", str(zoo), {})
    assert (arch, kwargs, model.embedding_dim) == ("osnet_x0_25", head, 112)
    x = torch.randn(1, 3, 64, 32)
    torch.testing.assert_close(model.eval().featuremaps(x), plain.eval().featuremaps(x))


def test_init_head_must_agree_with_a_relation_checkpoint(tmp_path: Path) -> None:
    kwargs = {"head": "relation", "parts": 4, "part_dim": 8}
    path = save_checkpoint(tmp_path / "r.pth", build_model("osnet_x0_25", **kwargs), "osnet_x0_25", (64, 32),
                           model_kwargs=kwargs)  # fmt: skip
    assert build_model_from_init(None, str(path), None)[2] == kwargs  # no --head: the checkpoint's
    with pytest.raises(ValueError, match="expected a checkpoint without a head"):
        build_model_from_init(None, str(path), {})


@pytest.mark.parametrize(
    ("visible", "parts", "expected"),
    [
        ([1, 1, 1, 1, 1, 1, 1, 1], 4, [1, 1, 1, 1]),
        ([1, 1, 1, 1, 1, 0, 0, 0], 4, [1, 1, 1, 0]),  # stripe 2 (rows 4, 5) is half visible: still visible
        ([0, 0, 0, 1, 1, 1, 1, 1], 2, [0, 1]),
        ([0, 0, 0, 0, 0, 0, 0, 0], 3, [0, 0, 0]),
    ],
)
def test_stripe_visibility_targets(visible: list[int], parts: int, expected: list[int]) -> None:
    rows = torch.tensor([visible], dtype=torch.bool)
    assert stripe_visibility(rows, parts).tolist() == [[float(v) for v in expected]]


def test_occlude_blanks_a_top_or_bottom_band() -> None:
    torch.manual_seed(0)
    images = torch.ones(64, 3, 20, 4)
    occluded, visible = occlude(images, probability=0.5)
    hidden = ~visible
    assert torch.equal(occluded == 0, hidden[:, None, :, None].expand_as(images)) and torch.equal(
        images, torch.ones_like(images)
    )
    touched = hidden.any(dim=1)
    assert 16 < int(touched.sum()) < 48  # about half of the crops
    size = hidden.sum(dim=1)[touched]
    assert int(size.min()) >= 4 and int(size.max()) <= 10  # 20-50 % of 20 rows
    assert bool((hidden[touched, 0] | hidden[touched, -1]).all())  # a band from the top or from the bottom
    with pytest.raises(ValueError, match="probability"):
        occlude(images, probability=1.5)


def test_visibility_scales_each_stripe_block() -> None:
    torch.manual_seed(4)
    model = build_model("osnet_x0_25", head="relation", parts=3, part_dim=4, visibility=True).eval()
    plain = build_model("osnet_x0_25", head="relation", parts=3, part_dim=4)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("visibility")})
    x = torch.randn(2, 3, 64, 32)
    _, parts = model.head(model.featuremaps(x))
    weights = torch.cat([torch.ones(2, 1), torch.sigmoid(model.visibility(parts).squeeze(2))], dim=1)
    expected = plain.eval()(x) * weights.repeat_interleave(4, dim=1)
    torch.testing.assert_close(model(x), expected)
    out = model.train()(x)
    assert out.visibility.shape == (2, 3)
