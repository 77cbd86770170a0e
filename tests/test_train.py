"""The unsupervised trainer end to end on tiny synthetic data: golden losses, label-blindness, bad input."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from configs.validate import ConfigError
from reid.checkpoint import load_checkpoint
from reid.train import load_market, main, train
from reid.trainer.config import config_from_args, make_config
from reid.trainer.pseudo_labels import NoClustersError
from reid.trainer.run import load_train_state

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (200, 30, 200), (30, 200, 200)]


def _person(pid: int, rng: np.random.Generator) -> np.ndarray:
    """A 64x32 BGR crop: two colour blocks that identify ``pid``, jittered and noisy."""
    img = np.full((64, 32, 3), 90, np.uint8)
    dy = int(rng.integers(-3, 4))
    img[8 + dy : 32 + dy, 6:26] = COLOURS[pid % 6]
    img[32 + dy : 58 + dy, 8:24] = COLOURS[(pid * 2 + 1) % 6]
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img)[1].tobytes()


def fake_market(path: Path, pid_map: dict[int, int] | None = None) -> Path:
    """A Market-1501-shaped zip: 6 people x 4 train crops (2 cameras), 6 queries, 12 gallery crops.

    ``pid_map`` renames the person ids of the training file names only; the image bytes never change.
    """
    rng, pid_map = np.random.default_rng(0), pid_map or {}
    with zipfile.ZipFile(path, "w") as zf:
        for pid in range(1, 7):
            for j in range(4):
                frame = 100 + 10 * j + (0 if pid <= 2 else pid)
                name = f"{pid_map.get(pid, pid):04d}_c{1 + j % 2}s1_{frame:06d}_{int(pid == 2):02d}.jpg"
                zf.writestr(f"Market/bounding_box_train/{name}", _jpeg(_person(pid, rng)))
            zf.writestr(f"Market/query/{pid:04d}_c1s2_000500_00.jpg", _jpeg(_person(pid, rng)))
            for j in range(2):
                zf.writestr(f"Market/bounding_box_test/{pid:04d}_c{3 + j}s2_00060{j}_00.jpg", _jpeg(_person(pid, rng)))
    return path


def fake_manifest(folder: Path, broken: int = 0) -> Path:
    """Harvested crops: 6 tracklets x 4 crops on 2 cameras; tracklets 0 and 1 share frames; ``broken``
    extra rows point at files that are not images."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in range(6):
        for j in range(4):
            name = f"crop_{t}_{j}.jpg"
            (folder / name).write_bytes(_jpeg(_person(t + 1, rng)))
            frame = 10 * j + (0 if t < 2 else t)
            rows.append([name, f"cam{t % 2 if t >= 2 else 0}", t, t, frame, frame / 10, 0, 0, 32, 64, 0.9, -1])
    for b in range(broken):
        (folder / f"broken_{b}.jpg").write_bytes(b"not a jpeg")
        rows.append([f"broken_{b}.jpg", "cam0", 99, 99, 500 + b, 50.0, 0, 0, 32, 64, 0.9, -1])
    with (folder / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "camera_id", "track_id", "tracklet_id", "frame_index", "timestamp",
                         "x1", "y1", "x2", "y2", "confidence", "global_id"])  # fmt: skip
        writer.writerows(rows)
    return folder / "manifest.csv"


TINY = {"input_size": [64, 32], "k1": 4, "k2": 2, "eps": 0.5, "min_samples": 2, "epochs": 1, "iters": 2,
        "batch_size": 8, "num_instances": 2, "threads": 1, "extract_batch": 32, "plot": False}  # fmt: skip


def tiny_config(data: dict, out: Path, **overrides):
    return make_config({**TINY, **data, "out": str(out), **overrides})


@pytest.fixture(scope="module")
def market_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_market(tmp_path_factory.mktemp("market") / "market.zip")


# Golden per-iteration losses of the seeded run (osnet_x0_25 random init, 64x32, 2 iterations).
GOLDEN = {
    "cluster": [1.8545374870300293, 4.562572956085205],
    "hybrid": [1.8546295166015625, 2.618882656097412],
    "camera": [3.100979804992676, 5.201462745666504],
}


