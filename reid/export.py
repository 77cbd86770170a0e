"""Export a ReID checkpoint to ONNX: ``python -m reid.export --weights W [--arch A] --out model.onnx``.

The graph and its metadata are :mod:`reid.onnx_graph`'s; this module writes it to a file and checks parity
with PyTorch on onnxruntime (:class:`reid.embedder.OnnxForward`).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
import torch

from reid.console import end_summary, setup_logging
from reid.embedder import OnnxForward
from reid.models.common import NormalizedModel
from reid.onnx_graph import INPUT_FORMAT, onnx_bytes
from reid.weights import load_model

log = logging.getLogger(__name__)


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike, arch: str | None = None, opset: int = 17) -> Path:
    """Export the checkpoint ``weights`` (ours, or a zoo state dict with ``arch``) to the file ``out``."""
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
