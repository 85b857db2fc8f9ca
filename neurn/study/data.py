"""The data of a study: its source and target domains, resolved, checked and split.

:class:`StudyData` takes what the user named (registered digit domains, or image
folders: a path or ``folder:PATH``) and does every check that needs no decoding when
it is built, so a bad name, a missing folder or differing class sets fail before the
study writes anything. :meth:`StudyData.load` then reads the pixels and returns
batch-indexed datasets (:mod:`neurn.data.batches`):

* **digits** (the embedded default): the offline or full-scale digit domains, their
  fixed train / val / test split, held in memory; ``img_size`` other than 32 resizes
  them once (bilinear, antialiased).
* **folders** (DomainBed layout, :mod:`neurn.data.folder`): every file is decoded once
  to find the bad ones (:func:`~neurn.data.image_cache.check_images`, remembered in the
  cache); a bad file stops the study, naming it, unless ``skip_bad_images`` leaves it
  out (counted in ``data.json`` and ``summary.md``). The source is split by a seeded,
  stratified split (:mod:`neurn.data.splits`); targets are used whole. Images stream
  from disk through ``DataLoader`` workers, or come from the decoded uint8 memmap with
  ``cache_images``. The backbone's input constants (:data:`neurn.models.INPUT_STATS`'s
  role) are measured on up to ``STATS_IMAGES`` source-train images, never on a target.
* **several sources** (``--source A B``, or DomainBed's leave-one-domain-out groups of
  :func:`leave_out_groups`): each training domain is split by :func:`~neurn.data.splits.
  holdout_split` (``holdout`` of it, default 0.2, validates; no source test split, as in
  DomainBed), the training set is the domains' train parts end to end
  (:class:`~neurn.data.batches.ConcatBatches`, ``train_parts`` gives their sizes for
  balanced batches) and the val set their holdouts.

Folder domains are decoded once per study (``decoded``, a dict the study shares between
its groups): into memory when the pixels fit in half the available memory, into the
verified memmap of :mod:`neurn.data.image_cache` otherwise or with ``cache_images``;
``stream_images`` decodes files on every access instead (DataLoader workers), for data
that fit neither. A bad file is found by that pass. The default image size for folders
is the images' own (the median shorter side of a sample, :func:`~neurn.data.folder.
probe_image_size`) up to 224 px, or ``default_size`` (a pretrained backbone's input).

:meth:`StudyData.record` is what ``data.json`` holds (class list, split sizes and
files, skipped files); :meth:`StudyData.fingerprint` goes into every run's settings
hash, so a run is never resumed on other data.
"""
from __future__ import annotations
import difflib
import hashlib
import json
import os
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from archalign.utils.errors import UsageError
from neurn import data as ndata
from neurn.data._cache import PathLike
from neurn.data.batches import ArrayBatches, ConcatBatches, FolderBatches
from neurn.data.folder import (
    DEFAULT_IMG_SIZE, BadImageError, FolderDomain, domains_from_root, is_folder_spec,
    probe_image_size, shared_classes)
from neurn.data.image_cache import (
    cached_images, check_images, decoded_images, fingerprint, fits_in_memory)
from neurn.data.splits import (
    DEFAULT_FRACTIONS, DEFAULT_HOLDOUT, check_fractions, check_holdout, holdout_split,
    stratified_split)
from neurn.results.guards import DIGIT_CLASSES

__all__ = ["StudyData", "OFFLINE_TARGETS", "FULLSCALE_TARGETS", "STATS_IMAGES",
           "batch_loader", "leave_out_groups"]

OFFLINE_TARGETS = tuple(ndata.list_domains(source=False, offline=True))
# the paper's targets (MNIST -> MNIST-M, SVHN, USPS); add "syn" for the DG benchmark
FULLSCALE_TARGETS = ("mnistm", "svhn", "usps")
DIGITS_SIZE = 32
STATS_IMAGES = 512