@pytest.mark.parametrize("memory", ["cluster", "hybrid", "camera"])
def test_seeded_two_iteration_run_reproduces_golden_losses(market_zip: Path, tmp_path: Path, memory: str) -> None:
    data = {"dataset": "market1501", "root": str(market_zip)}
    history = train(tiny_config(data, tmp_path / "run", memory=memory, plot=memory == "cluster"))
    assert len(history) == 1 and history[0]["clusters"] >= 2
    np.testing.assert_allclose(history[0]["losses"], GOLDEN[memory], atol=1e-4)
    assert 0.0 <= history[0]["mAP"] <= 1.0
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"] and float(rows[0]["loss"]) == pytest.approx(history[0]["loss"], rel=1e-5)
    assert (tmp_path / "run" / "metrics.png").exists() == (memory == "cluster")
    if memory == "cluster":
        assert (tmp_path / "run" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pth")
    assert ckpt["arch"] == "osnet_x0_25" and ckpt["input_size"] == (64, 32)
    assert ckpt["train_summary"]["clusters"] == history[0]["clusters"]


# Golden per-iteration losses of the patch branch (PAUL) and the relation head on the seeded run above.
RELATION = {"head": "relation", "parts": 4, "part_dim": 16}
GOLDEN_VARIANTS = {
    "camera+patch": ({"patch": True}, [4.922697067260742, 4.800226211547852]),
    "camera+relation": (RELATION, [2.942492961883545, 5.073372840881348]),
    "camera+patch+relation": ({"patch": True, **RELATION}, [4.838374137878418, 6.077212333679199]),
    "camera+relation+visibility": ({**RELATION, "visibility": True}, [3.655212163925171, 7.698357105255127]),
}


@pytest.mark.parametrize("variant", list(GOLDEN_VARIANTS))
def test_patch_and_relation_runs_reproduce_golden_losses_and_load(
    market_zip: Path, tmp_path: Path, variant: str
) -> None:
    from reid import load_embedder

    flags, golden = GOLDEN_VARIANTS[variant]
    history = train(tiny_config({"dataset": "market1501", "root": str(market_zip)}, tmp_path / "run", **flags))
    np.testing.assert_allclose(history[0]["losses"], golden, atol=1e-4)
    assert ("pedal" in history[0]) == ("patch" in flags) and ("visibility" in history[0]) == ("visibility" in flags)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pth")
    relation = "head" in flags
    assert ckpt["model_kwargs"] == {k: v for k, v in flags.items() if k != "patch"}
    embedder = load_embedder(str(tmp_path / "run" / "checkpoint.pth"), device="cpu")
    assert embedder([np.zeros((64, 32, 3), np.uint8)]).shape == (1, 80 if relation else 512)


def test_patch_run_resumes_with_its_patch_net_and_memory(market_zip: Path, tmp_path: Path) -> None:
    data = {"dataset": "market1501", "root": str(market_zip), "epochs": 2, "eval_every": 0, "patch": True}
    straight = train(tiny_config(data, tmp_path / "straight"))
    train(tiny_config({**data, "epochs": 1}, tmp_path / "cut"))
    state = load_train_state(tmp_path / "cut")
    assert state["patch_bank"].shape == (24, 6, 64) and "locate.5.bias" in state["patch_net"]
    resumed = train(make_config({**TINY, **data, "resume": str(tmp_path / "cut")}))
    assert [r["losses"] for r in resumed] == [r["losses"] for r in straight]
    train(tiny_config({**data, "patch": False, "epochs": 1}, tmp_path / "plain"))
    with pytest.raises(ValueError, match="trained without --patch"):
        train(tiny_config({**data, "resume": str(tmp_path / "plain")}, tmp_path / "plain"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--arch", "vit_transreid_tiny", "--patch"], "need a CNN feature map"),
        (["--arch", "vit_transreid_tiny", "--head", "relation"], "need a CNN feature map"),
        (["--visibility"], "visibility: expected --head relation"),
    ],
)
def test_patch_relation_and_visibility_flag_errors(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_args(["--manifest", "m.csv", *flags])


def test_training_is_blind_to_person_ids_on_disk(market_zip: Path, tmp_path: Path) -> None:
    permuted = fake_market(tmp_path / "permuted.zip", pid_map={1: 6, 2: 4, 3: 5, 4: 1, 5: 3, 6: 2})
    runs = []
    for root in (market_zip, permuted):
        cfg = tiny_config({"dataset": "market1501", "root": str(root)}, tmp_path / root.stem)
        item = load_market(cfg).train[0]
        assert len(item) == 3 and item[1:] == (0, 0)  # (image, camera, index): no person id
        runs.append((train(cfg), load_checkpoint(tmp_path / root.stem / "checkpoint.pth")["state_dict"]))
    assert runs[0][0][0]["losses"] == runs[1][0][0]["losses"]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_ctrl_c_mid_epoch_keeps_the_last_checkpoint_and_resume_matches(
    market_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"dataset": "market1501", "root": str(market_zip), "epochs": 2, "eval_every": 0}
    straight = train(tiny_config(data, tmp_path / "straight"))
    import reid.train as trainer

    real, calls = trainer.train_iterations, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_iterations", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(data, tmp_path / "cut"))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pth")["train_summary"]["epochs"] == 1
    assert load_train_state(tmp_path / "cut")["epoch"] == 1
    monkeypatch.setattr(trainer, "train_iterations", real)
    resumed = train(make_config({**TINY, **data, "resume": str(tmp_path / "cut" / "train_state.pth")}))
    assert [r["losses"] for r in resumed] == [r["losses"] for r in straight]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [(None, FileNotFoundError, "resume: expected a run folder"), (b"garbage", ValueError, "cannot read")],
)
def test_resume_from_missing_or_corrupt_state(market_zip: Path, tmp_path: Path, content, error, message) -> None:
    state = tmp_path / "train_state.pth"
    if content is not None:
        state.write_bytes(content)
    with pytest.raises(error, match=message):
        train(tiny_config({"dataset": "market1501", "root": str(market_zip)}, tmp_path / "r", resume=str(state)))


