"""The data of a study: its source and target domains, resolved, checked and split.

:func:`study_data` takes what the user named (registered digit domains, or image
folders: a path or ``folder:PATH``), does every check that needs no decoding, so a bad
name, a missing folder or differing class sets fail before the study writes anything,
and returns the data in one of two forms sharing :class:`~.domain_data.StudyData`;
their ``load()`` then reads the pixels and returns batch-indexed datasets
(:mod:`neurn.data.batches`):

* **digits** (:class:`~.domain_data.DigitData`, the embedded default): the offline or
  full-scale digit domains, their fixed train / val / test split, held in memory;
  ``img_size`` other than 32 resizes them once (bilinear, antialiased).
* **folders** (:class:`~.folder_data.FolderData`, DomainBed layout,
  :mod:`neurn.data.folder`): every file is decoded once to find the bad ones
  (:func:`~neurn.data.image_cache.check_images`, remembered in the cache); a bad file
  stops the study, naming it, unless ``skip_bad_images`` leaves it out (counted in
  ``data.json`` and ``summary.md``). The source is split by a seeded, stratified split
  (:mod:`neurn.data.splits`); targets are used whole. Images stream from disk through
  ``DataLoader`` workers, or come from the decoded uint8 memmap with ``cache_images``.
  The backbone's input constants (:data:`neurn.models.INPUT_STATS`'s role) are
  measured on up to ``STATS_IMAGES`` source-train images, never on a target.
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

``StudyData.record()`` is what ``data.json`` holds (class list, split sizes and
files, skipped files); ``StudyData.fingerprint()`` goes into every run's settings
hash, so a run is never resumed on other data.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Sequence

import torch

from archalign.utils.errors import UsageError
from neurn.data._cache import PathLike
from neurn.data.folder import DEFAULT_IMG_SIZE, FolderDomain, domains_from_root, probe_image_size
from neurn.data.splits import (
    DEFAULT_FRACTIONS, DEFAULT_HOLDOUT, check_fractions, check_holdout)
from neurn.study.domain_data import (
    DIGITS_SIZE, FULLSCALE_TARGETS, OFFLINE_TARGETS, DigitData, StudyData, is_folder)
from neurn.study.folder_data import STATS_IMAGES, FolderData

__all__ = ["DIGITS_SIZE", "DigitData", "FULLSCALE_TARGETS", "FolderData", "OFFLINE_TARGETS",
           "STATS_IMAGES", "StudyData", "batch_loader", "leave_out_groups", "study_data",
           "study_groups"]


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


def study_groups(source, targets, *, dataset: PathLike | None = None,
                 test_envs: Sequence | None = None, img_size: int | None = None,
                 default_size: int | None = None, data_seed: int = 0,
                 **options) -> dict[str | None, StudyData]:
    """The data of each split of a study, ``{group: data}``: one split named None
    (``source``, ``targets``), or DomainBed's held-out groups of ``dataset``
    (:func:`leave_out_groups`), which share one image size and decode a folder domain
    once whatever groups hold it. ``options``: the rest of :func:`study_data`'s."""
    splits = _splits(source, targets, dataset, test_envs)
    if default_size is None and dataset is not None and img_size is None:
        # one size for every group: the images' own, over all the root's domains
        root = {d.name: d for sources, held in splits.values() for d in (*sources, *held)}
        default_size = min(DEFAULT_IMG_SIZE, probe_image_size(list(root.values()),
                                                              seed=data_seed))
    decoded: dict = {}
    return {group: study_data(sources, group_targets, img_size=img_size,
                              default_size=default_size, data_seed=data_seed,
                              force_holdout=dataset is not None, decoded=decoded, **options)
            for group, (sources, group_targets) in splits.items()}


def _splits(source, targets, dataset, test_envs) -> dict[str | None, tuple]:
    """``{group: (sources, targets)}``: one split named None, or DomainBed's held-out
    groups of ``dataset``."""
    if dataset is None:
        if test_envs is not None:
            raise UsageError("test envs name domains of a dataset root; give it "
                             "(--dataset ROOT) or use --source / --targets")
        return {None: ("mnist" if source is None else source, targets)}
    if targets is not None or source is not None:
        raise UsageError("--dataset takes its domains from ROOT (held out with "
                         "--test-envs); drop --source / --targets")
    if test_envs is None:
        raise UsageError("--dataset needs the held-out domains: --test-envs NAME or "
                         "INDEX ..., or --test-envs all for every leave-one-domain-out "
                         "split")
    return leave_out_groups(dataset, test_envs)


