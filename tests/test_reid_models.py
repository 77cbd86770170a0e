"""ReID architectures: registry, shapes in eval/train mode, zoo and ImageNet weight loading, TransReID parts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reid.checkpoint import load_checkpoint, load_weights_into
from reid.models import ReIDOutput, build_model, list_models
from reid.models.vit import TransReID

torch.set_num_threads(1)

OSNETS = ["osnet_x0_25", "osnet_x0_5", "osnet_x0_75", "osnet_x1_0"]
ZOO = [("osnet_x0_25_msmt17.pth", 1041), ("osnet_x0_25_market1501.pth", 751)]


def test_registry_lists_every_architecture() -> None:
    assert list_models() == sorted(OSNETS + ["resnet50", "vit_transreid", "vit_transreid_tiny"])


@pytest.mark.parametrize("name", ["osnet", "resnet18", ""])
def test_unknown_architecture_error_lists_valid_names(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown ReID architecture.*osnet_x0_25.*vit_transreid_tiny"):
        build_model(name)


@pytest.mark.parametrize("num_classes", [-1, 2.5])
def test_bad_num_classes_is_rejected(num_classes: object) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model("osnet_x0_25", num_classes=num_classes)


@pytest.mark.parametrize("name", OSNETS)
def test_osnet_widths_forward_eval_and_train(name: str) -> None:
    model = build_model(name, num_classes=3)
    x = torch.randn(2, 3, 64, 32)
    with torch.inference_mode():
        assert model.eval()(x).shape == (2, 512)
    out = model.train()(x)
    assert isinstance(out, ReIDOutput)
    assert out.features.shape == out.embedding.shape == (2, 512)
    assert out.logits.shape == (2, 3) and out.part_logits is None
    assert model.embedding_dim == 512


def test_osnet_without_head_returns_no_logits() -> None:
    model = build_model("osnet_x0_25").train()
    assert model.classifier is None
    assert model(torch.randn(2, 3, 64, 32)).logits is None


@pytest.mark.parametrize(("filename", "num_classes"), ZOO)
def test_osnet_x0_25_loads_zoo_weights_strictly(shared, filename: str, num_classes: int) -> None:
    state = load_checkpoint(shared(f"weights/{filename}"))["state_dict"]
    assert len(state) == 567
    headless = load_weights_into(build_model("osnet_x0_25"), state, strict=True).eval()
    with_head = load_weights_into(build_model("osnet_x0_25", num_classes=num_classes), state).eval()
    assert torch.equal(with_head.classifier.weight, state["classifier.weight"])
    assert torch.equal(headless.conv1.conv.weight, state["conv1.conv.weight"])
    x = torch.randn(2, 3, 256, 128)
    with torch.inference_mode():
        emb = headless(x)
        assert emb.shape == (2, 512)
        assert torch.equal(emb, with_head(x))
    assert (emb >= 0).all()  # torchreid's eval output is after fc's BN + ReLU


def _torchreid_osnet_module():
    """torchreid's own osnet.py, loaded by file path (the package import needs gdown), or skip."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchreid is not installed (reference implementation for the parity check)")
    path = next(Path(p) / "reid" / "models" / "osnet.py" for p in spec.submodule_search_locations)
    if not path.exists():
        pytest.skip(f"torchreid osnet.py not found at {path}")
    module_spec = importlib.util.spec_from_file_location("_torchreid_osnet", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_osnet_matches_torchreid_reference(shared) -> None:
    state = load_checkpoint(shared("weights/osnet_x0_25_msmt17.pth"))["state_dict"]
    reference = _torchreid_osnet_module().osnet_x0_25(num_classes=1041, pretrained=False)
    reference.load_state_dict(state)
    ours = load_weights_into(build_model("osnet_x0_25"), state)
    x = torch.randn(3, 3, 256, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(ours.eval()(x), reference.eval()(x), atol=1e-6)


def test_resnet50_forward_eval_and_train() -> None:
    model = build_model("resnet50", num_classes=4, pooling="avg")
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 3, 64, 32)).shape == (1, 2048)
    out = model.train()(torch.randn(2, 3, 64, 32))
    assert out.features.shape == out.embedding.shape == (2, 2048) and out.logits.shape == (2, 4)
    assert model.backbone.layer4[0].conv2.stride == (1, 1)
    assert not model.bnneck.bias.requires_grad


