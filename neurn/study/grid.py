"""``Study``: the grid of training runs of the NeuRN experiment.

A run is (model, variant, seed), and with DomainBed's leave-one-domain-out groups
(``dataset``, ``test_envs``) also a held-out group. Protocol (DomainBed's
training-domain validation):

* train on the source's ``train`` split only (with several sources, their train parts
  in balanced batches); after every epoch evaluate on the ``val`` split (with several
  sources, their holdouts) and keep the best checkpoint (highest val top-1, the earliest
  on ties); target data is never seen before the final evaluation;
* evaluate that checkpoint on the source ``test`` split (one source) and on every target
  domain.

How (one module each):

* :mod:`.settings`: the arguments are checked and every model planned before anything
  is written; each run records a hash of its settings, and resuming with other settings
  is refused, before anything is written, so the refusal changes nothing.
* :mod:`.config`: how every run trains (:class:`~.config.TrainConfig`: budget, optimiser,
  device and precision, augmentation, threads and workers), built from the arguments.
* :mod:`.data`: the source and target domains, resolved, checked and split, one
  :class:`~.domain_data.StudyData` per split (``groups``; ``data`` is the first):
  digits (:mod:`.domain_data`) or image folders (:mod:`.folder_data`).
* :mod:`.verify`: a killed study resumes from the last epoch of the unfinished run;
  finished runs (``result.json``) are skipped. Every file read back is verified first,
  against the SHA-256 it was written with: a result.json, checkpoint.pt or best.pt that
  does not match it, has none (an earlier version's) or holds values out of range is
  reported (``DamagedRunWarning``) and its run retrained.
* :mod:`.train` (with :mod:`.engine` and :mod:`.checkpoints`): one run, seeded, with a
  checkpoint after every epoch. A NaN / inf loss (or a runtime error such as CUDA out of
  memory) stops that run with ``status="error"`` and the message in its result; the
  others go on, and the failed run is listed under the table. Rerunning does not retry
  it (delete its folder to do so). A write that fails (a full disk) is an ``OSError``
  naming the file: it stops the study instead of failing the run, so the run is retried
  when rerun.
* :mod:`.torch_settings`: threads, determinism and ``cudnn.benchmark``, restored when
  ``run()`` returns.
* :mod:`.claims`: each run is claimed before it trains, so several processes (shards,
  a second terminal, Dask workers) share one ``out_dir`` without training a run twice;
  ``study.json`` names the shared settings, checked and written under the folder's lock
  (``study.lock``), refusing a process of other settings.
* :mod:`.sweep`: ``run(client=...)`` makes each run one task on a Dask cluster.
* On stderr: tqdm bars of the runs and of each run's steps where they render (a
  terminal, a notebook); with ``log``, a line as each run starts and finishes and,
  where no bar is drawn (a log file), one per validation round
  (:func:`~.train.eval_line`).
* :mod:`neurn.results`: the tables and plots written at the end.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_write_text

from neurn.models import check_variant, parse_variant, plan_model
from neurn.models.pretrained import (
    SCRATCH, Init, Pretrained, load_pretrained, pretrained_input_size, refuse_tags)
from neurn.results import StudyResults, write_outputs
from neurn.study.claims import ClaimLost, check_held, claim_run, lock_study
from neurn.study.config import TrainConfig
from neurn.study.data import StudyData, study_groups
from neurn.study.engine import amp_dtype_for
from neurn.study.settings import (
    SETTINGS_VERSION, PathLike, Run, check_budget, check_optimisation, check_out_dir, check_seeds,
    check_shard, check_workers, load_models, refuse_duplicates, resolve_device, run_settings,
    settings_digest, shared_settings)
from neurn.study.train import eval_loader, finish_line, log_line, progress_bar, round_text, train_run
from neurn.study.verify import DamagedRunWarning, Found, check_outputs, find_result, find_run

__all__ = ["Study", "StudyInterrupted"]


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Study.run`; the message says what was kept and how to resume."""


