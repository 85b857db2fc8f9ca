"""Image decoding and the decoded-image cache under what real folders hold: every PIL
mode (16- and 12-bit greyscale scaled, never clipped), files rewritten with their times
kept, a full disk under the cache writer, a class with no readable image, a bad image
met in a DataLoader worker, and the one-line messages (names that are not UTF-8, symbolic
link loops, a target that is no folder).

Every image is a tiny array written here with PIL; expected values come from those arrays.
"""
from __future__ import annotations

import errno
import os
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from archalign.utils.args import os_error_line
from neurn import data
from neurn.data.batches import FolderBatches
from neurn.data.folder import BadImageError, FolderDomain, _pixels, decode, domains_from_root
from neurn.data.image_cache import cached_images, check_images, decoded_images, fingerprint
from neurn.study.data import batch_loader, study_data

SIDE = 16  # decoded at the images' own size: no resampling, values compare exactly


def _grey(values) -> np.ndarray:
    """uint8 (3, H, W) of a greyscale array of 0-255 values."""
    return np.repeat(np.asarray(values, dtype=np.uint8)[None], 3, axis=0)


def _assert_unit(decoded: np.ndarray, expected: np.ndarray) -> None:
    """``decoded`` uint8 pixels equal ``expected`` [0, 1] values up to 8-bit rounding."""
    np.testing.assert_array_less(np.abs(decoded / 255.0 - expected), 0.5 / 255 + 1e-6)


def _ramp(high: int, dtype) -> np.ndarray:
    """SIDE x SIDE samples spread over 0..high, both ends included."""
    return np.linspace(0, high, SIDE * SIDE).round().astype(dtype).reshape(SIDE, SIDE)


def test_16_bit_png_is_scaled_by_65535_not_clipped(tmp_path):
    samples = _ramp(65535, np.uint16)
    path = tmp_path / "c" / "deep.png"
    path.parent.mkdir()
    Image.fromarray(samples).save(path)
    with Image.open(path) as reread:
        assert reread.mode == "I;16"
    _assert_unit(decode(path, SIDE), np.broadcast_to(samples / 65535.0, (3, SIDE, SIDE)))
    image, _ = FolderDomain(tmp_path, img_size=SIDE)[0]  # the float the models see
    np.testing.assert_allclose(image.numpy(), np.broadcast_to(samples / 65535, image.shape),
                               atol=0.5 / 255 + 1e-6)


def test_12_bit_data_in_a_16_bit_png_is_read_as_12_bit_not_white(tmp_path):
    samples = _ramp(4095, np.uint16)
    path = tmp_path / "twelve.png"
    Image.fromarray(samples).save(path)
    pixels = decode(path, SIDE)
    _assert_unit(pixels, np.broadcast_to(samples / 4095.0, (3, SIDE, SIDE)))
    assert (pixels == 255).mean() < 0.01  # clipped at 255 it was 94% white
    assert len(np.unique(pixels)) > 200  # all 256 grey levels, not 17


def _palette(rng):
    return rng.integers(0, 256, (256, 3), dtype=np.uint8)


