"""Image-folder domains in DomainBed's layout: ``root/<domain>/<class>/<image>``.

>>> photo = domain("folder:/data/PACS/photo")        # one domain
>>> pacs = domains_from_root("/data/PACS")           # one per subfolder, shared classes
>>> image, label = photo[0]                          # float 3 x 224 x 224 in [0, 1]

* Classes are the domain's subfolders, sorted by name; :func:`shared_classes` checks that
  every domain of a study has the same set and names the ones missing where.
* Images are the files ending in ``IMAGE_EXTENSIONS`` (any case), read with PIL;
  greyscale, palette and RGBA images are converted to RGB (alpha dropped, as
  torchvision's and DomainBed's loaders do). Other files (``.txt``, ``Thumbs.db``) and
  hidden ones are ignored. A class without images, or a domain without classes, is an
  error that names the folder; so is a symbolic link loop. A dataset root given where a
  domain is expected, or a domain given as a dataset root, is named as that mistake
  (checked only once the listing has failed, so valid folders cost nothing extra).
* Samples wider than 8 bits (PIL modes ``I;16*``, ``I``, ``F``: 16-bit greyscale PNGs)
  are scaled, never clipped (PIL's ``convert("RGB")`` clips them at 255, which turned a
  12-bit image 94% white). A 16-bit sample is divided by 65535, its container's range,
  as torchvision's ``ToDtype(scale=True)`` and scikit-image's ``img_as_float`` do. The
  exception: a file whose samples all fit in 12 bits (maximum <= 4095) holds 12-bit data
  stored unscaled (cameras, microscopes, DICOM exports write it so; PNG's own rule would
  have shifted it up to 16 bits), and is divided by 4095; scaled by 65535 it would keep
  17 of the 256 grey levels. So every image of a 12-bit domain is read alike, and a
  16-bit image is read as 16-bit unless it is darker than 1/16 of full scale in every
  pixel (then it comes out 16 times brighter). Mode ``I`` must hold 0 to 65535 and
  ``F`` 0 to 1 (read as they are); other values, and ``LAB`` (which PIL converts to RGB
  without colour management), are refused naming the file and the mode. 16-bit colour
  PNGs reach us as 8 bits: PIL keeps each sample's high byte.
* :func:`probe_image_size` reads a sample of image headers for the typical image side,
  the default size for folders of small images (32 px digits need no 224 px resize).
* Decoding (:func:`decode`): JPEGs are decoded at the smallest DCT scale that still
  covers the target size (PIL's ``draft``), then every image is resized to
  ``size x size`` (bilinear, antialiased), DomainBed's evaluation transform. Random
  crops and flips for training (:mod:`neurn.fronts.augment`) work on these decoded images.
* A file that cannot be decoded raises :class:`BadImageError`, naming the path (as
  :func:`path_text` shows it: a name that is not UTF-8 as its bytes).
"""
from __future__ import annotations

import ast
import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from archalign.utils.errors import DataError, UsageError

__all__ = ["BadImageError", "FOLDER_PREFIX", "FolderDomain", "IMAGE_EXTENSIONS", "decode",
           "domains_from_root", "folder_path", "is_folder_spec", "path_text",
           "probe_image_size", "shared_classes"]

PathLike = str | os.PathLike
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FOLDER_PREFIX = "folder:"
DEFAULT_IMG_SIZE = 224
# What PIL raises for a file it cannot read; SyntaxError is its "broken PNG file",
# EOFError and struct.error come from plugins reading past a truncated header.
_PIL_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError,
               struct.error, Image.DecompressionBombError)
# Modes whose samples are wider than 8 bits: scaled here (see the module docstring).
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_12_BIT_MAX, _16_BIT_MAX = 4095, 65535
_CANNOT = "cannot decode this image"
_FIX = ("delete or replace it, or pass --skip-bad-images (skip_bad_images=True) to leave "
        "it out")


def path_text(path: PathLike) -> str:
    """``path`` as a one-line message shows it: as it is, or, when it is not printable
    text (a name whose bytes are not UTF-8, a newline in it), the repr of its bytes,
    ``b'/data/cat/\\xff.png'``, which names the file exactly."""
    text = os.fsdecode(path)
    return text if text.isprintable() else repr(os.fsencode(text))


