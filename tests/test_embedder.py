"""reid.load_embedder / Embedder: input handling, preprocessing, unit norm, flip, round trip, real crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid import load_embedder
from reid.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from reid.embedder import Embedder, TorchForward, prepare_batch
from reid.models import build_model
from reid.weights import save_checkpoint

torch.set_num_threads(1)
RNG = np.random.default_rng(0)


def _crop(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_model("osnet_x0_25").eval()
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "osnet.pth", model, "osnet_x0_25")
    return path, model


@pytest.fixture(scope="module")
def embedder(checkpoint) -> Embedder:
    return load_embedder(str(checkpoint[0]), device="cpu")


def test_attributes(embedder: Embedder) -> None:
    assert (embedder.embedding_dim, embedder.device, embedder.input_size) == (512, "cpu", (256, 128))


@pytest.mark.parametrize(
    "crop",
    [
        _crop(8, 4, 3),
        _crop(8, 4),
        _crop(8, 4, 1),
        _crop(8, 4, 4),
        _crop(300, 90, 3),
        _crop(256, 128, 3),
        _crop(40, 60, 3)[5:30:2, 3:20],
        _crop(1, 1, 3),
    ],
    ids=["bgr", "gray", "gray1", "bgra", "large", "exact", "strided_view", "one_pixel"],
)
def test_accepted_crops_give_unit_norm(embedder: Embedder, crop: np.ndarray) -> None:
    out = embedder([crop])
    assert out.shape == (1, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_gray_and_bgra_equal_their_bgr_versions(embedder: Embedder) -> None:
    gray, bgra = _crop(30, 12), _crop(30, 12, 4)
    out = embedder([gray, gray[..., None], np.repeat(gray[..., None], 3, axis=2), bgra, bgra[..., :3]])
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    np.testing.assert_allclose(out[1], out[2], atol=1e-6)
    np.testing.assert_allclose(out[3], out[4], atol=1e-6)


def test_prepare_batch_resizes_and_swaps_to_rgb() -> None:
    bgr = np.zeros((3, 2, 3), dtype=np.uint8)
    bgr[:] = (10, 20, 30)
    batch = prepare_batch([bgr, np.full((5, 5), 7, dtype=np.uint8)], (4, 2))
    assert batch.shape == (2, 4, 2, 3) and batch.dtype == np.uint8
    assert (batch[0] == (30, 20, 10)).all() and (batch[1] == 7).all()


@pytest.mark.parametrize(
    ("crops", "match"),
    [
        ([_crop(8, 4, 3), _crop(5, 0, 3)], r"crops\[1\]: expected a non-empty crop, got shape \(5, 0, 3\)"),
        ([_crop(0, 4, 3)], r"crops\[0\]: expected a non-empty crop, got shape \(0, 4, 3\)"),
        ([_crop(8, 4, 3).astype(np.float32)], r"crops\[0\]: expected dtype uint8, got float32"),
        ([_crop(8, 4, 2)], r"crops\[0\]: expected shape .* got \(8, 4, 2\)"),
        ([_crop(8)], r"crops\[0\]: expected shape .* got \(8,\)"),
        (_crop(8, 4, 3), r"crops: expected a list of .* got \(8, 4, 3\)"),
    ],
)
def test_bad_crops_raise_value_error(embedder: Embedder, crops: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        embedder(crops)


def test_non_array_crop_is_a_type_error(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match=r"crops\[0\]: expected a numpy uint8 array .* got list"):
        embedder([[[1, 2], [3, 4]]])


def test_bad_crop_index_counts_across_batches(checkpoint) -> None:
    small = load_embedder(str(checkpoint[0]), device="cpu", batch_size=2)
    with pytest.raises(ValueError, match=r"crops\[4\]"):
        small([_crop(8, 4, 3)] * 4 + [_crop(0, 4, 3)])


def test_empty_list_gives_empty_array(embedder: Embedder) -> None:
    out = embedder([])
    assert out.shape == (0, 512) and out.dtype == np.float32


def test_batch_size_does_not_change_results(checkpoint, embedder: Embedder) -> None:
    crops = [_crop(20 + i, 10 + i, 3) for i in range(5)]
    small = load_embedder(str(checkpoint[0]), device="cpu", batch_size=2)
    np.testing.assert_allclose(small(crops), embedder(crops), atol=1e-5)


def test_flip_averaging(checkpoint, embedder: Embedder) -> None:
    flipping = load_embedder(str(checkpoint[0]), device="cpu", flip=True)
    half = _crop(40, 10, 3)
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)  # its mirror image is itself
    asymmetric = _crop(40, 20, 3)
    flipped, plain = flipping([asymmetric, symmetric]), embedder([asymmetric, symmetric])
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, rtol=1e-5)
    assert np.abs(flipped[0] - plain[0]).max() > 1e-3
    np.testing.assert_allclose(flipped[1], plain[1], atol=1e-5)
    # flip of the mirrored crop gives the same flip-averaged embedding
    np.testing.assert_allclose(flipping([asymmetric[:, ::-1]])[0], flipped[0], atol=1e-5)


def test_matches_hand_written_preprocessing(checkpoint, embedder: Embedder) -> None:
    crop = _crop(70, 30, 3)
    rgb = cv2.resize(crop, (128, 256), interpolation=cv2.INTER_LINEAR)[..., ::-1] / 255.0
    x = torch.from_numpy(((rgb - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(checkpoint[1](x), dim=1).numpy()
    np.testing.assert_allclose(embedder([crop]), expected, atol=1e-5)


@pytest.mark.parametrize("optimize", [False, True])
def test_save_then_load_gives_identical_embeddings(checkpoint, optimize: bool) -> None:
    forward = TorchForward(checkpoint[1], IMAGENET_MEAN, IMAGENET_STD, "cpu", optimize=optimize)
    in_memory = Embedder(forward, (256, 128), 512, "cpu")
    loaded = load_embedder(str(checkpoint[0]), device="cpu", optimize=optimize)
    crops = [_crop(50, 20, 3), _crop(33, 17, 3)]
    np.testing.assert_array_equal(loaded(crops), in_memory(crops))


@pytest.mark.parametrize("arch", ["osnet_x0_25", "vit_transreid_tiny"])
def test_optimized_torch_forward_matches_plain(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding has something to fold
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    weights = save_checkpoint(tmp_path / "m.pth", model, arch, input_size=(64, 32))
    crops = [_crop(50, 20, 3), _crop(20, 30, 3)]
    plain = load_embedder(str(weights), device="cpu", optimize=False)(crops)
    np.testing.assert_allclose(load_embedder(str(weights), device="cpu")(crops), plain, atol=1e-5)


def test_load_errors(tmp_path: Path, checkpoint) -> None:
    torch.save(checkpoint[1].state_dict(), tmp_path / "zoo.pth")
    cases = [
        (("osnet_x0_25",), {}, ValueError, "architecture name, not a weights file"),
        ((str(tmp_path / "none.pth"),), {}, FileNotFoundError, "none.pth"),
        ((str(tmp_path / "zoo.pth"),), {}, ValueError, "pass arch="),
        ((str(checkpoint[0]),), {"backend": "tensorrt"}, ValueError, "backend: expected one of"),
        ((str(checkpoint[0]),), {"device": "gpu0"}, ValueError, "device: expected"),
        ((str(checkpoint[0]),), {"batch_size": 0}, ValueError, "batch_size: expected >= 1"),
    ]
    for args, kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            load_embedder(*args, **kwargs)
    assert load_embedder(str(tmp_path / "zoo.pth"), arch="osnet_x0_25").embedding_dim == 512


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is absent")
def test_cuda_without_gpu_is_an_error(checkpoint) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_embedder(str(checkpoint[0]), device="cuda")


def test_auto_device_resolves(embedder: Embedder, checkpoint) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert load_embedder(str(checkpoint[0])).device == expected


def test_classical_embedder() -> None:
    pytest.importorskip("reid.classical")
    classical = load_embedder("classical")
    out = classical([_crop(40, 20, 3), _crop(30, 10, 3)])
    assert out.shape == (2, classical.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def pets_crops(shared, frames: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Person crops (BGR), their ids and 0-based frame indices cut from vtest.avi using the MOT15 GT."""
    gt = np.loadtxt(shared("data/pets09_s2l1/mot15/gt.txt"), delimiter=",")
    capture = cv2.VideoCapture(str(shared("data/pets09_s2l1/vtest.avi")))
    crops, ids, frame_of = [], [], []
    for index in range(max(frames) + 1):
        ok, frame = capture.read()
        assert ok, f"vtest.avi ended before frame {index}"
        for row in gt[gt[:, 0] == index + 1] if index in frames else []:
            x, y, w, h = row[2:6]
            crops.append(frame[max(int(y), 0) : int(y + h), max(int(x), 0) : int(x + w)])
            ids.append(int(row[1]))
            frame_of.append(index)
    capture.release()
    return crops, np.array(ids), np.array(frame_of)


def test_zoo_weights_match_people_across_frames(shared) -> None:
    weights = shared("weights/osnet_x0_25_msmt17.pth")
    embedder = load_embedder(str(weights), device="cpu", arch="osnet_x0_25")
    crops, ids, frame_of = pets_crops(shared, (100, 120))
    out = embedder(crops)
    query, gallery = np.flatnonzero(frame_of == 100), np.flatnonzero(frame_of == 120)
    nearest = gallery[np.argmax(out[query] @ out[gallery].T, axis=1)]
    assert len(query) == 6 and set(ids[query]) <= set(ids[gallery])
    np.testing.assert_array_equal(ids[nearest], ids[query])  # rank-1 = 6/6 with the MSMT17 weights
