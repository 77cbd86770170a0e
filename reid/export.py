"""Export a ReID checkpoint to ONNX: ``python -m reid.export --weights W [--arch A] --out model.onnx``.

The graph takes ``images``: uint8 (B, H, W, 3) **RGB** pixels 0..255 (NHWC, batch axis dynamic, H and W
fixed to the checkpoint's ``input_size``) and returns ``embeddings``: float32 (B, D), the model's eval
output *before* L2 normalisation. The cast to float, NHWC -> NCHW and the mean/std normalisation are
inside the graph, so a caller only resizes crops and stacks them (``reid.embedder.prepare_batch``).
Metadata props: ``arch``, ``embedding_dim``, ``input_size``, ``mean``, ``std``, ``input_format``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reid.console import end_summary, setup_logging
from reid.models.common import NormalizedModel

log = logging.getLogger(__name__)

INPUT_FORMAT = "uint8 NHWC RGB 0..255"


def onnx_bytes(model: nn.Module, meta: Mapping[str, Any], opset: int = 17) -> bytes:
    """Serialise ``model`` (eval mode) wrapped with its normalisation as an ONNX model.

    Args:
        model: a ``reid.models`` model.
        meta: at least ``input_size`` (H, W), ``mean``, ``std``; ``arch`` is recorded when present.
        opset: ONNX opset version (>= 14).
    """
    import onnx

    if opset < 14:
        raise ValueError(f"opset: expected >= 14, got {opset}")
    h, w = (int(v) for v in meta["input_size"])
    wrapper = NormalizedModel(model, meta["mean"], meta["std"]).eval().cpu()
    dummy = torch.zeros((2, h, w, 3), dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            wrapper,
            (dummy,),
            buffer,
            dynamo=False,  # the dynamo exporter needs onnxscript; the TorchScript one covers these models
            input_names=["images"],
            output_names=["embeddings"],
            dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    out_dims[1].Clear()  # shape inference leaves a symbolic width for some graphs (the ViT's concat)
    out_dims[1].dim_value = int(model.embedding_dim)
    props = {
        "arch": str(meta.get("arch") or ""),
        "embedding_dim": str(int(model.embedding_dim)),
        "input_size": json.dumps([h, w]),
        "mean": json.dumps([float(v) for v in meta["mean"]]),
        "std": json.dumps([float(v) for v in meta["std"]]),
        "input_format": INPUT_FORMAT,
    }
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike, arch: str | None = None, opset: int = 17) -> Path:
    """Export the checkpoint ``weights`` (ours, or a zoo state dict with ``arch``) to the file ``out``."""
    from reid.weights import load_model

    model, meta = load_model(weights, arch)
    data = onnx_bytes(model, meta, opset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    log.info("wrote %s (%s, %.1f MB)", out, meta["arch"], len(data) / 1e6)
    return out


def parity(weights: str | os.PathLike, onnx_path: str | os.PathLike, arch: str | None = None) -> float:
    """Max abs difference between PyTorch and onnxruntime raw embeddings on 4 random images."""
    from reid.embedder import OnnxForward
    from reid.weights import load_model

    model, meta = load_model(weights, arch)
    h, w = meta["input_size"]
    images = np.random.default_rng(0).integers(0, 256, size=(4, h, w, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = NormalizedModel(model, meta["mean"], meta["std"]).eval()(torch.from_numpy(images)).numpy()
    got = OnnxForward(onnx_path, "cpu")(images)
    return float(np.abs(expected - got).max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reid.export", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="our checkpoint or a torchreid zoo state dict")
    parser.add_argument("--arch", default=None, help="reid.models name (required for zoo state dicts)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    setup_logging("INFO")
    try:
        out = export_onnx(args.weights, args.out, arch=args.arch, opset=args.opset)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    diff = parity(args.weights, out, arch=args.arch)
    facts = [f"input {INPUT_FORMAT}", f"parity max |torch - onnxruntime| = {diff:.2e}"]
    print(end_summary("export done", facts, out, [f"mcpa run --cameras CAMS.yaml --reid {out}"]))


if __name__ == "__main__":
    main()