def test_init_for_another_architecture_is_rejected(market_zip: Path, tmp_path: Path) -> None:
    from reid.models import build_model
    from reid.weights import save_checkpoint

    wide = build_model("osnet_x0_5")
    save_checkpoint(tmp_path / "ours.pth", wide, "osnet_x0_5", input_size=(64, 32))
    torch.save(wide.state_dict(), tmp_path / "zoo.pth")
    data = {"dataset": "market1501", "root": str(market_zip), "arch": "osnet_x0_25"}
    with pytest.raises(ValueError, match="expected a checkpoint for --arch osnet_x0_25, got one for osnet_x0_5"):
        train(tiny_config(data, tmp_path / "a", init=str(tmp_path / "ours.pth")))
    with pytest.raises(ValueError, match="shape mismatches.*another architecture"):
        train(tiny_config(data, tmp_path / "b", init=str(tmp_path / "zoo.pth")))


def test_no_cluster_is_a_clear_error(market_zip: Path, tmp_path: Path) -> None:
    # 24 crops can never give a core point that needs 30 neighbours, whatever the features.
    with pytest.raises(NoClustersError, match=r"eps=0.001 and min_samples=30.*Try a larger --eps"):
        train(
            tiny_config({"dataset": "market1501", "root": str(market_zip)}, tmp_path / "r", eps=0.001, min_samples=30)
        )
    argv = ["--dataset", "market1501", "--root", str(market_zip), "--out", str(tmp_path / "cli"),
            "--eps", "0.001", "--min-samples", "30", "--input-size", "64", "32", "--k1", "4", "--k2", "2",
            "--no-plot"]  # fmt: skip
    assert main(argv) == 2


def test_manifest_run_skips_undecodable_crops_and_uses_tracklets(tmp_path: Path) -> None:
    manifest = fake_manifest(tmp_path / "crops", broken=2)
    history = train(tiny_config({"manifest": str(manifest)}, tmp_path / "run", memory="camera", labels="dbscan"))
    summary = load_checkpoint(tmp_path / "run" / "checkpoint.pth")["train_summary"]
    assert summary["skipped"] == 2 and summary["crops"] == 24 and summary["labels"] == "dbscan"
    assert history[0]["clusters"] == 6 and history[0]["outliers"] == 0  # one cluster per tracklet


def test_manifest_run_checks_every_epoch_and_keeps_the_best(tmp_path: Path) -> None:
    manifest = fake_manifest(tmp_path / "crops")
    history = train(tiny_config({"manifest": str(manifest)}, tmp_path / "run", epochs=2, patience=0))
    summary = load_checkpoint(tmp_path / "run" / "checkpoint.pth")["train_summary"]
    assert summary["labels"] == "tracklets" and 1 <= history[0]["clusters"] <= 6
    assert history[0]["outliers"] == 0 and summary["start_check"]["tracklets"] == 6
    checks = [row["check"] for row in history]
    assert all(0.0 <= c <= 1.0 for c in checks) and [row["kept"] for row in history][0] == 1
    best = int(np.argmax(checks)) + 1
    assert summary["epochs"] == best and summary["check"] == pytest.approx(max(checks))
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["check"]) for r in rows] == pytest.approx(checks, abs=1e-5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty manifest"),
        ("path,camera_id\nx.jpg,cam0\n", "missing"),
        ("\xff\xfe\x00garbage", "manifest"),
    ],
)
def test_bad_manifest_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "manifest.csv"
    if text == "":
        manifest.write_text(
            "path,camera_id,track_id,tracklet_id,frame_index,timestamp,x1,y1,x2,y2,confidence,global_id\n"
        )
    else:
        manifest.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=message):
        train(tiny_config({"manifest": str(manifest)}, tmp_path / "run"))


def test_cli_flags_and_yaml_config(tmp_path: Path) -> None:
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text("manifest: crops/manifest.csv\nmemory: hybrid\neps: 0.55\n")
    cfg = config_from_args(["--config", str(yaml_file), "--eps", "0.4", "--no-must-link", "--input-size", "128", "64"])
    assert (cfg.memory, cfg.eps, cfg.must_link, cfg.cannot_link, cfg.input_size) == (
        "hybrid",
        0.4,
        False,
        True,
        (128, 64),
    )
    yaml_file.write_text("manifest: m.csv\nepoch: 3\n")
    with pytest.raises(ConfigError, match="Non-existent config key: epoch"):
        config_from_args(["--config", str(yaml_file)])
    with pytest.raises(ConfigError, match="expected exactly one of --dataset"):
        make_config({"dataset": "market1501", "root": "x", "manifest": "m.csv"})
    with pytest.raises(ConfigError, match=r"eps: expected a value in \(0.0, 1.0\]"):
        make_config({"manifest": "m.csv", "eps": 1.5})
