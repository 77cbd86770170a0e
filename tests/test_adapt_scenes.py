"""benchmarks/adapt_scenes.py: PETS's virtual-camera variants as scenes (no data needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.adapt_scenes import SCENES, pets_variant, scene_config


@pytest.mark.parametrize(
    ("scene", "variant"),
    [("pets_split", (0, 1.0)), ("pets_split_o256", (256, 1.0)), ("pets_split_x0.5", (0, 0.5)),
     ("pets_split_o128_x0.75", (128, 0.75)), ("campus4", None), ("pets_split_o", None)],
)  # fmt: skip
def test_pets_variant_names(scene: str, variant: tuple[int, float] | None) -> None:
    assert pets_variant(scene) == variant


def test_an_overlap_variant_writes_widened_views(tmp_path: Path) -> None:
    config, extra = scene_config("pets_split_o128", tmp_path)
    doc = yaml.safe_load(config.read_text())
    assert extra == [] and config.parent == tmp_path
    assert {c["id"]: c["crop"] for c in doc["cameras"]} == {"left": [0, 0, 448, 576], "right": [320, 0, 768, 576]}
    base = SCENES["pets_split"][0]
    shipped = yaml.safe_load(base.read_text())["embed"]["weights"]
    assert Path(doc["cameras"][0]["source"]).is_absolute()  # the file lives elsewhere: no relative paths
    assert doc["embed"]["weights"] == str((base.parent / shipped).resolve())


def test_an_unknown_scene_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="campus4"):
        scene_config("pets", tmp_path)