def _mode_cases(rng):
    """mode -> (PIL image, file format, expected uint8 (3, SIDE, SIDE))."""
    rgb = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    alpha = rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    index = rng.integers(0, 16, (SIDE, SIDE), dtype=np.uint8)
    palette = _palette(rng)
    bits = rng.integers(0, 2, (SIDE, SIDE)).astype(bool)
    cmyk_colours = np.array([[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0], [0, 0, 0, 255],
                             [0, 0, 0, 0]], dtype=np.uint8)
    rgb_colours = np.array([[0, 255, 255], [255, 0, 255], [255, 255, 0], [0, 0, 0],
                            [255, 255, 255]], dtype=np.uint8)
    which = rng.integers(0, 5, (SIDE, SIDE))
    deep = _ramp(65535, np.uint16)
    ints = _ramp(50000, np.int32)
    floats = np.linspace(0, 1, SIDE * SIDE, dtype=np.float32).reshape(SIDE, SIDE)
    ycbcr = np.stack([grey, np.full_like(grey, 128), np.full_like(grey, 128)], axis=2)

    def paletted():
        image = Image.frombytes("P", (SIDE, SIDE), index.tobytes())
        image.putpalette(palette.reshape(-1).tolist())
        return image

    return {
        "1": (Image.fromarray(bits), "PNG", _grey(bits * 255)),
        "L": (Image.fromarray(grey), "PNG", _grey(grey)),
        "LA": (Image.fromarray(np.stack([grey, alpha], axis=2)), "PNG", _grey(grey)),
        "P": (paletted(), "PNG", palette[index].transpose(2, 0, 1)),
        "P+transparency": (paletted(), "PNG", palette[index].transpose(2, 0, 1)),
        "RGB": (Image.fromarray(rgb), "PNG", rgb.transpose(2, 0, 1)),
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha])), "PNG", rgb.transpose(2, 0, 1)),
        "CMYK": (Image.frombytes("CMYK", (SIDE, SIDE), cmyk_colours[which].tobytes()),
                 "TIFF", rgb_colours[which].transpose(2, 0, 1)),
        "YCbCr": (Image.frombytes("YCbCr", (SIDE, SIDE), ycbcr.tobytes()), "TIFF",
                  _grey(grey)),
        "I;16": (Image.fromarray(deep), "PNG", deep / 65535.0),
        "I;16B": (Image.fromarray(deep.astype(">u2")), "TIFF", deep / 65535.0),
        "I": (Image.fromarray(ints), "TIFF", ints / 65535.0),
        "F": (Image.fromarray(floats), "TIFF", floats.astype(np.float64)),
    }


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA",
                                  "CMYK", "YCbCr", "I;16", "I;16B", "I", "F"])
def test_every_mode_decodes_to_its_values(tmp_path, mode):
    image, fmt, expected = _mode_cases(np.random.default_rng(0))[mode]
    path = tmp_path / f"image.{fmt.lower()}"
    image.save(path, fmt, **({"transparency": bytes(range(0, 256, 16))}
                             if mode == "P+transparency" else {}))
    with Image.open(path) as reread:
        assert reread.mode == mode.split("+")[0]  # the mode under test is what PIL reads
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's palette-transparency warning included
        pixels = decode(path, SIDE)
    assert pixels.shape == (3, SIDE, SIDE) and pixels.dtype == np.uint8
    if expected.dtype == np.uint8:
        np.testing.assert_array_equal(pixels, expected)
    else:  # wide samples: [0, 1] values
        _assert_unit(pixels, np.broadcast_to(expected, (3, SIDE, SIDE)))


@pytest.mark.parametrize("mode", ["I;16L", "I;16N"])
def test_little_and_native_endian_16_bit_modes_are_scaled_alike(mode):
    deep = _ramp(65535, np.uint16)
    image = Image.frombytes(mode, (SIDE, SIDE), deep.astype("<u2" if mode == "I;16L" else
                                                            "=u2").tobytes())
    _assert_unit(_pixels(image, SIDE), np.broadcast_to(deep / 65535.0, (3, SIDE, SIDE)))


@pytest.mark.parametrize("mode, values, why", [
    ("I", np.full((SIDE, SIDE), -5, np.int32), "outside the 16-bit range"),
    ("I", np.full((SIDE, SIDE), 70000, np.int32), "outside the 16-bit range"),
    ("F", np.full((SIDE, SIDE), 2.5, np.float32), "not 0 to 1"),
    ("F", np.full((SIDE, SIDE), np.nan, np.float32), "not 0 to 1"),
    ("LAB", None, "without colour management"),
])
def test_a_mode_that_cannot_be_read_faithfully_is_refused_in_one_line(tmp_path, mode, values,
                                                                      why):
    image = (Image.new("LAB", (SIDE, SIDE), (50, 0, 0)) if values is None
             else Image.fromarray(values))
    path = tmp_path / "odd.tif"
    image.save(path)
    with pytest.raises(BadImageError, match=why) as info:
        decode(path, SIDE)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert f"mode {mode!r}" in message


def _write(path, pixels, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, fmt)