def test_resnet50_loads_local_imagenet_weights(tmp_path: Path) -> None:
    from torchvision.models import resnet50

    torchvision_model = resnet50(weights=None)
    torch.save(torchvision_model.state_dict(), tmp_path / "r50.pth")
    model = build_model("resnet50", pretrained=str(tmp_path / "r50.pth"))
    assert torch.equal(model.backbone.layer4[2].conv3.weight, torchvision_model.layer4[2].conv3.weight)
    assert isinstance(model.pool.p, torch.nn.Parameter)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pooling": "max"}, ValueError, "pooling"),
        ({"last_stride": 3}, ValueError, "last_stride"),
        ({"pretrained": "/nonexistent/r50.pth"}, FileNotFoundError, "r50.pth"),
    ],
)
def test_resnet50_bad_options(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_model("resnet50", **kwargs)


def test_vit_tiny_forward_shapes_and_camera_embedding() -> None:
    model = build_model("vit_transreid_tiny", num_cameras=3).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.inference_mode():
        plain = model(x)
        cam0 = model(x, camera_ids=torch.tensor([0, 0]))
        cam2 = model(x, camera_ids=torch.tensor([2, 2]))
        other_size = model(torch.randn(1, 3, 80, 40))  # position embedding resized on the fly
    assert plain.shape == (2, model.embedding_dim) and model.embedding_dim == 5 * 48
    assert not torch.allclose(cam0, cam2) and not torch.allclose(plain, cam0)
    assert other_size.shape == (1, 240)
    with pytest.raises(ValueError, match=r"camera_ids: expected shape \(2,\)"):
        model(x, camera_ids=torch.tensor([0, 1, 2]))


def test_vit_tiny_training_step_updates_every_branch() -> None:
    torch.manual_seed(0)
    model = build_model("vit_transreid_tiny", num_classes=3, num_cameras=2).train()
    x, labels, cams = torch.randn(4, 3, 64, 32), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 0, 1])
    out = model(x, camera_ids=cams)
    assert out.features.shape == out.embedding.shape == (4, 240)
    assert out.logits.shape == (4, 3) and out.part_logits.shape == (4, 4, 3)
    loss = F.cross_entropy(out.logits, labels) + F.cross_entropy(
        out.part_logits.flatten(0, 1), labels.repeat_interleave(4)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    for name in (
        "patch_embed.weight",
        "blocks.0.mlp.0.weight",
        "b1.0.ln_1.weight",
        "b2.0.mlp.3.weight",
        "sie_embed",
        "pos_embed",
        "classifier_parts.3.weight",
    ):
        assert not torch.equal(before[name], dict(model.named_parameters())[name]), name
    assert torch.equal(before["bottleneck.bias"], model.bottleneck.bias)  # BNNeck bias stays frozen


def test_jigsaw_shift_shuffle_groups_known_order() -> None:
    model = TransReID(
        img_size=(64, 32),
        patch_size=16,
        stride=16,
        embed_dim=8,
        depth=2,
        num_heads=2,
        mlp_dim=8,
        jpm_groups=4,
        shift=2,
        shuffle_groups=2,
    )  # 4x2 grid -> 8 patches
    tokens = torch.arange(9, dtype=torch.float32).reshape(1, 9, 1).expand(1, 9, 8)  # token i holds value i
    parts = model._jigsaw(tokens)
    # roll by 2: 3 4 5 6 7 8 1 2; shuffle over 2 groups: 3 7 4 8 5 1 6 2; 4 groups of 2
    assert parts[0, :, :, 0].tolist() == [[3, 7], [4, 8], [5, 1], [6, 2]]


def _tiny_torchvision_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=3, hidden_dim=48, mlp_dim=96)


def _to_timm_names(state: dict) -> dict:
    rename = [
        ("conv_proj.", "patch_embed.proj."),
        ("class_token", "cls_token"),
        ("encoder.pos_embedding", "pos_embed"),
        ("encoder.layers.encoder_layer_", "blocks."),
        ("encoder.ln.", "norm."),
        ("ln_1.", "norm1."),
        ("ln_2.", "norm2."),
        ("self_attention.in_proj_weight", "attn.qkv.weight"),
        ("self_attention.in_proj_bias", "attn.qkv.bias"),
        ("self_attention.out_proj.", "attn.proj."),
        ("mlp.0.", "mlp.fc1."),
        ("mlp.3.", "mlp.fc2."),
        ("heads.head.", "head."),
    ]
    out = {}
    for key, value in state.items():
        for old, new in rename:
            key = key.replace(old, new)
        out[key] = value
    return out


@pytest.mark.parametrize("naming", ["torchvision", "timm"])
def test_vit_loads_local_imagenet_weights(tmp_path: Path, naming: str) -> None:
    source = _tiny_torchvision_vit()
    state = source.state_dict()
    torch.save(state if naming == "torchvision" else _to_timm_names(state), tmp_path / "vit.pth")
    model = build_model("vit_transreid_tiny", pretrained=str(tmp_path / "vit.pth"))
    layers = source.encoder.layers
    assert torch.equal(model.blocks[0].self_attention.in_proj_weight, layers[0].self_attention.in_proj_weight)
    for branch in (model.b1, model.b2):
        assert torch.equal(branch[0].mlp[3].weight, layers[1].mlp[3].weight)
        assert torch.equal(branch[1].weight, source.encoder.ln.weight)
    assert torch.equal(model.cls_token, source.class_token)
    assert model.pos_embed.shape == (1, 1 + 10 * 5, 48)
    assert torch.equal(model.pos_embed[:, 0], source.encoder.pos_embedding[:, 0])
