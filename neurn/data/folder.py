"""Image-folder domains in DomainBed's layout: ``root/<domain>/<class>/<image>``.

>>> photo = domain("folder:/data/PACS/photo")        # one domain
>>> pacs = domains_from_root("/data/PACS")           # one per subfolder, shared classes
>>> image, label = photo[0]                          # float 3 x 224 x 224 in [0, 1]

* Classes are the domain's subfolders, sorted by name; :func:`shared_classes` checks that
  every domain of a study has the same set and names the ones missing where.
* Images are the files ending in ``IMAGE_EXTENSIONS`` (any case), read with PIL;
  greyscale, palette and RGBA images are converted to RGB. Other files (``.txt``,
  ``Thumbs.db``) and hidden ones are ignored. A class without images, or a domain
  without classes, is an error that names the folder. A dataset root given where a
  domain is expected, or a domain given as a dataset root, is named as that mistake
  (checked only once the listing has failed, so valid folders cost nothing extra).
* :func:`probe_image_size` reads a sample of image headers for the typical image side,
  the default size for folders of small images (32 px digits need no 224 px resize).
* Decoding (:func:`decode`): JPEGs are decoded at the smallest DCT scale that still
  covers the target size (PIL's ``draft``), then every image is resized to
  ``size x size`` (bilinear, antialiased), DomainBed's evaluation transform. Random
  crops and flips for training (:mod:`neurn.fronts.augment`) work on these decoded images.
* A file that cannot be decoded raises :class:`BadImageError`, naming the path.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

__all__ = ["BadImageError", "FOLDER_PREFIX", "FolderDomain", "IMAGE_EXTENSIONS", "decode",
           "domains_from_root", "folder_path", "is_folder_spec", "probe_image_size",
           "shared_classes"]

PathLike = Union[str, os.PathLike]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FOLDER_PREFIX = "folder:"
DEFAULT_IMG_SIZE = 224
# What PIL raises for a file it cannot read; SyntaxError is its "broken PNG file".
_PIL_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError,
               Image.DecompressionBombError)


class BadImageError(ValueError):
    """An image file that PIL cannot decode; ``path`` names it."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"{path}: cannot decode this image ({reason}); delete or replace "
                         f"it, or pass --skip-bad-images (skip_bad_images=True) to leave "
                         f"it out")
        self.path = str(path)


def decode(path: PathLike, size: int) -> np.ndarray:
    """One image file as uint8 (3, size, size) RGB; :class:`BadImageError` if unreadable."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG only: decode at a reduced DCT scale
            image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
    except _PIL_ERRORS as exc:
        raise BadImageError(path, str(exc) or type(exc).__name__) from None


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


def _is_image(entry: os.DirEntry) -> bool:
    return (entry.is_file() and _visible(entry)
            and entry.name.lower().endswith(IMAGE_EXTENSIONS))


def _holds_images(folder: PathLike) -> bool:
    """Whether ``folder`` directly holds an image file; stops at the first one."""
    with os.scandir(folder) as it:
        return any(_is_image(e) for e in it)


def _shown(names: Sequence[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _root_as_domain_error(root: Path, class_dirs: Sequence[str], empty: str
                          ) -> Optional[ValueError]:
    """The error for ``root`` when its would-be class folder ``empty`` holds no images:
    a dataset root passed as a domain when ``empty``'s subfolders hold images, else None."""
    with os.scandir(root / empty) as it:
        subfolders = [e.path for e in it if e.is_dir() and _visible(e)]
    if not any(_holds_images(folder) for folder in subfolders):
        return None
    return ValueError(f"{root} looks like a dataset root (its subfolders {_shown(class_dirs)} "
                      f"are domains, each with class folders); pass one domain "
                      f"({root / class_dirs[0]}) or use it as the dataset root (--dataset)")


def _subfolders(root: Path, layout: str, what: str) -> List[str]:
    """The visible subfolders of ``root``, sorted; an error naming ``root`` when it is
    missing, not a folder, or has none (``what``: "class" or "domain")."""
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder; expected {layout}")
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder; expected {layout}")
    with os.scandir(root) as it:
        names = sorted(e.name for e in it if e.is_dir() and _visible(e))
    if not names:
        raise ValueError(f"{root}: no {what} folders in it; expected {layout} "
                         f"(DomainBed's layout)")
    return names


