"""reid.export: ONNX graph layout, PyTorch / onnxruntime parity on real crops, the CLI, error cases."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid import load_embedder
from reid.embedder import (
    OnnxForward,
    OpenVinoForward,
    openvino_bf16_supported,
    prepare_batch,
    resolve_backend,
    resolve_precision,
)
from reid.export import export_onnx, main, parity
from reid.models import build_model
from reid.models.common import NormalizedModel
from reid.onnx_graph import INPUT_FORMAT, onnx_bytes
from reid.weights import load_model, save_checkpoint

torch.set_num_threads(1)
ZOO = "weights/osnet_x0_25_msmt17.pth"


def real_crops(shared, frame_index: int = 120) -> list[np.ndarray]:
    """BGR person crops cut from vtest.avi at a 0-based frame with the MOT15 ground-truth boxes."""
    gt = np.loadtxt(shared("data/pets09_s2l1/mot15/gt.txt"), delimiter=",")
    capture = cv2.VideoCapture(str(shared("data/pets09_s2l1/vtest.avi")))
    for _ in range(frame_index + 1):
        ok, frame = capture.read()
        assert ok, f"vtest.avi ended before frame {frame_index}"
    capture.release()
    boxes = gt[gt[:, 0] == frame_index + 1, 2:6]
    return [frame[max(int(y), 0) : int(y + h), max(int(x), 0) : int(x + w)] for x, y, w, h in boxes]


_EXPORTED: dict[str, Path] = {}  # the zoo model is exported once per test session


@pytest.fixture
def zoo_onnx(shared, tmp_path_factory) -> tuple[Path, Path]:
    weights = shared(ZOO)
    if "zoo" not in _EXPORTED:
        out = tmp_path_factory.mktemp("onnx") / "osnet.onnx"
        _EXPORTED["zoo"] = export_onnx(weights, out, arch="osnet_x0_25")
    return weights, _EXPORTED["zoo"]


def test_graph_takes_uint8_nhwc_with_dynamic_batch(zoo_onnx) -> None:
    import onnx

    proto = onnx.load(str(zoo_onnx[1]))
    (inp,), (out,) = proto.graph.input, proto.graph.output

    def dims(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims(inp) == ["batch", 256, 128, 3] and dims(out) == ["batch", 512]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["arch"] == "osnet_x0_25" and json.loads(meta["input_size"]) == [256, 128]
    assert meta["input_format"] == INPUT_FORMAT and json.loads(meta["mean"]) == [0.485, 0.456, 0.406]


def test_raw_parity_on_real_crops(shared, zoo_onnx) -> None:
    batch = prepare_batch(real_crops(shared), (256, 128))
    model, meta = load_model(zoo_onnx[0], arch="osnet_x0_25")
    with torch.inference_mode():
        expected = NormalizedModel(model, meta["mean"], meta["std"])(torch.from_numpy(batch)).numpy()
    got = OnnxForward(zoo_onnx[1], "cpu")(batch)
    assert got.shape == (len(batch), 512) and len(batch) >= 5
    assert np.abs(expected - got).max() < 1e-4


def test_embedder_parity_on_real_crops(shared, zoo_onnx) -> None:
    crops = real_crops(shared)
    torch_embedder = load_embedder(str(zoo_onnx[0]), device="cpu", arch="osnet_x0_25", flip=True)
    onnx_embedder = load_embedder(str(zoo_onnx[1]), device="cpu", batch_size=4, flip=True, threads=1)
    assert (onnx_embedder.embedding_dim, onnx_embedder.input_size) == (512, (256, 128))
    np.testing.assert_allclose(onnx_embedder(crops), torch_embedder(crops), atol=1e-4)
    assert onnx_embedder([]).shape == (0, 512)
    with pytest.raises(ValueError, match="exported from a 'osnet_x0_25' model, but arch='resnet50'"):
        load_embedder(str(zoo_onnx[1]), device="cpu", arch="resnet50")


def test_cli_exports_vit_with_parity(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    vit = build_model("vit_transreid_tiny").eval()
    weights = save_checkpoint(tmp_path / "vit.pth", vit, "vit_transreid_tiny", input_size=(64, 32))
    main(["--weights", str(weights), "--out", str(tmp_path / "out" / "vit.onnx")])
    printed = capsys.readouterr().out
    assert "parity" in printed and float(printed.split("|torch - onnxruntime| = ")[1].split()[0].rstrip(",")) < 1e-4
    assert "output: " + str(tmp_path / "out" / "vit.onnx") in printed
    crops = [np.random.default_rng(i).integers(0, 256, (50, 20, 3), dtype=np.uint8) for i in range(3)]
    via_onnx = load_embedder(str(tmp_path / "out" / "vit.onnx"), device="cpu")(crops)
    np.testing.assert_allclose(via_onnx, load_embedder(str(weights), device="cpu")(crops), atol=1e-4)


def test_onnx_backend_from_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    weights = save_checkpoint(tmp_path / "o.pth", build_model("osnet_x0_25").eval(), "osnet_x0_25", (128, 64))
    crops = [np.full((40, 20, 3), v, dtype=np.uint8) for v in (30, 200)]
    in_memory = load_embedder(str(weights), device="cpu", backend="onnx")
    assert in_memory.input_size == (128, 64)
    np.testing.assert_allclose(in_memory(crops), load_embedder(str(weights), device="cpu")(crops), atol=1e-4)


def test_foreign_onnx_file_is_rejected(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign", [x], [y])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9),
        str(tmp_path / "f.onnx"),
    )
    with pytest.raises(ValueError, match="as written by reid.export"):
        load_embedder(str(tmp_path / "f.onnx"), device="cpu")
    (tmp_path / "cut.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ValueError, match=r"cannot load ONNX model .*cut\.onnx"):
        load_embedder(str(tmp_path / "cut.onnx"), device="cpu")


def test_bad_export_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset: expected >= 14, got 11"):
        onnx_bytes(build_model("osnet_x0_25"), {"input_size": (64, 32), "mean": (0, 0, 0), "std": (1, 1, 1)}, 11)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        export_onnx(tmp_path / "missing.pth", tmp_path / "x.onnx")
    with pytest.raises(SystemExit, match=r"error: .*missing\.pth"):
        main(["--weights", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "x.onnx")])
    with pytest.raises(ValueError, match="device for the onnx backend"):
        load_embedder(str(tmp_path / "any.onnx"), device="cuda:3")


@pytest.mark.parametrize("visibility", [{}, {"visibility": True}])
def test_relation_head_export_keeps_parity(tmp_path: Path, visibility: dict) -> None:
    torch.manual_seed(3)
    kwargs = {"head": "relation", "parts": 6, "part_dim": 32, **visibility}
    model = build_model("osnet_x0_25", **kwargs)
    for module in model.modules():  # non-trivial running statistics, so the eval graph is not an identity
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    weights = save_checkpoint(tmp_path / "r.pth", model.eval(), "osnet_x0_25", (256, 128), model_kwargs=kwargs)
    out = export_onnx(weights, tmp_path / "r.onnx")
    assert parity(weights, out) < 1e-4
    crops = [np.random.default_rng(i).integers(0, 256, (90, 40, 3), dtype=np.uint8) for i in range(3)]
    via_onnx = load_embedder(str(out), device="cpu")(crops)
    assert via_onnx.shape == (3, 224)
    np.testing.assert_allclose(via_onnx, load_embedder(str(weights), device="cpu")(crops), atol=1e-4)


def test_openvino_parity_on_real_crops(shared, zoo_onnx) -> None:
    pytest.importorskip("openvino")
    crops = real_crops(shared)
    batch = prepare_batch(crops, (256, 128))
    model, meta = load_model(zoo_onnx[0], arch="osnet_x0_25")
    with torch.inference_mode():
        expected = NormalizedModel(model, meta["mean"], meta["std"])(torch.from_numpy(batch)).numpy()
    forward = OpenVinoForward(zoo_onnx[1], threads=1)
    assert (forward.input_size, forward.embedding_dim) == ((256, 128), 512)
    assert np.abs(forward(batch) - expected).max() < 1e-4
    torch_embedder = load_embedder(str(zoo_onnx[0]), device="cpu", arch="osnet_x0_25")
    for source in (zoo_onnx[0], zoo_onnx[1]):  # a checkpoint exported in memory, and the .onnx file
        openvino = load_embedder(str(source), device="cpu", arch="osnet_x0_25", backend="openvino", batch_size=3)
        np.testing.assert_allclose(openvino(crops), torch_embedder(crops), atol=1e-4)
    with pytest.raises(ValueError, match="exported from a 'osnet_x0_25' model"):
        load_embedder(str(zoo_onnx[1]), device="cpu", arch="resnet50", backend="openvino")


def test_openvino_precision_auto_follows_the_cpu_and_bf16_stays_close(shared, zoo_onnx) -> None:
    pytest.importorskip("openvino")
    crops = real_crops(shared)
    batch = prepare_batch(crops, (256, 128))
    f32 = OpenVinoForward(zoo_onnx[1], threads=1, precision="f32")
    auto = OpenVinoForward(zoo_onnx[1], threads=1, precision="auto")
    assert f32.precision == "f32"
    assert auto.precision == ("bf16" if openvino_bf16_supported() else "f32")
    a, b = f32(batch), auto(batch)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    assert len(a) >= 4
    assert (a * b).sum(axis=1).min() > 0.99  # bf16 moves unit embeddings by well under a percent of cosine
    embedder = load_embedder(str(zoo_onnx[1]), device="cpu", backend="openvino", precision="auto")
    assert np.allclose(embedder(crops), b, atol=1e-5)


def test_precision_names_are_checked(monkeypatch) -> None:
    pytest.importorskip("openvino")
    import reid.embedder as embedder_module

    with pytest.raises(ValueError, match=r"precision: expected one of \('auto', 'f32', 'bf16'\), got 'fp16'"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="precision: expected one of"):
        load_embedder("classical", precision="half")
    assert resolve_precision("f32") == "f32"
    monkeypatch.setattr(embedder_module, "openvino_bf16_supported", lambda core=None: False)
    assert resolve_precision("auto") == "f32"
    with pytest.raises(ValueError, match="precision 'bf16': this CPU has no bf16 units"):
        resolve_precision("bf16")
    monkeypatch.setattr(embedder_module, "openvino_bf16_supported", lambda core=None: True)
    assert resolve_precision("auto") == resolve_precision("bf16") == "bf16"


@pytest.mark.parametrize(
    ("backend", "device", "onnx_file", "cuda", "expected"),
    [
        ("auto", "auto", False, False, "openvino"),
        ("auto", "auto", False, True, "torch"),
        ("auto", "cuda", True, True, "onnx"),
        ("auto", "cpu", True, False, "openvino"),
        ("torch", "cpu", True, False, "onnx"),
        ("onnx", "cpu", False, False, "onnx"),
        ("openvino", "auto", False, True, "openvino"),
    ],
)
def test_auto_backend_is_chosen_at_run_time(monkeypatch, backend, device, onnx_file, cuda, expected) -> None:
    import reid.embedder as embedder_module

    monkeypatch.setattr(embedder_module, "cuda_device_count", lambda: int(cuda))
    monkeypatch.setattr(embedder_module, "openvino_available", lambda: True)
    assert resolve_backend(backend, device, onnx_file) == expected


def test_auto_backend_without_openvino_falls_back(monkeypatch) -> None:
    import reid.embedder as embedder_module

    monkeypatch.setattr(embedder_module, "cuda_device_count", lambda: 0)
    monkeypatch.setattr(embedder_module, "openvino_available", lambda: False)
    assert resolve_backend("auto", "auto") == "torch" and resolve_backend("auto", "auto", onnx_file=True) == "onnx"
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_backend("openvino", "cuda")
    with pytest.raises(ValueError, match="backend: expected one of"):
        resolve_backend("tensorrt", "cpu")
