"""The image-folder form of a split's data (DomainBed layout, :mod:`neurn.data.folder`):
:class:`FolderData`. Build it with :func:`neurn.study.data.study_data`, which checks the
arguments; :mod:`neurn.study.data` describes the protocol (decoding once, bad files, the
splits, the measured input constants).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import numpy as np
import torch

from archalign.utils.errors import UsageError
from neurn import data as ndata
from neurn.data.batches import ArrayBatches, ConcatBatches, FolderBatches
from neurn.data.folder import (
    DEFAULT_IMG_SIZE, BadImageError, FolderDomain, probe_image_size, shared_classes)
from neurn.data.image_cache import (
    cached_images, check_images, decoded_images, fingerprint, fits_in_memory)
from neurn.data.splits import holdout_split, stratified_split
from neurn.study.domain_data import StudyData, is_folder

__all__ = ["FolderData", "STATS_IMAGES"]

STATS_IMAGES = 512


class FolderData(StudyData):
    """Image-folder source(s) and targets: every file decoded once (bad ones stop the
    study, or are left out and counted with ``skip_bad_images``); one source split by a
    seeded stratified split, several (or ``holdout_mode``) each by the holdout fraction;
    targets used whole.

    Parameters
    ----------
    sources, targets
        image folders (paths, ``folder:PATH`` or listed
        :class:`~neurn.data.folder.FolderDomain`).
    img_size
        image side; None: ``default_size``, else the images' own, at most 224 px.
    split
        ``{"val": f, "test": f}`` fractions of one source (checked, complete).
    holdout
        the fraction of each training domain that validates, in ``holdout_mode``.
    holdout_mode
        every training domain is split by ``holdout`` (several sources, or
        DomainBed's protocol); no source test split.
    skip_bad_images
        leave undecodable files out instead of stopping.
    cache_images, stream_images
        decode once into a uint8 memmap in ``cache_dir`` / on every access
        (default: in memory when the pixels fit, the memmap otherwise).
    threads
        threads that decode while checking or caching images.
    default_size
        the image size when ``img_size`` is None (a pretrained backbone's input).
    decoded
        ``{folder: (dataset, files, bad)}`` shared between a study's groups, so a
        domain is decoded once.
    data_seed
        seed of the splits and subsets (and of the image-size probe).
    **limits
        ``cache_dir``, ``eval_limit``, ``train_limit``
        (:class:`~neurn.study.domain_data.StudyData`).
    """

    folders = True

    def __init__(self, sources: Sequence, targets: Sequence, *, img_size: int | None = None,
                 split: dict[str, float], holdout: float, holdout_mode: bool,
                 skip_bad_images: bool = False, cache_images: bool = False,
                 stream_images: bool = False, threads: int | None = None,
                 default_size: int | None = None, decoded: dict | None = None,
                 data_seed: int = 0, **limits) -> None:
        self.split, self.holdout, self.holdout_mode = split, holdout, holdout_mode
        self.skip_bad_images, self.cache_images = bool(skip_bad_images), bool(cache_images)
        self.stream_images, self.threads = bool(stream_images), threads
        self._decoded = {} if decoded is None else decoded
        self._stats: dict[str, tuple] | None = None
        self.fingerprints: dict[str, str] = {}
        if not targets:
            raise UsageError("an image-folder source needs image-folder targets "
                             "(--targets /data/PACS/sketch ...)")
        self.domains = _domains([*sources, *targets])
        self.classes = shared_classes(list(self.domains.values()))
        names = list(self.domains)
        self.sources, self.targets = names[:len(sources)], names[len(sources):]
        self.source = "+".join(self.sources)
        if img_size is None:
            img_size = default_size or min(DEFAULT_IMG_SIZE, probe_image_size(
                list(self.domains.values()), seed=int(data_seed)))
        super().__init__(img_size=img_size, data_seed=data_seed, **limits)

    @property
    def streams(self) -> bool:
        """True when batches are decoded from files (workers help)."""
        return self.stream_images

    # ------------------------------------------------------------------ loading
    def _decode(self, domain: FolderDomain):
        """``(dataset, files, bad)`` of a folder domain, decoded once per study."""
        key = (str(domain.root.resolve()), self.img_size, self.stream_images,
               self.cache_images)
        if key not in self._decoded:
            digest = fingerprint(domain)
            nbytes = len(domain) * 3 * self.img_size ** 2
            if self.stream_images:
                bad = check_images(domain, cache_dir=self.cache_dir, threads=self.threads,
                                   key=digest)
                dataset = FolderBatches(domain.root, domain.files, domain.labels,
                                        self.img_size)
            elif self.cache_images or not fits_in_memory(nbytes):
                images, bad = cached_images(domain, self.img_size, cache_dir=self.cache_dir,
                                            threads=self.threads, key=digest)
                dataset = ArrayBatches(images, domain.labels)
            else:
                images, bad = decoded_images(domain, self.img_size, threads=self.threads)
                dataset = ArrayBatches(images, domain.labels)
            self._decoded[key] = (dataset, digest, bad)
        return self._decoded[key]

    def _folder_dataset(self, domain: FolderDomain):
        dataset, self.fingerprints[domain.name], bad = self._decode(domain)
        if bad and not self.skip_bad_images:
            first = next(iter(bad))
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise BadImageError(domain.root / first, f"{bad[first]}{more}")
        keep = np.asarray([i for i, f in enumerate(domain.files) if f not in bad], dtype=np.int64)
        if len(keep) == 0:
            raise UsageError(f"{domain.root}: no image in it can be decoded")
        self.skipped[domain.name] = bad
        return dataset.subset(keep), [domain.files[i] for i in keep]

    def _load(self) -> dict:
        self.skipped, self.fingerprints, self.splits = {}, {}, {}
        train, val, evaluation = [], [], {}
        for name in self.sources:
            dataset, files = self._folder_dataset(self.domains[name])
            if self.holdout_mode:
                parts = holdout_split(dataset.labels, fraction=self.holdout,
                                      seed=self.data_seed, name=name)
            else:
                parts = stratified_split(dataset.labels, seed=self.data_seed, name=name,
                                         **self.split)
                evaluation[name] = self._limit(dataset.subset(parts["test"]), self.eval_limit)
            self.splits.update({(f"{name}/{k}" if self.holdout_mode else k):
                                [files[i] for i in v] for k, v in parts.items()})
            train.append(self._limit(dataset.subset(parts["train"]), self.train_limit))
            val.append(self._limit(dataset.subset(parts["val"]), self.eval_limit))
        for name in self.targets:
            evaluation[name] = self._limit(self._folder_dataset(self.domains[name])[0],
                                           self.eval_limit)
        one = len(train) == 1
        return {"train": train[0] if one else ConcatBatches(train),
                "train_parts": [len(t) for t in train],
                "val": val[0] if one else ConcatBatches(val),
                "eval": evaluation, "generated": {n: False for n in self.domains}}

    def input_stats(self) -> dict[str, tuple]:
        """The backbone-input constants, measured on up to ``STATS_IMAGES`` source-train
        images (never a target)."""
        if self._stats is None:
            from neurn.models import measure_input_stats

            train = self.load()["train"]
            rng = np.random.default_rng([self.data_seed, 13])
            pick = np.sort(rng.permutation(len(train))[:STATS_IMAGES])
            images = train[pick][0].to(torch.float32).div_(255.0)
            self._stats = measure_input_stats(images)
        return self._stats

    # ------------------------------------------------------------------ records
    def fingerprint(self) -> dict:
        self.load()
        split_digest = hashlib.sha256(json.dumps(self.splits, sort_keys=True).encode())
        return {**super().fingerprint(), "split": self._split_record(),
                "skip_bad_images": self.skip_bad_images, "files": self.fingerprints,
                "splits": split_digest.hexdigest()[:16], "input_stats": self.input_stats()}

    def describe(self) -> dict:
        """The study.json entry: kind, size, classes, the roots and the split."""
        return {**super().describe(),
                "roots": {n: os.fspath(d.root) for n, d in self.domains.items()},
                "split": self._split_record()}

    def _split_record(self) -> dict:
        return {"holdout": self.holdout} if self.holdout_mode else self.split

    def record(self) -> dict:
        """data.json: also every split's files, the skipped files and the fingerprints."""
        return {**super().record(), "skipped": self.skipped, "splits": self.splits,
                "input_stats": self.input_stats(), "fingerprints": self.fingerprints}


def _domains(specs: Sequence) -> dict[str, FolderDomain]:
    """The folder domains of ``specs``, by name (results are keyed by it)."""
    domains: dict[str, FolderDomain] = {}
    for spec in specs:
        if isinstance(spec, FolderDomain):  # listed already (leave_out_groups)
            folder = spec
        elif not is_folder(spec):
            raise ndata.not_a_folder_error(spec)
        else:
            # the listing does not depend on the size; pixels are decoded at img_size
            folder = FolderDomain(spec, img_size=DEFAULT_IMG_SIZE)
        if folder.name in domains:
            raise UsageError(f"two domains are named {folder.name!r} "
                             f"({domains[folder.name].root} and {folder.root}); "
                             f"results are keyed by folder name, rename one (or drop "
                             f"a domain given twice)")
        domains[folder.name] = folder
    return domains