def batch_loader(dataset, batches: Sequence[torch.Tensor], *, workers: int = 0,
                 pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over a batch-indexed dataset: one index tensor per batch,
    ``workers`` processes fetching whole batches (pinned for CUDA when asked)."""
    return torch.utils.data.DataLoader(dataset, sampler=batches, batch_size=None,
                                       num_workers=workers, pin_memory=pin_memory,
                                       persistent_workers=False)


def leave_out_groups(root: PathLike, test_envs: Sequence) -> dict[str, tuple]:
    """DomainBed's splits of a dataset ``root``: ``{group name: (training domains,
    held-out domains)}``, each a :class:`~neurn.data.folder.FolderDomain` listed once and
    shared by every group. ``test_envs``: domain names or indices (in sorted order)
    held out together as one group, or ``["all"]`` for one group per domain (every
    leave-one-domain-out split); a group is named by its held-out domains (``a+b``)."""
    domains = domains_from_root(root, img_size=DEFAULT_IMG_SIZE)
    names = list(domains)
    if len(names) < 2:
        raise UsageError(f"{root}: one domain ({names[0]}); leave-one-domain-out needs at "
                         f"least two domain folders")
    envs = [str(e) for e in test_envs]
    if not envs:
        raise UsageError("give the held-out domains (--test-envs NAME|INDEX ... or all)")
    if envs == ["all"]:
        groups = [[n] for n in names]
    else:
        held = []
        for env in envs:
            if env.isdigit() and env not in names:
                if int(env) >= len(names):
                    raise UsageError(f"test env {env} is out of range: {root} has "
                                     f"{len(names)} domains, 0 .. {len(names) - 1} "
                                     f"({', '.join(names)})")
                env = names[int(env)]
            if env not in names:
                close = difflib.get_close_matches(env, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise UsageError(f"test env {env!r} is not a domain of {root} "
                                 f"({', '.join(names)}){hint}")
            held.append(env)
        held = list(dict.fromkeys(held))
        if len(held) == len(names):
            raise UsageError(f"every domain of {root} is held out; leave at least one to "
                             f"train on")
        groups = [held]
    return {"+".join(g): ([domains[n] for n in names if n not in g], [domains[n] for n in g])
            for g in groups}


def _is_folder(spec) -> bool:
    """A folder domain unless it names a registered digit domain (a ``mnist`` folder in
    the working directory does not turn the default study into a folder study)."""
    return is_folder_spec(spec) and str(spec) not in ndata.list_domains()


class StudyData:
    """Source and targets of a study; see the module docstring.

    Parameters
    ----------
    source
        a registered digit domain (``mnist``) or an image folder.
    targets
        registered digit targets, or image folders (default: the offline
        digit targets; with ``data_dir`` the paper's).
    img_size
        image side (default 32 for digits, 224 for folders).
    split
        ``{"val": f, "test": f}`` fractions of a folder source (default 0.1 each).
    skip_bad_images
        leave undecodable files out instead of stopping.
    cache_images
        decode folder domains once into a uint8 memmap in ``cache_dir``
        (default: in memory when they fit, the memmap otherwise).
    stream_images
        decode image files on every access instead.
    threads
        threads that decode while checking or caching images.
    holdout
        the fraction of each training domain that validates, with several
        sources (or ``force_holdout``, DomainBed's protocol); default 0.2.
    default_size
        the folder image size when ``img_size`` is None (a pretrained
        backbone's input size); None: the images' own size, at most 224 px.
    decoded
        ``{folder: (dataset, files, bad)}`` shared between the studies' groups,
        so a domain is decoded once.
    """

    def __init__(self, source: PathLike | FolderDomain | Sequence = "mnist",
                 targets: Sequence | None = None, *,
                 data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
                 data_seed: int = 0, eval_limit: int | None = None,
                 train_limit: int | None = None, img_size: int | None = None,
                 split: dict[str, float] | None = None, skip_bad_images: bool = False,
                 cache_images: bool = False, stream_images: bool = False,
                 threads: int | None = None, holdout: float | None = None,
                 force_holdout: bool = False, default_size: int | None = None,
                 decoded: dict | None = None) -> None:
        for label, value in (("eval_limit", eval_limit), ("train_limit", train_limit)):
            if value is not None and (value != int(value) or value < 1):
                raise UsageError(f"{label} must be an integer >= 1 or None, got {value!r}")
        if data_seed != int(data_seed) or data_seed < 0:  # numpy seeds are >= 0
            raise UsageError(f"data_seed must be an integer >= 0, got {data_seed!r}")
        self.eval_limit, self.train_limit = eval_limit, train_limit
        self.cache_dir, self.data_seed = cache_dir, int(data_seed)
        self.skip_bad_images, self.cache_images = bool(skip_bad_images), bool(cache_images)
        if cache_images and stream_images:
            raise UsageError("cache_images and stream_images exclude each other (--cache-"
                             "images keeps decoded pixels, --stream-images none); pick one")
        self.stream_images = bool(stream_images)
        self.threads = threads
        self.data_dir = Path(data_dir) if data_dir is not None else None
        sources = ([source] if isinstance(source, (str, os.PathLike, FolderDomain))
                   else list(source))
        if not sources:
            raise UsageError("give a source domain")
        self.folders = isinstance(sources[0], FolderDomain) or _is_folder(sources[0])
        self.holdout_mode = len(sources) > 1 or bool(force_holdout)
        if holdout is not None and not self.holdout_mode:
            raise UsageError("the holdout fraction applies to several source domains or "
                             "--dataset; one source is split by --val-fraction / "
                             "--test-fraction")
        self.holdout = float(DEFAULT_HOLDOUT if holdout is None else holdout)
        check_holdout(self.holdout)
        if img_size is not None and (int(img_size) != img_size or img_size < 8):
            raise UsageError(f"img_size must be an integer >= 8, got {img_size!r}")
        unknown = set(split or {}) - set(DEFAULT_FRACTIONS)
        if unknown:
            raise UsageError(f"split takes the fractions {list(DEFAULT_FRACTIONS)}, got "
                             f"{sorted(unknown)}")
        if split and self.holdout_mode:
            raise UsageError("val / test fractions split one source; with several source "
                             "domains each is split by the holdout fraction "
                             "(--holdout-fraction)")
        self.split = {**DEFAULT_FRACTIONS, **(split or {})}
        check_fractions(**self.split)
        self._decoded = {} if decoded is None else decoded
        if self.folders:
            self._init_folders(sources, targets)
            if img_size is None:
                img_size = default_size or min(DEFAULT_IMG_SIZE, probe_image_size(
                    list(self.domains.values()), seed=self.data_seed))
            self.img_size = int(img_size)
        else:
            self.img_size = int(img_size) if img_size is not None else DIGITS_SIZE
            if split:
                raise UsageError("split fractions apply to image-folder sources; the digit "
                                 "source has a fixed 4,000 / 500 / 500 split")
            if len(sources) > 1:
                raise UsageError("several sources are for image folders; the digit study "
                                 "trains on one source (mnist)")
            self._init_digits(sources[0], targets)
        self._loaded: dict | None = None
        self._stats: dict[str, tuple] | None = None

    # ------------------------------------------------------------------ checks
    def _init_digits(self, source: str, targets) -> None:
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {str(self.data_dir)!r} is not a folder; point "
                                    f"it at the folder holding the real datasets (MNIST/, "
                                    f"test_32x32.mat, usps.t.bz2, mnist_m/, ...)")
        info = ndata.domain_info(source)  # KeyError with suggestions
        if not info.source:
            raise UsageError(f"{source!r} is a target domain (evaluation only); sources: "
                             f"{ndata.list_domains(source=True)}")
        if targets is None:
            targets = FULLSCALE_TARGETS if self.data_dir is not None else OFFLINE_TARGETS
        self.source, self.sources = source, [source]
        self.targets = list(dict.fromkeys(str(t) for t in targets))
        for name in self.targets:
            if _is_folder(name):
                raise UsageError(f"target {name!r} is an image folder but the source "
                                 f"{source!r} is a digit domain; use folders for both")
            t = ndata.domain_info(name)
            if t.source:
                raise UsageError(f"{name!r} is the source-type domain; its held-out test "
                                 f"split is always reported, drop it from the targets")
            if not t.offline and self.data_dir is None:
                raise UsageError(f"target {name!r} is a real dataset and needs data_dir "
                                 f"(--data-dir); offline stand-ins: {list(OFFLINE_TARGETS)}")
        self.classes = tuple(str(d) for d in range(DIGIT_CLASSES))

    def _init_folders(self, sources, targets) -> None:
        if self.data_dir is not None:
            raise UsageError("data_dir (--data-dir) holds the real digit datasets; image-"
                             "folder domains are given by their paths, drop it")
        if not targets:
            raise UsageError("an image-folder source needs image-folder targets "
                             "(--targets /data/PACS/sketch ...)")
        self.domains: dict[str, FolderDomain] = {}
        for spec in [*sources, *targets]:
            if isinstance(spec, FolderDomain):  # listed already (leave_out_groups)
                folder = spec
            elif not _is_folder(spec):
                raise ndata.not_a_folder_error(spec)
            else:
                # the listing does not depend on the size; pixels are decoded at img_size
                folder = FolderDomain(spec, img_size=DEFAULT_IMG_SIZE)
            if folder.name in self.domains:
                raise UsageError(f"two domains are named {folder.name!r} "
                                 f"({self.domains[folder.name].root} and {folder.root}); "
                                 f"results are keyed by folder name, rename one (or drop "
                                 f"a domain given twice)")
            self.domains[folder.name] = folder
        self.classes = shared_classes(list(self.domains.values()))
        names = list(self.domains)
        self.sources, self.targets = names[:len(sources)], names[len(sources):]
        self.source = "+".join(self.sources)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------------ loading
    def load(self) -> dict:
        """``{"train", "val": dataset, "eval": {domain: dataset}, "generated": {domain:
        bool}}`` (the source's test split is ``eval[source]``), loaded once."""
        if self._loaded is None:
            self._loaded = self._load_folders() if self.folders else self._load_digits()
        return self._loaded

    def _limit(self, dataset, limit: int | None):
        if limit is None or limit >= len(dataset):
            return dataset
        rng = np.random.default_rng([self.data_seed, 7])
        return dataset.subset(np.sort(rng.permutation(len(dataset))[:limit]))

    def _digits(self, name: str, split: str | None = None) -> ArrayBatches:
        info = ndata.domain_info(name)
        real = self.data_dir is not None and not info.generated and name != "optdigits"
        ds = ndata.domain(name, split, seed=self.data_seed, cache_dir=self.cache_dir,
                          data_dir=self.data_dir if real else None)
        images = ds.images
        if self.img_size != DIGITS_SIZE:
            from neurn.data._imaging import resize, to_uint8

            images = to_uint8(resize(images.astype(np.float32) / 255.0, self.img_size))
        return ArrayBatches(images, ds.labels)

    def _load_digits(self) -> dict:
        evaluation = {self.source: self._limit(self._digits(self.source, "test"),
                                               self.eval_limit)}
        generated = {self.source: False}
        for name in self.targets:
            evaluation[name] = self._limit(self._digits(name), self.eval_limit)
            generated[name] = ndata.domain_info(name).generated
        self.skipped: dict[str, dict[str, str]] = {}
        self.splits: dict[str, list[str]] = {}
        train = self._limit(self._digits(self.source, "train"), self.train_limit)
        return {"train": train, "train_parts": [len(train)],
                "val": self._limit(self._digits(self.source, "val"), self.eval_limit),
                "eval": evaluation, "generated": generated}

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

    def _load_folders(self) -> dict:
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

    @property
    def streams(self) -> bool:
        """True when batches are decoded from files (workers help)."""
        return self.folders and self.stream_images

    def input_stats(self) -> dict[str, tuple] | None:
        """The backbone-input constants for a folder study (measured on source-train
        images, see the module docstring); None for digits, whose constants are fixed
        (:data:`neurn.models.INPUT_STATS`)."""
        if not self.folders:
            return None
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
        """What makes the data of a run: goes into its settings hash."""
        info = {"img_size": self.img_size, "classes": list(self.classes)}
        if not self.folders:
            return info
        self.load()
        split_digest = hashlib.sha256(json.dumps(self.splits, sort_keys=True).encode())
        return {**info, "split": self._split_record(), "skip_bad_images": self.skip_bad_images,
                "files": self.fingerprints,
                "splits": split_digest.hexdigest()[:16], "input_stats": self.input_stats()}

    def describe(self) -> dict:
        """The study.json entry: kind, size, classes and (folders) the roots."""
        info = {"kind": "folders" if self.folders else "digits", "img_size": self.img_size,
                "classes": list(self.classes)}
        if self.folders:
            info["roots"] = {n: os.fspath(d.root) for n, d in self.domains.items()}
            info["split"] = self._split_record()
        return info

    def _split_record(self) -> dict:
        return {"holdout": self.holdout} if self.holdout_mode else self.split

    def counts(self) -> dict:
        """Images used: ``{source: {"train", "val", "test"}, target: n, ...}`` (after
        ``train_limit`` / ``eval_limit`` and skipped files); with several sources one
        entry each, its test 0 (they have no test split)."""
        loaded = self.load()
        train, val = loaded["train"], loaded["val"]
        parts = getattr(train, "parts", [train])
        vals = getattr(val, "parts", [val])
        sources = {name: {"train": len(t), "val": len(v),
                          "test": len(loaded["eval"].get(name, ()))}
                   for name, t, v in zip(self.sources, parts, vals)}
        return {**sources, **{t: len(loaded["eval"][t]) for t in self.targets}}

    def record(self) -> dict:
        """data.json: the class index, every split's files and counts, skipped files."""
        record = {**self.describe(), "source": self.source, "targets": self.targets,
                  "data_seed": self.data_seed, "counts": self.counts(),
                  "eval_limit": self.eval_limit, "train_limit": self.train_limit}
        if self.folders:
            record.update(skipped=self.skipped, splits=self.splits,
                          input_stats=self.input_stats(),
                          fingerprints=self.fingerprints)
        return record
