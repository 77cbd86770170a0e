"""``python -m reid.evaluate`` end to end on a synthetic Market-1501 zip, with the classical embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reid.classical import ClassicalEmbedder
from reid.data.synthetic import write_synthetic_market
from reid.evaluate import FlipAveraged, build_embedder, format_table, main


def test_cli_on_synthetic_market(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_synthetic_market(tmp_path / "market.zip", num_test_ids=5, per_camera=2)
    out = tmp_path / "res" / "metrics.json"
    assert main(["--root", str(root), "--weights", "classical", "--rerank", "--flip", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| plain |" in printed and "| rerank |" in printed and "Rank-1" in printed
    res = json.loads(out.read_text())
    assert res["num_query"] == 15 and res["num_gallery"] == 5 * 3 * 2 + 2  # junk dropped, distractors kept
    assert res["plain"]["rank1"] == 100.0 and res["plain"]["mAP"] > 90.0
    assert res["rerank"]["rank1"] == 100.0
    assert res["config"]["weights"] == "classical" and res["timing"]["embed_s"] > 0


def test_cli_rejects_bad_root(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="bounding_box_train"):
        main(["--root", str(tmp_path / "x"), "--weights", "classical"])


def test_flip_wrapper_and_table() -> None:
    embedder = build_embedder("classical", flip=True)
    assert isinstance(embedder, FlipAveraged)
    crop = np.random.default_rng(0).integers(0, 255, (64, 32, 3), dtype=np.uint8)
    f = embedder([crop])
    plain = ClassicalEmbedder()([crop, np.ascontiguousarray(crop[:, ::-1])])
    expected = plain.sum(axis=0) / np.linalg.norm(plain.sum(axis=0))
    np.testing.assert_allclose(f[0], expected, atol=1e-6)
    row = {"rank1": 91.54, "rank5": 96.9, "rank10": 98.0, "mAP": 77.4, "mINP": 40.0}
    assert "| plain | 91.5 | 96.9 | 98.0 | 77.4 | 40.0 |" in format_table({"plain": row})
