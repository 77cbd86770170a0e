"""The ONNX form of a ReID model: :func:`onnx_bytes` serialises a ``reid.models`` model with its normalisation.

The graph takes ``images``: uint8 (B, H, W, 3) **RGB** pixels 0..255 (NHWC, batch axis dynamic, H and W
fixed to the checkpoint's ``input_size``) and returns ``embeddings``: float32 (B, D), the model's eval
output *before* L2 normalisation. The cast to float, NHWC -> NCHW and the mean/std normalisation are
inside the graph, so a caller only resizes crops and stacks them (``reid.embedder.prepare_batch``).
Metadata props: ``arch``, ``embedding_dim``, ``input_size``, ``mean``, ``std``, ``input_format``.

Used by ``python -m reid.export`` (:mod:`reid.export`, files) and by the embedder's onnxruntime and OpenVINO
backends (:mod:`reid.embedder`, in memory).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from reid.models.common import NormalizedModel

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