@dataclass(frozen=True)
class _Listing:
    classes: Tuple[str, ...]
    files: Tuple[str, ...]  # relative to the domain folder, "<class>/<file>"
    labels: np.ndarray  # index into classes


def _list(root: Path) -> _Listing:
    class_dirs = _subfolders(root, "root/<class>/<image>", "class")
    files: List[str] = []
    labels: List[int] = []
    for index, name in enumerate(class_dirs):
        with os.scandir(root / name) as it:
            images = sorted(e.name for e in it if _is_image(e))
        if not images:
            error = _root_as_domain_error(root, class_dirs, name)
            if error is not None:
                raise error
            raise ValueError(f"{root / name}: class folder without images (looked for "
                             f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove it")
        files.extend(f"{name}/{image}" for image in images)
        labels.extend([index] * len(images))
    return _Listing(tuple(class_dirs), tuple(files), np.asarray(labels, dtype=np.int64))


class FolderDomain(Dataset):
    """An image-folder domain: ``ds[i] -> (float32 tensor 3 x img_size x img_size in
    [0, 1], int label)``, decoded from disk on every access.

    Attributes:
        name: the folder's name (``photo`` for ``/data/PACS/photo``).
        root: the folder.
        classes: class names (its subfolders), sorted; ``labels`` index into them, so
            domains with the same class set share one index.
        files: paths relative to ``root`` (``"<class>/<file>"``), sorted.
        img_size: the side images are resized to.
        generated: always False: these are the user's images.
    """

    generated = False

    def __init__(self, root: PathLike, *, img_size: int = DEFAULT_IMG_SIZE) -> None:
        if int(img_size) != img_size or img_size < 8:
            raise ValueError(f"img_size must be an integer >= 8, got {img_size!r}")
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

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        pixels = decode(self.path(index), self.img_size)
        return torch.from_numpy(pixels).to(torch.float32).div_(255.0), int(self.labels[index])

    def __repr__(self) -> str:
        return (f"FolderDomain({str(self.root)!r}, n={len(self)}, classes={len(self.classes)}, "
                f"img_size={self.img_size})")


def shared_classes(domains: Sequence[FolderDomain]) -> Tuple[str, ...]:
    """The class list every domain shares (sorted, so its labels are one index for all);
    ``ValueError`` naming the classes each domain lacks when the sets differ."""
    reference = sorted(set().union(*(d.classes for d in domains)))
    problems = [f"{d.root} lacks {', '.join(sorted(set(reference) - set(d.classes)))}"
                for d in domains if set(d.classes) != set(reference)]
    if problems:
        raise ValueError(f"the domains' class folders differ: {'; '.join(problems)}; every "
                         f"domain needs the same class folders")
    return tuple(reference)


def domains_from_root(root: PathLike, *, img_size: int = DEFAULT_IMG_SIZE
                      ) -> Dict[str, FolderDomain]:
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
                raise ValueError(
                    f"{root} looks like a single domain (its subfolders are classes holding "
                    f"images); pass it as a domain (--source/--targets), not as a dataset "
                    f"root (--dataset)") from None
            raise
    shared_classes(list(domains.values()))
    return domains


def probe_image_size(domains: Iterable[Union[FolderDomain, PathLike]], *, sample: int = 64,
                     seed: int = 0) -> int:
    """The typical image side of folder domains: the median of ``min(width, height)``
    over up to ``sample`` files per domain, rounded to an int.

    Only headers are read (PIL opens lazily; nothing is decoded), so the probe stays cheap
    even for large JPEGs. Files are drawn with ``numpy.random.default_rng(seed)``
    so the same folders give the same size. Headers PIL cannot read are skipped.

    Args:
        domains: :class:`FolderDomain` objects, or their folders (listed here).
        sample: files read per domain at most.
        seed: seeds the draw of files.

    Raises:
        ValueError: no domains, or not one readable header among the sampled files (the
            message names the folders).
    """
    if int(sample) != sample or sample < 1:
        raise ValueError(f"sample must be an integer >= 1, got {sample!r}")
    rng = np.random.default_rng(seed)
    sides: List[int] = []
    folders: List[str] = []
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
        raise ValueError("probe_image_size needs at least one domain")
    if not sides:
        raise ValueError(f"{', '.join(folders)}: none of the sampled images has a readable "
                         f"header; cannot tell the image size")
    return int(np.rint(np.median(sides)))
