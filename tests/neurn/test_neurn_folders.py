"""Image-folder domains (DomainBed layout): scanning, decoding, errors, splits, the
decoded-image cache, source augmentation, and a study through the CLI.

Every tree is built here: three classes drawn as coloured shapes, in mixed formats
(JPEG, PNG, greyscale PNG, RGBA PNG, BMP, WebP) and sizes.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from neurn import data
from neurn.cli import main
from neurn.data.batches import ArrayBatches, FolderBatches
from neurn.data.folder import BadImageError, FolderDomain, decode, is_folder_spec
from neurn.data.image_cache import cached_images, check_images
from neurn.data.splits import stratified_split
from neurn.fronts import CropFlip
from neurn.study.data import study_data
from tiny_study import split_log

CLASSES = ("circle", "cross", "square")
FORMATS = [("jpg", "RGB"), ("png", "RGB"), ("png", "L"), ("png", "RGBA"), ("bmp", "RGB"),
           ("webp", "RGB")]


def _drawing(cls: int, i: int, size) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[:h, :w] / np.array([h, w]).reshape(2, 1, 1)
    if cls == 0:
        mask = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1
    elif cls == 1:
        mask = (abs(xx - 0.5) < 0.1) | (abs(yy - 0.5) < 0.1)
    else:
        mask = (abs(xx - 0.5) < 0.3) & (abs(yy - 0.5) < 0.3)
    colour = np.array([(60 * i) % 256, 200, (90 + 40 * i) % 256])
    return (mask[..., None] * colour + (~mask[..., None]) * 30).astype(np.uint8)


def make_domain(root, n_per_class=6, classes=CLASSES, offset=0):
    """root/<class>/<image>: mixed formats and sizes; returns root."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            ext, mode = FORMATS[(i + offset) % len(FORMATS)]
            size = (24 + 8 * (i % 3), 32 + 4 * (i % 2))
            image = Image.fromarray(_drawing(c, i + offset, size)).convert(mode)
            image.save(root / name / f"img{i:02d}.{ext}")
    (root / classes[0] / "notes.txt").write_text("not an image")
    (root / classes[0] / ".hidden.png").write_bytes(b"")
    return root


def truncate(path, keep=0.5):
    payload = path.read_bytes()
    path.write_bytes(payload[:int(len(payload) * keep)])


@pytest.fixture
def tree(tmp_path):
    make_domain(tmp_path / "photo")
    make_domain(tmp_path / "sketch", n_per_class=4, offset=3)
    return tmp_path


def test_scan_sorts_classes_and_files_and_ignores_other_files(tree):
    ds = data.domain(f"folder:{tree / 'photo'}", img_size=20)
    assert isinstance(ds, FolderDomain) and ds.name == "photo"
    assert ds.classes == CLASSES
    assert len(ds) == 18 and list(ds.files) == sorted(ds.files)
    assert all(not f.endswith((".txt", ".hidden.png")) for f in ds.files)
    assert np.bincount(ds.labels).tolist() == [6, 6, 6]
    assert all(ds.files[i].split("/")[0] == CLASSES[ds.labels[i]] for i in range(len(ds)))
    image, label = ds[7]
    assert image.shape == (3, 20, 20) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and label == ds.labels[7]


@pytest.mark.parametrize("ext,mode", FORMATS)
def test_every_format_and_mode_decodes_to_rgb(tmp_path, ext, mode):
    path = tmp_path / f"x.{ext}"
    Image.fromarray(_drawing(2, 1, (30, 20))).convert(mode).save(path)
    pixels = decode(path, 16)
    assert pixels.shape == (3, 16, 16) and pixels.dtype == np.uint8
    reference = np.asarray(Image.open(path).convert("RGB").resize((16, 16),
                                                                  Image.Resampling.BILINEAR))
    if ext != "jpg":  # JPEG's draft scale legitimately changes the pixels
        np.testing.assert_array_equal(pixels, reference.transpose(2, 0, 1))
    if mode == "L":
        assert (pixels[0] == pixels[1]).all() and (pixels[1] == pixels[2]).all()


def test_domains_from_root_share_one_class_index(tree):
    domains = data.domains_from_root(tree, img_size=16)
    assert list(domains) == ["photo", "sketch"]
    assert domains["photo"].classes == domains["sketch"].classes == CLASSES


def test_differing_class_sets_name_the_missing_classes(tree):
    make_domain(tree / "cartoon", n_per_class=2, classes=("circle", "square"))
    with pytest.raises(ValueError, match=r"cartoon lacks cross"):
        data.domains_from_root(tree)
    with pytest.raises(ValueError, match=r"cartoon lacks cross"):
        study_data(tree / "photo", [tree / "cartoon"])