class Study:
    """Train ``models`` x ``variants`` x ``seeds`` on source domains, test on targets;
    with ``dataset``, x DomainBed's leave-one-domain-out groups.

    Parameters
    ----------
    models
        a ``shortlist.json`` path (from ``archalign shortlist``), a
        ``Shortlist`` or timm / built-in (``convnet``) model names.
    source
        source domain (default ``mnist``), or image folders (a path or
        ``folder:PATH``, DomainBed's ``<domain>/<class>/<image>``; a list trains on
        several, each split by ``holdout_fraction``); trained on its ``train``
        split, model selection on its ``val`` split.
    targets
        target domains (default: the offline targets, or the paper's
        ``mnistm``, ``svhn``, ``usps`` with ``data_dir``); image folders when the
        source is one. See :mod:`neurn.study.data`.
    variants
        ``"baseline"``, ``"neurn:k=5"``, ``"sobel"``, ``"randconv"``, ... (see
        :func:`neurn.models.parse_variant`).
    seeds
        one run per seed.
    epochs / steps
        budget, passes over the train split or optimizer steps
        (give one; ``evals`` validation points with ``steps``).
    batch_size, lr, weight_decay, optimizer (``"adamw"`` | ``"sgd"``)
        training;
        lr / weight_decay default to 1e-3 / 0.05 from scratch, 5e-5 / 0 pretrained.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    out_dir
        where runs, tables and plots go; rerunning resumes.
    data_dir
        folder of the real datasets (full scale); offline domains otherwise.
    cache_dir
        offline domain cache (default ``$NEURN_CACHE_DIR``).
    eval_limit
        evaluate on at most this many images per domain and split (a
        fixed subset shared by all runs); None = all.
    train_limit
        train on at most this many source images (fixed subset; per
        training domain with several).
    threads
        CPU threads (default: every CPU this process may use; the CLI passes
        :func:`~neurn.study.torch_settings.pick_threads`'s count).
    num_workers
        DataLoader workers. Default: ``STREAM_WORKERS`` (at most the CPU
        count) when images stream from files, else 0: data in memory make a batch
        one index operation, and workers would only add inter-process copies.
        Workers only decode (no random state), so results do not depend on
        their number. On CUDA batches are pinned and copied ``non_blocking``.
    img_size
        image side (default 32 for digits; for image folders the images' own,
        at most 224, or the pretrained input size); models are built for it.
    split
        ``{"val": f, "test": f}``, fractions of an image-folder source (0.1 each).
    skip_bad_images
        leave out image files that cannot be decoded (counted in
        ``data.json`` and ``summary.md``) instead of stopping.
    cache_images
        decode image folders into a uint8 memmap in ``cache_dir`` (default:
        once per study, in memory when they fit, else that memmap).
    stream_images
        decode image files on every access instead (DataLoader workers).
    augment
        random resized crop + flip of source batches (:mod:`neurn.fronts.augment`);
        default on for image folders, off for digits.
    data_seed
        seed of the offline data split and generated targets.
    progress
        tqdm bars for runs and steps, drawn where they render (a terminal, a
        notebook); off where they do not (stderr piped to a log).
    log
        lines on stderr: each run started and finished, and where no bar is drawn
        one per validation round (run, step, training loss, source-validation top-1).
        Default: as ``progress``; ``neurn run`` always logs, and ``--no-progress``
        only turns the bars off.
    keep_weights
        keep ``best.pt`` (the selected weights) of each run.
    deterministic
        also call ``torch.use_deterministic_algorithms(True,
        warn_only=True)`` during the study (slower; CPU runs repeat without it).
    dataset, test_envs
        a DomainBed root and its held-out domains (names or indices,
        or ``["all"]``: every leave-one-domain-out split as a group of runs); see
        :func:`neurn.study.data.leave_out_groups`. Excludes ``source`` / ``targets``.
    holdout_fraction
        of each training domain, for validation, with several sources
        or ``dataset`` (default 0.2).
    pretrained
        start timm backbones from their pretrained weights
        (:mod:`neurn.models.pretrained`); ``weights``: a local file or folder of
        them (implies ``pretrained``).
    shard
        ``(i, n)``: this process trains the i-th of n slices of the grid
        (:meth:`runs`); other processes, on the same ``out_dir``, train the rest.
    """

    def __init__(self, models, *, source=None, targets: Sequence[str] | None = None,
                 variants: Sequence[str] = ("baseline", "neurn"), seeds: Sequence[int] = (0,),
                 epochs: int | None = None, steps: int | None = None, evals: int = 5,
                 batch_size: int = 64, lr: float | None = None,
                 weight_decay: float | None = None,
                 optimizer: str = "adamw", device: str = "auto",
                 out_dir: PathLike = "neurn-study", data_dir: PathLike | None = None,
                 cache_dir: PathLike | None = None, eval_limit: int | None = None,
                 train_limit: int | None = None, threads: int | None = None,
                 num_workers: int | None = None, data_seed: int = 0, progress: bool = True,
                 log: bool | None = None, keep_weights: bool = True, deterministic: bool = False,
                 img_size: int | None = None, split: dict[str, float] | None = None,
                 skip_bad_images: bool = False, cache_images: bool = False,
                 stream_images: bool = False, augment: bool | None = None,
                 dataset: PathLike | None = None, test_envs: Sequence | None = None,
                 holdout_fraction: float | None = None, pretrained: bool = False,
                 weights: PathLike | None = None, shard: tuple[int, int] = (0, 1)) -> None:
        # what a Dask worker needs to build the same study (names and paths, no data)
        self.spec = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.shard = check_shard(shard)
        self.models = load_models(models)
        self.pretrained = bool(pretrained) or weights is not None
        if not self.pretrained:
            refuse_tags(self.models)
        self.variants = [parse_variant(v) for v in variants]
        if not self.variants:
            raise UsageError("give at least one variant ('baseline', 'neurn')")
        refuse_duplicates(variants, self.variants)
        self.seeds = check_seeds(seeds)
        epochs = check_budget(epochs, steps, evals, batch_size)
        lr, weight_decay = check_optimisation(lr, weight_decay, threads, optimizer,
                                              pretrained=self.pretrained)
        device = resolve_device(device)
        self.out_dir = Path(out_dir)
        check_out_dir(self.out_dir)
        sizes = [pretrained_input_size(m) for m in self.models] if self.pretrained else []
        self.groups = study_groups(
            source, targets, dataset=dataset, test_envs=test_envs, img_size=img_size,
            default_size=max((s for s in sizes if s), default=None), data_seed=data_seed,
            data_dir=data_dir, cache_dir=cache_dir, eval_limit=eval_limit,
            train_limit=train_limit, split=split, skip_bad_images=skip_bad_images,
            cache_images=cache_images, stream_images=stream_images, threads=threads,
            holdout=holdout_fraction)
        self.dataset = Path(dataset) if dataset is not None else None
        # what every split shares (kind, image size, classes) is read from the first
        self.data = next(iter(self.groups.values()))
        self.config = TrainConfig(
            epochs=epochs, steps=steps, evals=int(evals), batch_size=int(batch_size), lr=lr,
            weight_decay=weight_decay, optimizer=optimizer, device=device,
            augment=self.data.folders if augment is None else bool(augment),
            num_workers=check_workers(num_workers, streams=self.data.streams),
            threads=threads, deterministic=bool(deterministic),
            amp_dtype=amp_dtype_for(device), channels_last=device.type == "cuda")
        self.progress = progress
        self.log = progress if log is None else log
        self.keep_weights = keep_weights
        # (run key, epoch, epochs) of the newest checkpoint, for the Ctrl-C message
        self._checkpointed: tuple | None = None
        for variant in self.variants:  # e.g. neurn:k=99 on 32 px images
            check_variant(variant, self.data.img_size)
        domains = max(len(data.sources) for data in self.groups.values())
        if self.config.batch_size < domains:  # a balanced batch takes an image of each
            raise UsageError(f"batch size {self.config.batch_size} cannot hold an image of "
                             f"each of the {domains} training domains; raise --batch-size")
        # cheap (meta device) and fails fast on unknown names / unusable architectures; a
        # pretrained backbone runs at its pretrained input size unless img_size is given
        self.plans = {name: plan_model(name, img_size=self.data.img_size,
                                       num_classes=self.data.num_classes,
                                       pretrained_size=size if img_size is None else None)
                      for name, size in zip(self.models, sizes or [None] * len(self.models))}
        # loaded once and shared by the runs; a missing or wrong file fails here
        self.weights: dict[str, Pretrained] = {
            name: load_pretrained(name, num_classes=self.data.num_classes, weights=weights,
                                  create_kwargs=self.plans[name].create_kwargs)
            for name in self.models} if self.pretrained else {}

    def group_data(self, run: Run) -> StudyData:
        """The data of ``run``'s split (its held-out group)."""
        return self.groups[run.group]

    def init(self, model: str) -> Init:
        """How ``model``'s backbone starts: from scratch, or the pretrained weights."""
        return self.weights[model].init if self.pretrained else SCRATCH

    # ------------------------------------------------------------------ grid
    def grid(self) -> list[Run]:
        return [Run(m, v, s, g) for g in self.groups for m in self.models
                for v in self.variants for s in self.seeds]

    def _settings(self, run: Run) -> dict:
        return run_settings(run, self.config, self.group_data(run), plan=self.plans[run.model],
                            init=self.init(run.model))

    # ------------------------------------------------------------------ data
    def load_data(self) -> dict[str, object]:
        """Load every group's splits and domains now (missing or bad files fail before
        training); returns the first group's."""
        for data in self.groups.values():
            data.load()
        return self.data.load()

    def _eval_loader(self, dataset):
        return eval_loader(self.config, dataset)

    # ------------------------------------------------------------------ running
    def runs(self) -> list[Run]:
        """The runs this process works on: the grid, or its shard ``i`` of ``n`` (every
        n-th run from the i-th, so each shard gets a mix of models)."""
        index, count = self.shard
        return self.grid()[index::count]

    def run(self, *, client=None) -> StudyResults:
        """Run every unfinished run of :meth:`runs`, then write tables and plots of
        every finished run of the grid (other processes' and shards' included).

        Every path the study writes and every run folder already in ``out_dir`` are
        verified before the first write, and the folder is locked before it
        (:func:`~.claims.lock_study`), so a refusal (a run or a study.json of other
        settings, a live process of other settings, a folder where a file belongs) changes
        nothing on disk. A run another live process has claimed is left to it
        (:mod:`.claims`). ``client``: a ``dask.distributed.Client``; each run is then
        one task (:mod:`.sweep`). Ctrl-C raises :class:`StudyInterrupted`, whose
        message says what was kept."""
        self.load_data()
        runs = self.runs()
        check_outputs(self.out_dir, [run.key for run in runs])
        # verified now, so a refusal comes before any write; only the results are kept,
        # since a run is read again once claimed (other processes may have moved it on)
        finished = {run.key: self._found(run).result for run in runs}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_study(self.out_dir, self.describe(), self.fingerprint())
        try:
            record = (self.data.record() if list(self.groups) == [None] else
                      {"groups": {g: d.record() for g, d in self.groups.items()}})
            atomic_write_text(self.out_dir / "data.json", json.dumps(record, indent=1))
            self._checkpointed = None
            if client is None:
                self._run_here(runs, finished)
            else:
                self._run_on(client, runs, finished)
            return self.results(echo=self.progress)
        finally:
            if lock is not None:
                lock.release()

    def _run_on(self, client, runs: list[Run], finished: dict[str, dict | None]) -> None:
        """Train the unfinished ``runs`` as tasks on the Dask cluster of ``client``."""
        from neurn.study.sweep import run_on_dask

        pending = [r for r in runs if finished[r.key] is None]
        try:
            done = run_on_dask(self, client, pending, echo=self._echo)
        except KeyboardInterrupt:
            self.results(plots=False, echo=False)
            raise StudyInterrupted(f"the cluster's tasks were cancelled; finished runs "
                                   f"and checkpoints are kept in {self.out_dir / 'runs'}; "
                                   f"rerun the same command to resume") from None
        self._echo(f"{len(done)} of {len(pending)} runs trained on the cluster")

    def _run_here(self, runs: list[Run], finished: dict[str, dict | None]) -> None:
        """Train ``runs`` one after another in this process (those it can claim)."""
        done = 0
        with self.config.torch_settings():
            bar = progress_bar(runs, desc="runs", unit="run", show=self.progress)
            try:
                for run in bar:
                    bar.set_postfix_str(run.key)
                    done += self.train_claimed(run, finished[run.key]) is not None
            except KeyboardInterrupt:
                self.results(plots=False, echo=False)
                raise StudyInterrupted(self._kept(done, len(runs))) from None
            finally:
                bar.close()

    def train_claimed(self, run: Run, result: dict | None = None) -> dict | None:
        """``run``'s result: ``result`` (what the caller verified it holds), or the one
        found or trained here once this process has claimed the run; None when another
        live process holds it (or took it over while it trained)."""
        if result is not None:
            return result
        claim = claim_run(self.out_dir / "runs" / run.key)
        if claim is None:
            self._echo(f"{run.key}: claimed by another process, left to it")
            return None
        with claim:
            with warnings.catch_warnings():  # damage found by the first look was reported
                warnings.simplefilter("ignore", DamagedRunWarning)
                found = self._found(run)  # another process may have moved it on
            if found.result is not None:
                return found.result
            self._echo(f"{run.key}: started")
            started = time.perf_counter()
            try:
                result = self.run_one(run, found, on_checkpoint=lambda mark: (
                    self._mark_checkpoint(mark), check_held(claim)))
            except ClaimLost as lost:
                self._echo(f"{lost}; left to it")
                return None
        self._echo(finish_line(run.key, result, time.perf_counter() - started))
        return result

    def _echo(self, line: str) -> None:
        if self.log:
            log_line(line)

    def results(self, *, plots: bool = True, echo: bool = False) -> StudyResults:
        """Tables (and plots) of every run of the grid found finished in ``out_dir``,
        whoever trained it; the runs not finished yet are listed in ``pending``."""
        finished, pending = [], []
        for run in self.grid():
            result = self._finished(run)
            (finished if result is not None else pending).append(result or run.key)
        return write_outputs(finished, self.out_dir, plots=plots and bool(finished),
                             baseline=self._baseline_name(), echo=echo, pending=pending)

    def _kept(self, finished: int, runs: int) -> str:
        text = f"{finished} of {runs} runs finished, kept in {self.out_dir / 'runs'}"
        if self._checkpointed is not None:
            key, epoch, epochs = self._checkpointed
            text += f"; {key} resumes after {round_text(self.config, epoch, epochs)}"
        return text + "; rerun the same command to resume"

    def _finished(self, run: Run) -> dict | None:
        """``run``'s verified result of these settings, or None; reads no checkpoint, and
        damage is left for the process that trains the run to report."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedRunWarning)
            return find_result(self.out_dir / "runs" / run.key,
                               settings_digest(self._settings(run)))

    def _found(self, run: Run) -> Found:
        """What ``runs/<run>`` holds, verified before it is trusted (:mod:`.verify`)."""
        settings = self._settings(run)
        return find_run(self.out_dir / "runs" / run.key, settings, settings_digest(settings),
                        keep_weights=self.keep_weights)

    def _baseline_name(self) -> str | None:
        names = [v.name for v in self.variants if v.kind == "baseline"]
        return names[0] if names else None

    def fingerprint(self) -> str:
        """A digest of the settings every run of this study shares (what a second
        process on the same ``out_dir`` must match to cooperate): not the models,
        variants, seeds and shard, which any process may add to."""
        shared = {k: v for k, v in self.describe().items()
                  if k not in ("models", "variants", "seeds", "plans", "init", "versions",
                               "workers", "device")}
        return settings_digest({**shared, "pretrained": self.pretrained,
                                "version": SETTINGS_VERSION})

    def describe(self) -> dict:
        """study.json: the grid, the shared settings, the data, plans and versions."""
        return {"models": self.models, "variants": [v.name for v in self.variants],
                "seeds": self.seeds, **shared_settings(self.config, self.data, device=True),
                "data": self.data.describe(), "augment": self.config.augment,
                "workers": self.config.num_workers,
                "plans": {m: p.to_dict() for m, p in self.plans.items()},
                "init": {m: self.init(m).to_dict() for m in self.models},
                **({"dataset": str(self.dataset), "groups": {
                    g: {"sources": d.sources, "targets": d.targets}
                    for g, d in self.groups.items()}} if self.dataset is not None else {}),
                "versions": _versions()}

    def run_one(self, run: Run, found: Found | None = None, *,
                on_checkpoint=None) -> dict:
        """Train, select and evaluate one run (or return its finished result), without
        claiming it (:meth:`train_claimed` does). ``found``: what :meth:`run` verified in
        the run's folder (verified here if None); ``on_checkpoint``: called with
        ``(run key, epoch, epochs)`` after each checkpoint."""
        self.load_data()
        found = found if found is not None else self._found(run)
        if found.result is not None:
            return found.result
        return train_run(self.config, self.group_data(run), run, found,
                         plan=self.plans[run.model], pretrained=self.weights.get(run.model),
                         run_dir=self.out_dir / "runs" / run.key, keep_weights=self.keep_weights,
                         progress=self.progress, log=self.log,
                         on_checkpoint=on_checkpoint or self._mark_checkpoint)

    def _mark_checkpoint(self, mark: tuple | None) -> None:
        self._checkpointed = mark


def _versions() -> dict:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__}