def _path_from_text(text: str) -> str:
    """The path :func:`path_text` showed as ``text``."""
    if text[:2] in ("b'", 'b"'):
        try:
            return os.fsdecode(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            pass  # a name that only starts like a bytes repr
    return text


class BadImageError(DataError):
    """An image file that cannot be decoded: ``path`` names it, ``reason`` says why.

    Built from one argument, its own message, it recovers both: that is how pickle
    (a Dask task's error) and torch's ``DataLoader`` (a worker's error, as the worker's
    traceback text) rebuild it, so a bad file met in a worker process reads as the same
    one line as in the main process.
    """

    def __init__(self, path: PathLike, reason: str | None = None) -> None:
        if reason is None:
            path, reason = _split_message(os.fspath(path))
        self.path = os.fsdecode(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever PIL said
        super().__init__(f"{path_text(self.path)}: {_CANNOT} ({self.reason}); {_FIX}")


def _split_message(text: str) -> tuple[str, str]:
    """``(path, reason)`` of a :class:`BadImageError` message, found as the last line
    of ``text`` that holds one (a traceback ends with it); TypeError if none does."""
    prefix = f"{BadImageError.__module__}.{BadImageError.__qualname__}: "
    for line in reversed(text.splitlines() or [text]):
        message = line[len(prefix):] if line.startswith(prefix) else line
        head, found, rest = message.partition(f": {_CANNOT} (")
        reason, tail, _ = rest.rpartition(f"); {_FIX}")
        if found and tail:
            return _path_from_text(head), reason
    raise TypeError("BadImageError takes (path, reason) or a BadImageError message")


def decode(path: PathLike, size: int) -> np.ndarray:
    """One image file as uint8 (3, size, size) RGB; :class:`BadImageError` if unreadable
    or of a mode that cannot be read faithfully (the module docstring says which)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG only: decode at a reduced DCT scale
            return _pixels(image, size)
    except _Refused as refused:
        raise BadImageError(path, str(refused)) from None
    except _PIL_ERRORS as exc:
        # PIL names the file in some reasons ("cannot identify image file '...'"); the
        # message names it once, first
        reason = str(exc).replace(f" {os.fsdecode(path)!r}", "")
        raise BadImageError(path, reason or type(exc).__name__) from None


class _Refused(Exception):
    """A mode :func:`decode` reads but will not guess at; the message says why."""


def _pixels(image: Image.Image, size: int) -> np.ndarray:
    """An open PIL image as uint8 (3, size, size) RGB, resized bilinearly (antialiased)."""
    if image.mode in _WIDE_MODES:
        grey = Image.fromarray(_unit(image) * np.float32(255.0))  # mode F: resized in float
        grey = np.asarray(grey.resize((size, size), Image.Resampling.BILINEAR))
        out = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.broadcast_to(out, (3, size, size)))
    if image.mode == "LAB":
        raise _Refused("mode 'LAB': PIL converts it to RGB without colour management, so "
                       "the colours would be wrong; save it as RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # what PIL asks for (else it warns), alpha dropped below
    image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


def _unit(image: Image.Image) -> np.ndarray:
    """A wide-sample greyscale image as float32 (H, W) in [0, 1]: the 12- / 16-bit rule
    of the module docstring; other values refused."""
    values = np.asarray(image)
    low, high = (values.min(), values.max()) if values.size else (0, 0)
    if image.mode == "F":
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 1):
            raise _Refused(f"mode 'F' (32-bit float samples) with values {low:g} to "
                           f"{high:g}, not 0 to 1; save it as 8- or 16-bit, or scale it to 0-1")
        return values.astype(np.float32)
    if low < 0 or high > _16_BIT_MAX:
        raise _Refused(f"mode {image.mode!r} (32-bit integer samples) with values {low} to "
                       f"{high}, outside the 16-bit range 0 to {_16_BIT_MAX}; save it as "
                       f"8- or 16-bit")
    scale = _12_BIT_MAX if high <= _12_BIT_MAX else _16_BIT_MAX
    return values.astype(np.float32) / np.float32(scale)


def is_folder_spec(spec) -> bool:
    """True for ``folder:PATH``, a path object, or text that names an existing folder or
    holds a path separator (registered digit domains never do)."""
    if isinstance(spec, os.PathLike):
        return True
    text = str(spec)
    return (text.startswith(FOLDER_PREFIX) or os.sep in text or "/" in text
            or Path(text).is_dir())


def folder_path(spec: PathLike) -> Path:
    """The folder a domain spec names (``folder:PATH`` or a path)."""
    text = os.fspath(spec)
    return Path(text[len(FOLDER_PREFIX):] if text.startswith(FOLDER_PREFIX) else text)


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")


def _link_error(exc: OSError, path: PathLike) -> Exception:
    """The one-line error for ``path`` that could not be looked at: a symbolic link loop
    said as such (the OSError alone names no path), anything else as an OSError about
    ``path``."""
    if exc.errno == errno.ELOOP:
        return DataError(f"{path_text(path)}: a symbolic link loop (following its links "
                          f"never reaches a file or folder); remove the link or point it at "
                          f"a real file or folder")
    return type(exc)(exc.errno, exc.strerror or str(exc), os.fsdecode(path))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError as exc:
        raise _link_error(exc, entry.path) from None


def _is_image(entry: os.DirEntry) -> bool:
    if not (_visible(entry) and entry.name.lower().endswith(IMAGE_EXTENSIONS)):
        return False
    try:
        return entry.is_file()
    except OSError as exc:
        raise _link_error(exc, entry.path) from None


def _holds_images(folder: PathLike) -> bool:
    """Whether ``folder`` directly holds an image file; stops at the first one."""
    with os.scandir(folder) as it:
        return any(_is_image(e) for e in it)


def _shown(names: Sequence[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _root_as_domain_error(root: Path, class_dirs: Sequence[str], empty: str
                          ) -> ValueError | None:
    """The error for ``root`` when its would-be class folder ``empty`` holds no images:
    a dataset root passed as a domain when ``empty``'s subfolders hold images, else None."""
    with os.scandir(root / empty) as it:
        subfolders = [e.path for e in it if _visible(e) and _is_dir(e)]
    if not any(_holds_images(folder) for folder in subfolders):
        return None
    return UsageError(f"{root} looks like a dataset root (its subfolders {_shown(class_dirs)} "
                      f"are domains, each with class folders); pass one domain "
                      f"({root / class_dirs[0]}) or use it as the dataset root (--dataset)")


def _subfolders(root: Path, layout: str, what: str) -> list[str]:
    """The visible subfolders of ``root``, sorted; an error naming ``root`` when it is
    missing, not a folder, or has none (``what``: "class" or "domain")."""
    try:
        os.stat(root)
    except FileNotFoundError:
        raise FileNotFoundError(f"{root}: no such folder; expected {layout}") from None
    except OSError as exc:
        raise _link_error(exc, root) from None
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected {layout}")
    with os.scandir(root) as it:
        names = sorted(e.name for e in it if _visible(e) and _is_dir(e))
    if not names:
        raise DataError(f"{root}: no {what} folders in it; expected {layout} "
                        f"(DomainBed's layout)")
    return names


@dataclass(frozen=True)
class _Listing:
    classes: tuple[str, ...]
    files: tuple[str, ...]  # relative to the domain folder, "<class>/<file>"
    labels: np.ndarray  # index into classes


def _list(root: Path) -> _Listing:
    class_dirs = _subfolders(root, "root/<class>/<image>", "class")
    files: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(class_dirs):
        with os.scandir(root / name) as it:
            images = sorted(e.name for e in it if _is_image(e))
        if not images:
            error = _root_as_domain_error(root, class_dirs, name)
            if error is not None:
                raise error
            raise DataError(f"{root / name}: class folder without images (looked for "
                            f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove it")
        files.extend(f"{name}/{image}" for image in images)
        labels.extend([index] * len(images))
    return _Listing(tuple(class_dirs), tuple(files), np.asarray(labels, dtype=np.int64))


class FolderDomain(Dataset):
    """An image-folder domain: ``ds[i] -> (float32 tensor 3 x img_size x img_size in
    [0, 1], int label)``, decoded from disk on every access.

    Attributes
    ----------
    name
        the folder's name (``photo`` for ``/data/PACS/photo``).
    root
        the folder.
    classes
        class names (its subfolders), sorted; ``labels`` index into them, so
        domains with the same class set share one index.
    files
        paths relative to ``root`` (``"<class>/<file>"``), sorted.
    img_size
        the side images are resized to.
    generated
        always False: these are the user's images.
    """

    generated = False

    def __init__(self, root: PathLike, *, img_size: int = DEFAULT_IMG_SIZE) -> None:
        if int(img_size) != img_size or img_size < 8:
            raise UsageError(f"img_size must be an integer >= 8, got {img_size!r}")
        self.root = folder_path(root)
        listing = _list(self.root)
        self.name = self.root.resolve().name or str(self.root)
        self.img_size = int(img_size)
        self.files = listing.files
        self.classes = listing.classes
        self.labels = listing.labels

    def path(self, index: int) -> Path:
        return self.root / self.files[index]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = decode(self.path(index), self.img_size)
        return torch.from_numpy(pixels).to(torch.float32).div_(255.0), int(self.labels[index])

    def __repr__(self) -> str:
        return (f"FolderDomain({str(self.root)!r}, n={len(self)}, classes={len(self.classes)}, "
                f"img_size={self.img_size})")


def shared_classes(domains: Sequence[FolderDomain]) -> tuple[str, ...]:
    """The class list every domain shares (sorted, so its labels are one index for all);
    ``ValueError`` naming the classes each domain lacks when the sets differ."""
    reference = sorted(set().union(*(d.classes for d in domains)))
    problems = [f"{d.root} lacks {', '.join(sorted(set(reference) - set(d.classes)))}"
                for d in domains if set(d.classes) != set(reference)]
    if problems:
        raise DataError(f"the domains' class folders differ: {'; '.join(problems)}; every "
                        f"domain needs the same class folders")
    return tuple(reference)


def domains_from_root(root: PathLike, *, img_size: int = DEFAULT_IMG_SIZE
                      ) -> dict[str, FolderDomain]:
    """One domain per subfolder of a DomainBed-style ``root`` (``PACS/photo``,
    ``PACS/sketch``, ...), name -> domain, with one shared, sorted class index."""
    root = folder_path(root)
    names = _subfolders(root, "root/<domain>/<class>/<image>", "domain")
    domains = {}
    for name in names:
        try:
            domains[name] = FolderDomain(root / name, img_size=img_size)
        except ValueError:
            if _holds_images(root / name):  # root/<class>/<image>: one domain, not a root
                raise DataError(
                   f"{root} looks like a single domain (its subfolders are classes holding "
                   f"images); pass it as a domain (--source/--targets), not as a dataset "
                   f"root (--dataset)") from None
            raise
    shared_classes(list(domains.values()))
    return domains


def probe_image_size(domains: Iterable[FolderDomain | PathLike], *, sample: int = 64,
                     seed: int = 0) -> int:
    """The typical image side of folder domains: the median of ``min(width, height)``
    over up to ``sample`` files per domain, rounded to an int.

    Only headers are read (PIL opens lazily; nothing is decoded), so the probe stays cheap
    even for large JPEGs. Files are drawn with ``numpy.random.default_rng(seed)``
    so the same folders give the same size. Headers PIL cannot read are skipped.

    Parameters
    ----------
    domains
        :class:`FolderDomain` objects, or their folders (listed here).
    sample
        files read per domain at most.
    seed
        seeds the draw of files.

    Raises
    ------
    ValueError
        no domains, or not one readable header among the sampled files (the
        message names the folders).
    """
    if int(sample) != sample or sample < 1:
        raise UsageError(f"sample must be an integer >= 1, got {sample!r}")
    rng = np.random.default_rng(seed)
    sides: list[int] = []
    folders: list[str] = []
    for domain in domains:
        if isinstance(domain, FolderDomain):
            folder, files = domain.root, domain.files
        else:
            folder = folder_path(domain)
            files = _list(folder).files
        folders.append(str(folder))
        for index in rng.choice(len(files), min(int(sample), len(files)), replace=False):
            try:
                with Image.open(folder / files[index]) as image:
                    sides.append(min(image.size))
            except _PIL_ERRORS:
                pass
    if not folders:
        raise UsageError("probe_image_size needs at least one domain")
    if not sides:
        raise DataError(f"{', '.join(folders)}: none of the sampled images has a readable "
                        f"header; cannot tell the image size")
    return int(np.rint(np.median(sides)))