def study_data(source: PathLike | FolderDomain | Sequence = "mnist",
               targets: Sequence | None = None, *,
               data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
               data_seed: int = 0, eval_limit: int | None = None,
               train_limit: int | None = None, img_size: int | None = None,
               split: dict[str, float] | None = None, skip_bad_images: bool = False,
               cache_images: bool = False, stream_images: bool = False,
               threads: int | None = None, holdout: float | None = None,
               force_holdout: bool = False, default_size: int | None = None,
               decoded: dict | None = None) -> StudyData:
    """The data of a split: :class:`~.domain_data.DigitData`, or
    :class:`~.folder_data.FolderData` when the source is an image folder; every
    argument checked first (see the module docstring).

    Parameters
    ----------
    source
        a registered digit domain (``mnist``) or an image folder (several folders
        train together).
    targets
        registered digit targets, or image folders (default: the offline
        digit targets; with ``data_dir`` the paper's).
    data_dir
        the folder of the real digit datasets.
    cache_dir
        the offline domain and decoded-image cache.
    data_seed
        seed of the splits, the subsets and the generated domains.
    eval_limit, train_limit
        at most this many images per domain and evaluation split / for training.
    img_size
        image side (default 32 for digits; for folders ``default_size``, else the
        images' own up to 224).
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

    Returns
    -------
    StudyData
        the digit or the folder form.
    """
    for label, value in (("eval_limit", eval_limit), ("train_limit", train_limit)):
        if value is not None and (value != int(value) or value < 1):
            raise UsageError(f"{label} must be an integer >= 1 or None, got {value!r}")
    if data_seed != int(data_seed) or data_seed < 0:  # numpy seeds are >= 0
        raise UsageError(f"data_seed must be an integer >= 0, got {data_seed!r}")
    if cache_images and stream_images:
        raise UsageError("cache_images and stream_images exclude each other (--cache-"
                         "images keeps decoded pixels, --stream-images none); pick one")
    sources = ([source] if isinstance(source, (str, os.PathLike, FolderDomain))
               else list(source))
    if not sources:
        raise UsageError("give a source domain")
    folders = isinstance(sources[0], FolderDomain) or is_folder(sources[0])
    holdout_mode = len(sources) > 1 or bool(force_holdout)
    if holdout is not None and not holdout_mode:
        raise UsageError("the holdout fraction applies to several source domains or "
                         "--dataset; one source is split by --val-fraction / "
                         "--test-fraction")
    holdout = float(DEFAULT_HOLDOUT if holdout is None else holdout)
    check_holdout(holdout)
    if img_size is not None and (int(img_size) != img_size or img_size < 8):
        raise UsageError(f"img_size must be an integer >= 8, got {img_size!r}")
    unknown = set(split or {}) - set(DEFAULT_FRACTIONS)
    if unknown:
        raise UsageError(f"split takes the fractions {list(DEFAULT_FRACTIONS)}, got "
                         f"{sorted(unknown)}")
    if split and holdout_mode:
        raise UsageError("val / test fractions split one source; with several source "
                         "domains each is split by the holdout fraction "
                         "(--holdout-fraction)")
    fractions = {**DEFAULT_FRACTIONS, **(split or {})}
    check_fractions(**fractions)
    limits = dict(cache_dir=cache_dir, data_seed=int(data_seed), eval_limit=eval_limit,
                  train_limit=train_limit)
    if folders:
        if data_dir is not None:
            raise UsageError("data_dir (--data-dir) holds the real digit datasets; image-"
                             "folder domains are given by their paths, drop it")
        return FolderData(sources, targets, img_size=img_size, split=fractions,
                          holdout=holdout, holdout_mode=holdout_mode,
                          skip_bad_images=skip_bad_images, cache_images=cache_images,
                          stream_images=stream_images, threads=threads,
                          default_size=default_size, decoded=decoded, **limits)
    if split:
        raise UsageError("split fractions apply to image-folder sources; the digit "
                         "source has a fixed 4,000 / 500 / 500 split")
    if len(sources) > 1:
        raise UsageError("several sources are for image folders; the digit study "
                         "trains on one source (mnist)")
    return DigitData(sources[0], targets, data_dir=data_dir, img_size=img_size, **limits)