def _tree(root, domains, per_class: int, seed: int) -> None:
    """``root/<domain>/<a|b>/<i>.png``: random 8 x 8 colour images, drawn in that order."""
    rng = np.random.default_rng(seed)
    for domain in domains:
        for c in ("a", "b"):
            for i in range(per_class):
                _write(root / domain / c / f"{i}.png",
                       rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))


def test_the_cache_follows_content_when_files_keep_their_times(tmp_path):
    """``cp -p``, ``rsync -t`` and ``tar`` rewrite a file and put its times back."""
    rng = np.random.default_rng(1)
    root = tmp_path / "photo"
    for c in ("a", "b"):
        for i in range(3):
            _write(root / c / f"{i}.bmp", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
        _write(root / c / "p.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    cache = tmp_path / "cache"
    before, _ = cached_images(FolderDomain(root), 12, cache_dir=cache)
    before = np.array(before)
    assert check_images(FolderDomain(root), cache_dir=cache) == {}

    bmp, png = root / "a" / "1.bmp", root / "b" / "p.png"
    times = {p: os.stat(p) for p in (bmp, png)}
    fresh = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    _write(bmp, fresh)  # same size in bytes: only the content differs
    payload = bytearray(png.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # inside the compressed pixels, same length
    png.write_bytes(bytes(payload))
    for p, st in times.items():
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(p).st_size == st.st_size and os.stat(p).st_mtime_ns == st.st_mtime_ns

    domain = FolderDomain(root)
    assert list(check_images(domain, cache_dir=cache)) == ["b/p.png"]
    after, bad = cached_images(domain, 12, cache_dir=cache)
    assert list(bad) == ["b/p.png"]
    row = domain.files.index("a/1.bmp")
    np.testing.assert_array_equal(after[row], fresh.transpose(2, 0, 1))
    assert not np.array_equal(after[row], before[row])


@pytest.fixture
def big_domain(tmp_path):
    """16 images of 48 px: 110 KB of decoded pixels, more than the 64 KiB small disk."""
    rng = np.random.default_rng(2)
    for i in range(16):
        _write(tmp_path / "big" / "ab"[i % 2] / f"{i}.png",
               rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    return FolderDomain(tmp_path / "big")


@pytest.mark.parametrize("fallocate", [True, False])
def test_a_full_disk_under_the_image_cache_is_one_line_and_leaves_nothing(
        small_disk, big_domain, monkeypatch, fallocate):
    if not fallocate:  # a file system without fallocate: zeros are written instead
        def unsupported(fd, offset, length):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        monkeypatch.setattr(os, "posix_fallocate", unsupported)
    with pytest.raises(OSError) as info:
        cached_images(big_domain, 48, cache_dir=small_disk)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename.endswith(".npy") and ".tmp-" not in info.value.filename
    line = os_error_line(info.value)
    assert "\n" not in line and "need 0.1 MB" in line and "--cache-dir" in line
    assert os.listdir(small_disk / "folders") == []  # no temp file left
    images, bad = cached_images(big_domain, 48, cache_dir=small_disk.parent / "roomy")
    assert images.shape == (16, 3, 48, 48) and bad == {}


@pytest.fixture
def hopeless(tmp_path):
    """Two domains whose class ``b`` in ``photo`` holds only unreadable files."""
    _tree(tmp_path, ("photo", "sketch"), 4, seed=3)
    for i in range(4):
        (tmp_path / "photo" / "b" / f"{i}.png").write_text("not an image")
    return tmp_path


def test_a_class_with_no_readable_image_is_refused(hopeless, tmp_path):
    domain = FolderDomain(hopeless / "photo")
    where = re.escape(f"{hopeless / 'photo' / 'b'}: none of its 4 image(s) can be decoded")
    for load in (lambda: check_images(domain, cache_dir=tmp_path / "c1"),
                 lambda: decoded_images(domain, 8),
                 lambda: cached_images(domain, 8, cache_dir=tmp_path / "c2"),
                 lambda: cached_images(domain, 8, cache_dir=tmp_path / "c2")):  # from cache
        with pytest.raises(ValueError, match=where) as info:
            load()
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=where):
        study_data(hopeless / "photo", [hopeless / "sketch"], img_size=8,
                   cache_dir=tmp_path / "c3", skip_bad_images=True).load()


def test_a_bad_image_in_a_dataloader_worker_reads_as_in_the_main_process(tmp_path):
    rng = np.random.default_rng(4)
    for i in range(6):
        _write(tmp_path / "d" / "ab"[i % 2] / f"{i}.png",
               rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "d" / "a" / "2.png").write_bytes(b"\x89PNG broken")
    domain = FolderDomain(tmp_path / "d")
    dataset = FolderBatches(domain.root, domain.files, domain.labels, 8)

    def error(workers: int) -> BadImageError:
        batches = iter(batch_loader(dataset, [torch.arange(6)], workers=workers))
        try:
            next(batches)
        except BadImageError as exc:
            # without its traceback (which holds the loader), the workers stop here, not
            # when a later test collects the garbage
            return exc.with_traceback(None)
        finally:
            del batches
        pytest.fail(f"no BadImageError with {workers} workers")

    in_main, in_worker = error(0), error(2)
    assert str(in_worker) == str(in_main) and "\n" not in str(in_main)
    assert in_worker.path == in_main.path == str(tmp_path / "d" / "a" / "2.png")
    again = pickle.loads(pickle.dumps(in_worker))  # a Dask task's error comes back so
    assert str(again) == str(in_main) and again.reason == in_main.reason


def test_a_bad_image_is_named_once_with_one_reason(tmp_path):
    _tree(tmp_path, ("photo", "sketch"), 6, seed=5)
    bad = tmp_path / "photo" / "a" / "3.png"
    bad.write_text("not an image")
    (tmp_path / "photo" / "b" / "0.png").write_bytes(b"")
    with pytest.raises(BadImageError) as info:
        study_data(tmp_path / "photo", [tmp_path / "sketch"], img_size=8,
                   cache_dir=tmp_path / "cache").load()
    message = str(info.value)
    assert message.startswith(f"{bad}: cannot decode this image (cannot identify image file")
    assert message.count("cannot decode") == 1 and message.count(str(bad)) == 1
    assert message.count("--skip-bad-images") == 1 and "(and 1 more)" in message
    assert "\n" not in message


def test_a_name_that_is_not_utf8_is_reported_with_its_path(tmp_path):
    _tree(tmp_path, ("d",), 3, seed=6)
    raw = os.fsencode(tmp_path / "d" / "a") + b"/caf\xe9.png"  # Latin-1, not UTF-8
    with open(raw, "wb") as f:
        f.write(b"junk")
    domain = FolderDomain(tmp_path / "d")
    assert len(fingerprint(domain)) == 24  # once a UnicodeEncodeError, naming nothing
    bad = check_images(domain, cache_dir=tmp_path / "cache")
    (name,) = bad
    with pytest.raises(BadImageError) as info:
        decode(domain.root / name, 8)
    assert str(info.value).startswith(repr(raw) + ": cannot decode this image")
    assert os.fsencode(info.value.path) == raw
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)


def test_a_target_that_is_no_folder_is_said_to_be_neither():
    message = str(data.not_a_folder_error("foo_bar"))
    assert message.startswith("'foo_bar' is neither an image folder (there is no ")
    assert "nor a registered digit domain" in message
    assert "is a registered digit domain" in str(data.not_a_folder_error("mnist"))


def test_a_symbolic_link_loop_is_one_line_naming_it(tmp_path):
    _tree(tmp_path / "root", ("d",), 1, seed=7)
    image_loop = tmp_path / "root" / "d" / "a" / "loop.png"
    os.symlink(image_loop, image_loop)
    with pytest.raises(ValueError, match=f"^{image_loop}: a symbolic link loop .*; remove "
                                         f"the link or point it at a real file or folder$"):
        FolderDomain(tmp_path / "root" / "d")
    os.remove(image_loop)
    domain_loop = tmp_path / "root" / "e"
    os.symlink(domain_loop, domain_loop)
    for load in (lambda: FolderDomain(domain_loop), lambda: domains_from_root(tmp_path / "root")):
        with pytest.raises(ValueError, match=f"^{domain_loop}: a symbolic link loop"):
            load()
