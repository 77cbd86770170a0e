"""reid.weights: reading every accepted checkpoint kind, clear errors for bad files, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reid.checkpoint import load_checkpoint, load_weights_into
from reid.models import build_model
from reid.weights import load_model, save_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def osnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("osnet_x0_25").eval()


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(tmp_path / "nope.pth")


@pytest.mark.parametrize("keep_fraction", [0.0, 0.1, 0.5, 0.9])
def test_truncated_file_is_a_value_error_naming_it(tmp_path: Path, osnet, keep_fraction: float) -> None:
    path = save_checkpoint(tmp_path / "full.pth", osnet, "osnet_x0_25")
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*cut\.pth"):
        load_checkpoint(cut)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not a checkpoint at all", r"cannot read checkpoint .*bad\.pth: truncated or not a torch file"),
        ([1, 2, 3], "expected a dict, got list"),
        ({"epoch": 3, "lr": 0.1}, "expected a state dict"),
        ({"state_dict": {}}, "empty"),
        ({"state_dict": {"w": 3}}, "expected a tensor, got int"),
        ({"state_dict": {"w": torch.zeros(1)}, "input_size": (256,)}, "input_size: expected 2"),
    ],
)
def test_bad_contents_are_value_errors(tmp_path: Path, payload: object, match: str) -> None:
    path = tmp_path / "bad.pth"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


class _Opaque:  # pickled objects other than tensors must not be unpickled
    pass


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Opaque()}, tmp_path / "obj.pth")
    with pytest.raises(ValueError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "obj.pth")


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "module_prefix"])
def test_accepted_layouts_load_into_the_model(tmp_path: Path, osnet, wrap: str) -> None:
    state = osnet.state_dict()
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 60}
    elif wrap == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    torch.save(state, tmp_path / "w.pth")
    ckpt = load_checkpoint(tmp_path / "w.pth")
    assert ckpt["arch"] is None and ckpt["input_size"] == (256, 128)
    model = load_weights_into(build_model("osnet_x0_25"), ckpt["state_dict"])
    assert torch.equal(model.conv5.conv.weight, osnet.conv5.conv.weight)


@pytest.mark.parametrize(
    ("source", "target", "match"),
    [
        ("osnet_x0_25", "resnet50", r"missing keys.*unexpected keys.*another architecture"),
        (
            "osnet_x0_25",
            "osnet_x0_5",
            r"shape mismatches \(e\.g\. conv1\.conv\.weight: checkpoint \(16, 3, 7, 7\)",
        ),
        ("vit_transreid_tiny", "osnet_x0_25", "another architecture"),
    ],
)
def test_checkpoint_for_another_architecture(source: str, target: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_weights_into(build_model(target), build_model(source).state_dict())


def test_identity_head_is_dropped_or_must_match(osnet) -> None:
    with_head = build_model("osnet_x0_25", num_classes=7).state_dict()
    load_weights_into(build_model("osnet_x0_25"), with_head)  # head dropped
    with pytest.raises(ValueError, match=r"classifier\.weight: checkpoint \(7, 512\) vs model \(3, 512\)"):
        load_weights_into(build_model("osnet_x0_25", num_classes=3), with_head)
    with pytest.raises(ValueError, match="missing keys"):
        load_weights_into(build_model("osnet_x0_25", num_classes=3), osnet.state_dict())
    partial = {k: v for k, v in osnet.state_dict().items() if not k.startswith("fc.")}
    load_weights_into(build_model("osnet_x0_25"), partial, strict=False)


def test_save_checkpoint_round_trip(tmp_path: Path, osnet) -> None:
    summary = {"epochs": np.int64(3), "clusters": np.array([5, 6]), "data": tmp_path}
    path = save_checkpoint(
        tmp_path / "sub" / "c.pth",
        osnet,
        "osnet_x0_25",
        input_size=(128, 64),
        created_by="python -m reid.train x",
        train_summary=summary,
    )
    ckpt = load_checkpoint(path)
    assert ckpt["arch"] == "osnet_x0_25" and ckpt["embedding_dim"] == 512
    assert ckpt["input_size"] == (128, 64) and ckpt["created_by"] == "python -m reid.train x"
    assert ckpt["train_summary"] == {"epochs": 3, "clusters": [5, 6], "data": str(tmp_path)}
    model, meta = load_model(path)
    assert meta["arch"] == "osnet_x0_25" and "state_dict" not in meta and not model.training
    x = torch.randn(2, 3, 64, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), osnet(x))


def test_save_checkpoint_rejects_unknown_arch_and_objects(tmp_path: Path, osnet) -> None:
    with pytest.raises(ValueError, match="arch: expected one of"):
        save_checkpoint(tmp_path / "c.pth", osnet, "osnet_x9")
    with pytest.raises(ValueError, match=r"train_summary\.o: expected plain data .* got _Opaque"):
        save_checkpoint(tmp_path / "c.pth", osnet, "osnet_x0_25", train_summary={"o": _Opaque()})


def test_model_kwargs_rebuild_the_same_model(tmp_path: Path) -> None:
    vit = build_model("vit_transreid_tiny", num_cameras=2).eval()
    path = save_checkpoint(
        tmp_path / "v.pth", vit, "vit_transreid_tiny", input_size=(64, 32), model_kwargs={"num_cameras": 2}
    )
    model, meta = load_model(path)
    assert meta["model_kwargs"] == {"num_cameras": 2} and model.sie_embed.shape == (2, 1, 48)


def test_load_model_arch_rules(tmp_path: Path, osnet) -> None:
    torch.save(osnet.state_dict(), tmp_path / "zoo.pth")
    with pytest.raises(ValueError, match="bare state dict.*pass arch="):
        load_model(tmp_path / "zoo.pth")
    assert load_model(tmp_path / "zoo.pth", arch="osnet_x0_25")[1]["arch"] == "osnet_x0_25"
    with pytest.raises(ValueError, match=r"zoo\.pth: cannot load weights into ResNet50BNNeck"):
        load_model(tmp_path / "zoo.pth", arch="resnet50")
    path = save_checkpoint(tmp_path / "ours.pth", osnet, "osnet_x0_25")
    with pytest.raises(ValueError, match="holds a 'osnet_x0_25' checkpoint, but arch='osnet_x1_0'"):
        load_model(path, arch="osnet_x1_0")