@pytest.mark.parametrize("layout,message", [
    ("missing", "no such folder"), ("empty", "no class folders"),
    ("empty_class", "class folder without images"), ("file", "not a folder")])
def test_bad_folders_name_the_path(tmp_path, layout, message):
    root = tmp_path / "dom"
    if layout == "empty":
        root.mkdir()
    elif layout == "empty_class":
        make_domain(root, n_per_class=2)
        (root / "zebra").mkdir()
        (root / "zebra" / "readme.txt").write_text("no images")
        message = f"{root / 'zebra'}: class folder without images"
    elif layout == "file":
        root.write_text("x")
    with pytest.raises((ValueError, FileNotFoundError), match=message) as info:
        FolderDomain(root)
    assert str(root) in str(info.value)


def test_a_corrupt_file_stops_the_study_naming_it_or_is_skipped_and_counted(tree, tmp_path):
    bad = tree / "photo" / "cross" / "img00.jpg"
    truncate(bad)
    cache = tmp_path / "cache"
    with pytest.raises(BadImageError, match=str(bad)):
        study_data(tree / "photo", [tree / "sketch"], img_size=16, cache_dir=cache).load()
    study = study_data(tree / "photo", [tree / "sketch"], img_size=16, cache_dir=cache,
                       skip_bad_images=True)
    loaded = study.load()
    assert list(study.skipped["photo"]) == ["cross/img00.jpg"] and study.skipped["sketch"] == {}
    assert "truncated" in study.skipped["photo"]["cross/img00.jpg"].lower()
    n = sum(len(loaded[k]) for k in ("train", "val")) + len(loaded["eval"]["photo"])
    assert n == 17  # 18 files, one left out
    assert all("cross/img00.jpg" not in files for files in study.splits.values())
    assert study.record()["skipped"]["photo"] == study.skipped["photo"]


def test_check_is_remembered_and_a_tampered_record_is_recomputed(tree, tmp_path):
    domain = FolderDomain(tree / "photo", img_size=16)
    truncate(tree / "photo" / "square" / "img01.png", keep=0.6)
    bad = check_images(domain, cache_dir=tmp_path)
    assert list(bad) == ["square/img01.png"]
    (record,) = (tmp_path / "folders").glob("check-*.json")
    payload = json.loads(record.read_text())
    payload["bad"] = {"circle/img00.jpg": "forged"}  # a file that is fine
    record.write_text(json.dumps(payload) + "garbage")
    assert check_images(domain, cache_dir=tmp_path) == bad  # damaged JSON: recomputed
    os.utime(tree / "photo" / "circle" / "img00.jpg", ns=(1, 1))  # same bytes: same key
    assert check_images(domain, cache_dir=tmp_path) == bad
    assert len(list((tmp_path / "folders").glob("check-*.json"))) == 1
    with open(tree / "photo" / "circle" / "img00.jpg", "ab") as f:
        f.write(b"\0")  # other bytes: a new key
    assert check_images(domain, cache_dir=tmp_path) == bad
    assert len(list((tmp_path / "folders").glob("check-*.json"))) == 2


