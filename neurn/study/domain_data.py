"""The data of one split of a study, in its two forms: what both share
(:class:`StudyData`) and the digit domains (:class:`DigitData`); the image folders are
:class:`~neurn.study.folder_data.FolderData`. Build either with
:func:`neurn.study.data.study_data`, which checks the arguments and picks the form (see
:mod:`neurn.study.data` for the protocol).
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from collections.abc import Sequence

import numpy as np

from archalign.utils.errors import UsageError
from neurn import data as ndata
from neurn.data._cache import PathLike
from neurn.data.batches import ArrayBatches
from neurn.data.folder import is_folder_spec
from neurn.results.guards import DIGIT_CLASSES

__all__ = ["DIGITS_SIZE", "DigitData", "FULLSCALE_TARGETS", "OFFLINE_TARGETS", "StudyData",
           "is_folder"]

OFFLINE_TARGETS = tuple(ndata.list_domains(source=False, offline=True))
# the paper's targets (MNIST -> MNIST-M, SVHN, USPS); add "syn" for the DG benchmark
FULLSCALE_TARGETS = ("mnistm", "svhn", "usps")
DIGITS_SIZE = 32


def is_folder(spec) -> bool:
    """A folder domain unless it names a registered digit domain (a ``mnist`` folder in
    the working directory does not turn the default study into a folder study)."""
    return is_folder_spec(spec) and str(spec) not in ndata.list_domains()


class StudyData:
    """What both forms of a split's data hold and do: the domains' names and classes,
    the image size, the limits and the seed; :meth:`load` (once), :meth:`counts`,
    :meth:`record` (``data.json``), :meth:`describe` (``study.json``) and
    :meth:`fingerprint` (in every run's settings hash).

    Parameters
    ----------
    img_size
        image side the models are built for.
    cache_dir
        the offline domain and decoded-image cache.
    data_seed
        seed of the splits, the subsets and the generated domains.
    eval_limit, train_limit
        at most this many images per domain and evaluation split / for training
        (a fixed subset; None: all).
    """

    folders: ClassVar[bool] = False  # image folders; digit domains otherwise
    holdout_mode: bool = False  # every training domain split by the holdout fraction
    streams: bool = False  # batches decoded from files (workers help)
    data_dir: Path | None = None  # the real digit datasets (full scale)
    sources: list[str]  # the training domains
    source: str  # their name in tables: the one source, or the sources joined by "+"
    targets: list[str]
    classes: tuple[str, ...]

    def __init__(self, *, img_size: int, cache_dir: PathLike | None, data_seed: int,
                 eval_limit: int | None, train_limit: int | None) -> None:
        self.img_size = int(img_size)
        self.cache_dir, self.data_seed = cache_dir, int(data_seed)
        self.eval_limit, self.train_limit = eval_limit, train_limit
        # per domain: the files left out (undecodable) and each split's files, once loaded
        self.skipped: dict[str, dict[str, str]] = {}
        self.splits: dict[str, list[str]] = {}
        self._loaded: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load(self) -> dict:
        """``{"train", "val": dataset, "train_parts": [sizes], "eval": {domain: dataset},
        "generated": {domain: bool}}`` (the source's test split is ``eval[source]``),
        loaded once."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> dict:
        raise NotImplementedError

    def _limit(self, dataset, limit: int | None):
        if limit is None or limit >= len(dataset):
            return dataset
        rng = np.random.default_rng([self.data_seed, 7])
        return dataset.subset(np.sort(rng.permutation(len(dataset))[:limit]))

    def input_stats(self) -> dict[str, tuple] | None:
        """The backbone-input constants measured on the data; None: the fixed ones
        (:data:`neurn.models.INPUT_STATS`)."""
        return None

    # ------------------------------------------------------------------ records
    def fingerprint(self) -> dict:
        """What makes the data of a run: goes into its settings hash."""
        return {"img_size": self.img_size, "classes": list(self.classes)}

    def describe(self) -> dict:
        """The study.json entry: kind, size and classes."""
        return {"kind": "folders" if self.folders else "digits", "img_size": self.img_size,
                "classes": list(self.classes)}

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
        """data.json: the class index, the domains, the seed, counts and limits."""
        return {**self.describe(), "source": self.source, "targets": self.targets,
                "data_seed": self.data_seed, "counts": self.counts(),
                "eval_limit": self.eval_limit, "train_limit": self.train_limit}


class DigitData(StudyData):
    """The digit domains: a registered source (``mnist``) with its fixed train / val /
    test split and registered targets, offline or (``data_dir``) the real datasets, held
    in memory; an ``img_size`` other than 32 resizes them once (bilinear, antialiased).

    Parameters
    ----------
    source
        a registered source domain.
    targets
        registered target domains (default: the offline targets; with
        ``data_dir`` the paper's).
    data_dir
        the folder of the real datasets.
    img_size
        image side (default 32).
    **limits
        ``cache_dir``, ``data_seed``, ``eval_limit``, ``train_limit``
        (:class:`StudyData`).
    """

    def __init__(self, source: str, targets: Sequence | None = None, *,
                 data_dir: PathLike | None = None, img_size: int | None = None,
                 **limits) -> None:
        super().__init__(img_size=DIGITS_SIZE if img_size is None else img_size, **limits)
        self.data_dir = Path(data_dir) if data_dir is not None else None
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
            if is_folder(name):
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

    def _load(self) -> dict:
        evaluation = {self.source: self._limit(self._digits(self.source, "test"),
                                               self.eval_limit)}
        generated = {self.source: False}
        for name in self.targets:
            evaluation[name] = self._limit(self._digits(name), self.eval_limit)
            generated[name] = ndata.domain_info(name).generated
        train = self._limit(self._digits(self.source, "train"), self.train_limit)
        return {"train": train, "train_parts": [len(train)],
                "val": self._limit(self._digits(self.source, "val"), self.eval_limit),
                "eval": evaluation, "generated": generated}