def test_stratified_split_is_seeded_disjoint_and_balanced():
    labels = np.repeat(np.arange(4), [50, 30, 20, 100])
    a = stratified_split(labels, val=0.1, test=0.2, seed=3)
    b = stratified_split(labels, val=0.1, test=0.2, seed=3)
    c = stratified_split(labels, val=0.1, test=0.2, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    together = np.concatenate(list(a.values()))
    assert np.array_equal(np.sort(together), np.arange(len(labels)))
    assert np.bincount(labels[a["val"]]).tolist() == [5, 3, 2, 10]
    assert np.bincount(labels[a["test"]]).tolist() == [10, 6, 4, 20]
    with pytest.raises(ValueError, match="empty val split"):
        stratified_split(np.zeros(3, dtype=int), val=0.1, test=0.4)
    with pytest.raises(ValueError, match="leave nothing to train"):
        stratified_split(labels, val=0.5, test=0.5)


def test_memmap_cache_equals_streaming_and_a_damaged_cache_is_rebuilt(tree, tmp_path):
    domain = FolderDomain(tree / "sketch", img_size=24)
    truncate(tree / "sketch" / "circle" / "img01.bmp")
    images, bad = cached_images(domain, 24, cache_dir=tmp_path, threads=2)
    images = np.array(images)  # a copy: the memmap would show the damage done below
    assert list(bad) == ["circle/img01.bmp"]
    keep = [i for i, f in enumerate(domain.files) if f not in bad]
    streamed = FolderBatches(domain.root, domain.files, domain.labels, 24).subset(keep)
    cached = ArrayBatches(images, domain.labels).subset(keep)
    index = torch.tensor([5, 0, 3, 3, 9])
    for got, want in zip(cached[index], streamed[index]):
        assert torch.equal(got, want)
    (npy,) = (tmp_path / "folders").glob("images-*.npy")
    payload = bytearray(npy.read_bytes())
    payload[-7] ^= 0xFF
    npy.write_bytes(bytes(payload))
    again, _ = cached_images(domain, 24, cache_dir=tmp_path)
    np.testing.assert_array_equal(again, images)  # the flipped byte was rebuilt


def test_crop_flip_at_full_area_mirrors_half_the_images_exactly():
    x = torch.rand(200, 3, 10, 10)
    augment = CropFlip(scale=(1, 1), ratio=(1, 1), generator=torch.Generator().manual_seed(0))
    out = augment(x)
    same = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    mirrored = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    assert bool((same ^ mirrored).all())
    assert 70 < int(mirrored.sum()) < 130
    assert torch.equal(augment.eval()(x), x)


def test_crop_flip_is_seeded_and_keeps_constant_images():
    x = torch.rand(16, 3, 12, 12)
    a = CropFlip(generator=torch.Generator().manual_seed(5))(x)
    b = CropFlip(generator=torch.Generator().manual_seed(5))(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    flat = torch.full((4, 3, 12, 12), 0.25)
    assert torch.allclose(CropFlip()(flat), flat)


def test_is_folder_spec():
    assert is_folder_spec("folder:photo") and is_folder_spec("/data/PACS/photo")
    assert not is_folder_spec("mnist") and not is_folder_spec("svhn-gen")


def test_a_registered_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    make_domain(tmp_path / "mnist", n_per_class=1)
    monkeypatch.chdir(tmp_path)
    assert not study_data("mnist", ["optdigits"]).folders


def test_cli_study_across_two_folder_domains(tree, tmp_path, capsys):
    truncate(tree / "sketch" / "square" / "img03.jpg")
    out = tmp_path / "study"
    args = ["run", "convnet", "--source", str(tree / "photo"), "--targets",
            str(tree / "sketch"), "--img-size", "32", "--steps", "10", "--evals", "2",
            "--batch-size", "8", "--variants", "baseline", "neurn", "--no-progress",
            "--no-weights", "--threads", "1", "--workers", "1", "--val-fraction", "0.2",
            "--test-fraction", "0.2", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(out)]
    assert main(args) == 2
    log, lines = split_log(capsys.readouterr().err)  # the header, then the error
    assert len(log) == 1 and len(lines) == 1
    assert str(tree / "sketch" / "square" / "img03.jpg") in lines[0]
    assert not out.exists()  # refused before anything was written
    assert main(args + ["--skip-bad-images"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unreadable image(s) of sketch" in captured.err
    for name in ("summary.md", "results.csv", "results.json", "data.json", "study.json",
                 "results.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    record = json.loads((out / "data.json").read_text())
    assert record["classes"] == list(CLASSES) and record["img_size"] == 32
    assert record["counts"]["photo"] == {"train": 12, "val": 3, "test": 3}
    assert record["counts"]["sketch"] == 11
    assert record["skipped"]["sketch"].keys() == {"square/img03.jpg"}
    assert sorted(sum(record["splits"].values(), [])) == sorted(
        FolderDomain(tree / "photo").files)
    summary = (out / "summary.md").read_text()
    assert "sketch 1" in summary and "photo" in summary
    # the images the numbers rest on, as data.json counts them (one file skipped)
    assert "Images: source photo 12 train / 3 val / 3 test; targets sketch 11." in summary
    result = json.loads(next((out / "runs").glob("*neurn*/result.json")).read_text())
    assert result["num_classes"] == 3 and result["img_size"] == 32
    assert result["settings"]["augment"] is True
    assert set(result["metrics"]) == {"photo", "sketch"}
    # rerunning resumes: every run is finished, so nothing trains and the table repeats
    assert main(args + ["--skip-bad-images"]) == 0
    assert (out / "summary.md").read_text() == summary


def test_cli_lists_the_domains_of_a_root(tree, capsys):
    assert main(["domains", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "photo" in out and "18 images" in out and "sketch" in out and "12 images" in out
    assert "classes: circle, cross, square" in out
    make_domain(tree / "cartoon", n_per_class=1, classes=("circle",))
    assert main(["domains", str(tree)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cartoon lacks cross, square" in err


def test_cli_refuses_mixed_and_missing_domains(tree, tmp_path, capsys):
    base = ["run", "convnet", "--steps", "2", "--no-progress", "--out", str(tmp_path / "o")]
    assert main(base + ["--source", str(tree / "photo"), "--targets", "svhn-gen"]) == 2
    assert "registered digit domain" in capsys.readouterr().err
    assert main(base + ["--source", str(tree / "photo"), "--targets",
                        str(tree / "nowhere")]) == 2
    assert str(tree / "nowhere") in capsys.readouterr().err
    assert main(base + ["--source", str(tree / "photo")]) == 2
    assert "needs image-folder targets" in capsys.readouterr().err
    assert main(base + ["--source", str(tree / "photo"), "--targets", str(tree / "sketch"),
                        "--data-dir", str(tree)]) == 2
    assert "drop it" in capsys.readouterr().err
    assert main(base + ["--source", str(tree / "photo"), "--targets", str(tree / "sketch"),
                        "--val-fraction", "0.7", "--test-fraction", "0.5"]) == 2
    assert "leave nothing to train" in capsys.readouterr().err
    assert main(base + ["--source", str(tree / "photo"), "--targets", str(tree / "sketch"),
                        "--img-size", "224"]) == 2
    err = capsys.readouterr().err  # convnet is the 32 px digits CNN
    assert "'convnet' cannot run on 224 px or resized to 299 px" in err
    assert "pass --img-size 32" in err
    assert not (tmp_path / "o").exists()


def test_results_do_not_depend_on_where_the_pixels_come_from(tree, tmp_path):
    from neurn.study import Study

    def run(name, **kwargs):
        study = Study(["convnet"], source=tree / "photo", targets=[tree / "sketch"],
                      img_size=32, variants=["baseline", "randconv"], steps=4, evals=2,
                      batch_size=6, device="cpu", threads=1, progress=False,
                      keep_weights=False, cache_dir=tmp_path / "cache",
                      out_dir=tmp_path / name, **kwargs)
        return {(r["variant"], r["domain"]): (r["top1"], r["loss"]) for r in study.run().rows}

    in_memory = run("memory")  # the default: decoded once, held in memory
    assert run("w0", stream_images=True, num_workers=0) == in_memory
    assert run("w2", stream_images=True, num_workers=2) == in_memory
    assert run("cached", cache_images=True) == in_memory


def test_a_study_decodes_each_folder_once(tmp_path, monkeypatch):
    """Every run and every held-out group reads the pixels of the first decoding pass."""
    import neurn.data.image_cache as image_cache
    from neurn.study import Study

    tree = tmp_path / "root"
    make_domain(tree / "photo")
    make_domain(tree / "sketch", n_per_class=4, offset=3)

    calls = []
    decode = image_cache.decode
    monkeypatch.setattr(image_cache, "decode", lambda path, size: calls.append(path) or
                        decode(path, size))
    study = Study(["convnet"], dataset=tree, test_envs=["all"], img_size=32,
                  variants=["baseline", "neurn"], steps=2, evals=1, batch_size=6,
                  device="cpu", threads=1, progress=False, keep_weights=False,
                  cache_dir=tmp_path / "cache", out_dir=tmp_path / "out")
    study.run()
    files = sum(len(d) for d in study.data.domains.values())
    assert len(study.grid()) == 2 * len(study.groups) and len(calls) == files
    assert len(set(calls)) == files


def test_every_held_out_group_gets_one_image_size(tmp_path):
    """The default size is probed once over the whole root, so every group (and the
    models' plans, made for the first group) use the same size."""
    from neurn.data.folder import probe_image_size
    from neurn.study import Study

    root = tmp_path / "root"
    make_domain(root / "photo")
    make_domain(root / "sketch", offset=3)
    for c, name in enumerate(CLASSES):  # a domain of 64 px images
        (root / "large" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(_drawing(c, i, (64, 64))).save(root / "large" / name / f"{i}.png")
    study = Study(["test_resnet"], dataset=root, test_envs=["all"], steps=1,
                  out_dir=tmp_path / "out", progress=False)
    expected = probe_image_size([root / d for d in ("large", "photo", "sketch")])
    assert {data.img_size for data in study.groups.values()} == {expected}
    assert study.plans["test_resnet"].img_size == expected
