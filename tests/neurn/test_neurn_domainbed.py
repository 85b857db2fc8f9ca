"""DomainBed's leave-one-domain-out protocol: ``neurn run --dataset ROOT --test-envs``,
the holdout split of the training domains, balanced batches, the held-out table, the
refusals, several ``--source`` folders, and resuming.

One generated dataset serves the module: three domains (``art``, ``cartoon``,
``photo``), each its own colour tint, three classes of 16 px PNGs with uneven class
counts (so ``round(n * 0.2)`` rounds both ways), and one tiny ``--test-envs all`` study
(convnet and timm's ``test_resnet``, baseline and neurn, 2 steps) that most tests read.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from neurn import Study
from neurn.cli import main
from neurn.data.batches import ArrayBatches, ConcatBatches
from neurn.data.folder import FolderDomain, decode
from neurn.results.tables import SOURCE_VAL, TARGETS_MEAN
from neurn.study.train import epoch_batches

CLASSES = ("circle", "cross", "square")
# domain: (RGB tint, images per class)
DOMAINS = {"art": ((1.0, 0.35, 0.35), (10, 9, 7)),
           "cartoon": ((0.35, 1.0, 0.35), (8, 10, 10)),
           "photo": ((0.35, 0.35, 1.0), (10, 7, 9))}
MODELS = ("convnet", "test_resnet")
VARIANTS = ("baseline", "neurn")
HOLDOUT = 0.2


def _image(cls: int, i: int, tint, rng) -> np.ndarray:
    """A 16 px class shape (a disc, a cross, a square) on noise, tinted per domain."""
    yy, xx = np.mgrid[:16, :16] / 16.0
    if cls == 0:
        mask = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.08
    elif cls == 1:
        mask = (abs(xx - 0.5) < 0.12) | (abs(yy - 0.5) < 0.12)
    else:
        mask = (abs(xx - 0.5) < 0.3) & (abs(yy - 0.5) < 0.3)
    pixels = rng.integers(0, 50, (16, 16, 3)) + mask[..., None] * (150 + 5 * i)
    return np.clip(pixels * np.asarray(tint), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """ROOT/<domain>/<class>/<image>.png"""
    base = tmp_path_factory.mktemp("dataset") / "ROOT"
    rng = np.random.default_rng(0)
    for domain, (tint, counts) in DOMAINS.items():
        for c, (name, n) in enumerate(zip(CLASSES, counts)):
            (base / domain / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(_image(c, i, tint, rng)).save(base / domain / name / f"{i:02d}.png")
    return base


def _common(cache: Path):
    return ["--img-size", "32", "--steps", "2", "--evals", "1", "--batch-size", "6",
            "--device", "cpu", "--threads", "1", "--no-progress", "--no-weights",
            "--cache-dir", str(cache)]


@pytest.fixture(scope="module")
def loo(root, tmp_path_factory):
    """The ``--test-envs all`` study, run once: its args, exit code, stdout and folder."""
    base = tmp_path_factory.mktemp("loo")
    out = base / "study"
    args = (["run", *MODELS, "--variants", *VARIANTS, "--dataset", str(root),
             "--test-envs", "all"] + _common(base / "cache") + ["--out", str(out)])
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(args)
    return SimpleNamespace(args=args, rc=rc, stdout=stdout.getvalue(), stderr=stderr.getvalue(),
                           out=out, data=json.loads((out / "data.json").read_text())
                           if (out / "data.json").exists() else None)


def _results(out: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "runs").glob("*/result.json")}


def _all_files(root: Path, domain: str) -> list:
    return list(FolderDomain(root / domain).files)


# ---------------------------------------------------------------------- 1. the groups
def test_test_envs_all_holds_out_each_domain_in_its_own_group(loo, root):
    assert loo.rc == 0, loo.stderr
    names = list(DOMAINS)
    expected = {f"{m}__{v}__seed0__test-{d}" for m in MODELS for v in VARIANTS for d in names}
    assert {p.name for p in (loo.out / "runs").iterdir()} == expected
    assert set(loo.data) == {"groups"} and set(loo.data["groups"]) == set(names)
    for key, result in _results(loo.out).items():
        held = key.rsplit("__test-", 1)[1]
        others = [d for d in names if d != held]
        assert result["status"] == "ok" and result["group"] == held
        # evaluated on the held-out domain only, as a target; no source test split
        assert set(result["metrics"]) == {held}
        metric = result["metrics"][held]
        assert metric["role"] == "target" and metric["n"] == len(_all_files(root, held))
        assert result["settings"]["sources"] == others
        assert result["settings"]["targets"] == [held] and result["settings"]["group"] == held
        counts = result["counts"]
        assert counts[held] == len(_all_files(root, held))
        for o in others:
            assert counts[o]["test"] == 0
            assert counts[o]["train"] + counts[o]["val"] == len(_all_files(root, o))
    for held, record in loo.data["groups"].items():
        others = [d for d in names if d != held]
        assert record["targets"] == [held] and record["source"] == "+".join(others)
        # the held-out domain has no split: none of its files trains or validates
        assert set(record["splits"]) == {f"{o}/{part}" for o in others
                                         for part in ("train", "val")}
        assert not any(k.startswith(f"{held}/") for k in record["splits"])
        assert record["split"] == {"holdout": HOLDOUT}


def test_the_training_pixels_come_from_the_training_domains_only(root, tmp_path):
    """The group's train / val datasets are exactly the split files of the training
    domains, decoded: no held-out (differently tinted) image gets in."""
    study = Study(["test_resnet"], variants=["baseline"], dataset=root, test_envs=["1"],
                  img_size=32, steps=2, evals=1, device="cpu", threads=1,
                  cache_dir=tmp_path / "cache", out_dir=tmp_path / "api", progress=False)
    assert list(study.groups) == ["cartoon"]
    assert [run.key for run in study.grid()] == ["test_resnet__baseline__seed0__test-cartoon"]
    data = study.groups["cartoon"]
    assert data.sources == ["art", "photo"] and data.targets == ["cartoon"]
    loaded = data.load()
    assert isinstance(loaded["train"], ConcatBatches) and isinstance(loaded["val"], ConcatBatches)
    for key in ("train", "val"):
        files = [(d, f) for d in ("art", "photo") for f in data.splits[f"{d}/{key}"]]
        assert len(loaded[key]) == len(files)
        if key == "train":
            assert loaded["train_parts"] == [len(data.splits[f"{d}/train"])
                                             for d in ("art", "photo")]
        images, labels = loaded[key][np.arange(len(files))]
        expected = np.stack([decode(root / d / f, 32) for d, f in files])
        assert np.array_equal(images.numpy(), expected)
        assert labels.tolist() == [CLASSES.index(f.split("/")[0]) for _, f in files]
    assert not (tmp_path / "api").exists()  # building and loading write nothing


# ---------------------------------------------------------------------- 2. holdout split
def test_holdout_split_is_disjoint_complete_stratified_and_the_same_everywhere(loo, root,
                                                                               tmp_path):
    val_of: dict = {}
    for held, record in loo.data["groups"].items():
        for domain in DOMAINS:
            if domain == held:
                continue
            train, val = record["splits"][f"{domain}/train"], record["splits"][f"{domain}/val"]
            assert len(set(train)) == len(train) and len(set(val)) == len(val)
            assert not set(train) & set(val)
            assert sorted(train + val) == sorted(_all_files(root, domain))
            for c, n in zip(CLASSES, DOMAINS[domain][1]):
                assert sum(f.split("/")[0] == c for f in val) == round(n * HOLDOUT), (domain, c)
            # a domain keeps one holdout in every group it trains in
            val_of.setdefault(domain, val)
            assert val == val_of[domain], (domain, held)
    assert set(val_of) == set(DOMAINS)
    # every model and variant of a group ran on the split data.json records
    digests: dict = {}
    for key, result in _results(loo.out).items():
        splits = loo.data["groups"][result["group"]]["splits"]
        recorded = hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()[:16]
        assert result["settings"]["data"]["splits"] == recorded, key
        digests.setdefault(result["group"], set()).add(result["settings"]["data"]["splits"])
    assert all(len(d) == 1 for d in digests.values()) and len(digests) == 3
    # another study (other model and variant, one group held out by name) splits alike
    other = Study(["convnet"], variants=["neurn:k=5"], dataset=root, test_envs=["photo"],
                  img_size=32, steps=2, evals=1, device="cpu", threads=1,
                  cache_dir=tmp_path / "cache", out_dir=tmp_path / "o")
    assert other.groups["photo"].record()["splits"] == loo.data["groups"]["photo"]["splits"]
    # --holdout-fraction changes the per-class val count, still round(n * f)
    wider = Study(["convnet"], variants=["baseline"], dataset=root, test_envs=["photo"],
                  holdout_fraction=0.3, img_size=32, steps=2, evals=1, device="cpu",
                  threads=1, cache_dir=tmp_path / "cache", out_dir=tmp_path / "o")
    splits = wider.groups["photo"].record()["splits"]
    for domain in ("art", "cartoon"):
        for c, n in zip(CLASSES, DOMAINS[domain][1]):
            assert sum(f.split("/")[0] == c for f in splits[f"{domain}/val"]) == round(n * 0.3)
        assert sorted(splits[f"{domain}/train"] + splits[f"{domain}/val"]) == sorted(
            _all_files(root, domain))


# ---------------------------------------------------------------------- 3. the table
def _table(markdown: str):
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    header = [re.sub(r"\s*[‡*]$", "", cell) for cell in rows[0]]
    return header, rows[2:]


def test_table_has_a_column_per_held_out_domain_and_their_mean(loo, capsys):
    summary = (loo.out / "summary.md").read_text()
    header, rows = _table(summary)
    assert header == ["model", "variant", "seeds", SOURCE_VAL, *DOMAINS, TARGETS_MEAN]
    scores = [r for r in rows if not r[1].startswith("**")]
    assert {(r[0], r[1].split()[0]) for r in scores} == {(m, v) for m in MODELS for v in VARIANTS}
    runs = _results(loo.out)
    for row in scores:
        held = [float(cell) for cell in row[4:7]]
        # the cells are rounded to 0.1: their mean may differ from the rounded mean by < 0.1
        assert abs(np.mean(held) - float(row[7])) <= 0.05 + 1e-9, row
        # source val: the training domains' holdout, averaged over the seed's groups
        val = [r["val_top1"] for r in runs.values()
               if (r["model"], r["variant"]) == (row[0], row[1].split()[0])]
        assert len(val) == len(DOMAINS) and row[3] == f"{np.mean(val):.1f}", row
    # exactly, from results.json: targets (mean) is the mean of the held-out domains
    results = json.loads((loo.out / "results.json").read_text())
    score = {(s["model"], s["variant"], s["domain"]): s["mean"] for s in results["summary"]
             if s["kind"] == "score"}
    for m in MODELS:
        for v in VARIANTS:
            assert score[(m, v, TARGETS_MEAN)] == pytest.approx(
                np.mean([score[(m, v, d)] for d in DOMAINS]), abs=1e-9)
    assert not any("(source test)" in cell for cell in _table(summary)[0])
    assert any(line.startswith("Leave-one-domain-out (DomainBed): ")
               for line in summary.splitlines())
    for held, record in loo.data["groups"].items():
        counts = record["counts"]
        sources = ", ".join(f"{d} {counts[d]['train']} train / {counts[d]['val']} val"
                            for d in DOMAINS if d != held)
        assert (f"Images, {held} held out: sources {sources}; targets {held} "
                f"{counts[held]}.") in summary.splitlines()
    # the table printed by the run is summary.md, and `neurn table` rebuilds it
    assert loo.stdout.strip() == summary.strip()
    assert main(["table", str(loo.out)]) == 0
    assert capsys.readouterr().out.strip() == summary.strip()


# ---------------------------------------------------------------------- 4. balanced batches
def _old_epoch_batches(n: int, batch_size: int, generator, per_epoch: int):
    """The single-domain sampler before several sources: consecutive randperm chunks."""
    need = per_epoch * batch_size
    draws, total = [], 0
    while total < need:
        draws.append(torch.randperm(n, generator=generator))
        total += n
    return list(torch.cat(draws)[:need].view(per_epoch, batch_size))


def test_epoch_batches_take_a_share_of_each_domain_from_its_own_permutations():
    parts, per_epoch = (10, 25, 7), 6
    study = SimpleNamespace(batch_size=8)
    batches = epoch_batches(study, torch.Generator().manual_seed(3), per_epoch, list(parts))
    assert len(batches) == per_epoch
    offsets = np.concatenate([[0], np.cumsum(parts)])
    columns = [slice(0, 3), slice(3, 6), slice(6, 8)]  # 8 // 3 = 2, the first 8 % 3 get +1
    for batch in batches:
        assert batch.shape == (8,) and batch.dtype == torch.int64
    for p, (n, cols) in enumerate(zip(parts, columns)):
        drawn = torch.cat([b[cols] for b in batches]).numpy()
        assert ((drawn >= offsets[p]) & (drawn < offsets[p + 1])).all(), p
        local = drawn - offsets[p]
        # consecutive permutations of the part: no index repeats before it is exhausted
        for start in range(0, len(local), n):
            chunk = local[start:start + n]
            assert len(set(chunk.tolist())) == len(chunk), (p, start)
            if len(chunk) == n:
                assert sorted(chunk.tolist()) == list(range(n))
    # seeded
    again = epoch_batches(study, torch.Generator().manual_seed(3), per_epoch, list(parts))
    other = epoch_batches(study, torch.Generator().manual_seed(4), per_epoch, list(parts))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    assert not all(torch.equal(a, b) for a, b in zip(batches, other))
    # 10 over 3 domains: 4 / 3 / 3
    wide = epoch_batches(SimpleNamespace(batch_size=10), torch.Generator().manual_seed(0), 2,
                         list(parts))
    for batch in wide:
        part = np.searchsorted(offsets, batch.numpy(), side="right") - 1
        assert np.bincount(part, minlength=3).tolist() == [4, 3, 3]


@pytest.mark.parametrize("n, batch_size, per_epoch", [(30, 8, 5), (7, 4, 6), (64, 16, 4)])
def test_one_domain_gives_the_single_source_batches_unchanged(n, batch_size, per_epoch):
    g_new, g_old = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    new = epoch_batches(SimpleNamespace(batch_size=batch_size), g_new, per_epoch, [n])
    old = _old_epoch_batches(n, batch_size, g_old, per_epoch)
    assert len(new) == len(old) and all(torch.equal(a, b) for a, b in zip(new, old))
    # and the generator is left where the old sampler left it (the next epoch matches)
    assert torch.equal(torch.randperm(n, generator=g_new), torch.randperm(n, generator=g_old))


# ---------------------------------------------------------------------- 5. ConcatBatches
def test_concat_batches_equal_indexing_the_parts_in_the_asked_order():
    rng = np.random.default_rng(5)
    whole = rng.integers(0, 256, (9, 3, 4, 4), dtype=np.uint8)
    parts = [ArrayBatches(rng.integers(0, 256, (4, 3, 4, 4), dtype=np.uint8),
                          np.array([0, 1, 2, 0])),
             # a subset of a bigger array, as the holdout split makes them
             ArrayBatches(whole, np.arange(9) % 3).subset([8, 1, 4, 6, 0, 2]),
             ArrayBatches(rng.integers(0, 256, (3, 3, 4, 4), dtype=np.uint8),
                          np.array([2, 2, 1]))]
    concat = ConcatBatches(parts)
    assert len(concat) == 13 and concat.lengths == [4, 6, 3]
    where = [(0, i) for i in range(4)] + [(1, i) for i in range(6)] + [(2, i) for i in range(3)]
    for index in ([12, 0, 7, 3, 10, 4, 11, 1, 9, 5], [5], [11, 10, 12]):
        for given in (index, torch.tensor(index), np.asarray(index)):
            images, labels = concat[given]
            assert images.shape == (len(index), 3, 4, 4) and images.dtype == torch.uint8
            for row, i in enumerate(index):
                p, local = where[i]
                image, label = parts[p][[local]]
                assert torch.equal(images[row], image[0]), (index, i)
                assert labels[row] == label[0]
    middle = (np.arange(9) % 3)[[8, 1, 4, 6, 0, 2]].tolist()
    assert concat.labels.tolist() == [0, 1, 2, 0] + middle + [2, 2, 1]


# ---------------------------------------------------------------------- 6. refusals
REFUSALS = [
    ("out of range", lambda r: ["--dataset", str(r), "--test-envs", "3"],
     "test env 3 is out of range"),
    ("unknown name", lambda r: ["--dataset", str(r), "--test-envs", "phot"],
     "did you mean 'photo'"),
    ("all held out", lambda r: ["--dataset", str(r), "--test-envs", "0", "cartoon", "2"],
     "every domain"),
    ("dataset and source", lambda r: ["--dataset", str(r), "--test-envs", "0", "--source",
                                      str(r / "art"), str(r / "photo")], "drop --source"),
    ("dataset and targets", lambda r: ["--dataset", str(r), "--test-envs", "0", "--targets",
                                       str(r / "art")], "drop --source / --targets"),
    ("dataset without test envs", lambda r: ["--dataset", str(r)], "--test-envs"),
    ("test envs without dataset", lambda r: ["--test-envs", "0"], "--dataset ROOT"),
    ("holdout 1.5", lambda r: ["--dataset", str(r), "--test-envs", "0", "--holdout-fraction",
                               "1.5"], "holdout fraction must lie strictly between 0 and 1"),
    ("holdout with one source", lambda r: ["--source", str(r / "art"), "--targets",
                                           str(r / "photo"), "--holdout-fraction", "0.3"],
     "holdout fraction applies to several source domains"),
    ("val fraction with dataset", lambda r: ["--dataset", str(r), "--test-envs", "0",
                                             "--val-fraction", "0.2"], "--holdout-fraction"),
    ("missing root", lambda r: ["--dataset", str(r / "nowhere"), "--test-envs", "0"],
     "nowhere"),
]


@pytest.mark.parametrize("args, needle", [(a, n) for _, a, n in REFUSALS],
                         ids=[name for name, _, _ in REFUSALS])
def test_refusals_are_one_line_exit_2_and_write_nothing(root, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    rc = main(["run", "convnet", "--variants", "baseline", *args(root),
               *_common(tmp_path / "cache"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("neurn run: error: ") and err.strip().count("\n") == 0, err
    assert needle in err, err
    assert not out.exists()


def test_a_batch_smaller_than_the_training_domains_is_refused_up_front(root, tmp_path,
                                                                         capsys):
    # a balanced batch takes an image of each training domain: 1 image, 2 domains
    out = tmp_path / "out"
    rc = main(["run", "convnet", "--variants", "baseline", "--dataset", str(root),
               "--test-envs", "0", *_common(tmp_path / "cache"), "--batch-size", "1",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().count("\n") == 0 and "raise --batch-size" in err, err
    assert not out.exists()


def test_a_root_with_one_domain_is_refused(root, tmp_path, capsys):
    single = tmp_path / "single"
    shutil.copytree(root / "art", single / "only")
    out = tmp_path / "out"
    assert main(["run", "convnet", "--dataset", str(single), "--test-envs", "all"]
                + _common(tmp_path / "cache") + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "at least two domain folders" in err, err
    assert not out.exists()


# ---------------------------------------------------------------------- 7. several sources
def test_several_sources_without_dataset_train_together(root, loo, tmp_path, capsys):
    out = tmp_path / "multi"
    assert main(["run", "convnet", "--variants", "baseline", "--source", str(root / "art"),
                 str(root / "cartoon"), "--targets", str(root / "photo")]
                + _common(tmp_path / "cache") + ["--out", str(out)]) == 0
    capsys.readouterr()
    (key, result), = _results(out).items()
    assert key == "convnet__baseline__seed0" and result["group"] is None
    counts = result["counts"]
    for domain in ("art", "cartoon"):
        n = len(_all_files(root, domain))
        val = sum(round(k * HOLDOUT) for k in DOMAINS[domain][1])
        assert counts[domain] == {"train": n - val, "val": val, "test": 0}
    assert counts["photo"] == len(_all_files(root, "photo"))
    assert set(result["metrics"]) == {"photo"} and result["metrics"]["photo"]["role"] == "target"
    assert result["settings"]["sources"] == ["art", "cartoon"]
    record = json.loads((out / "data.json").read_text())
    assert "groups" not in record and record["source"] == "art+cartoon"
    # the same holdout as DomainBed's group that holds photo out
    assert record["splits"] == loo.data["groups"]["photo"]["splits"]
    summary = (out / "summary.md").read_text()
    assert (f"Images: sources art {counts['art']['train']} train / {counts['art']['val']} val, "
            f"cartoon {counts['cartoon']['train']} train / {counts['cartoon']['val']} val; "
            f"targets photo {counts['photo']}.") in summary.splitlines()
    assert "Leave-one-domain-out" not in summary


# ---------------------------------------------------------------------- 8. resuming
def test_rerunning_the_same_command_trains_nothing_and_prints_the_same_table(loo, capsys):
    results = sorted((loo.out / "runs").glob("*/result.json"))
    assert len(results) == len(MODELS) * len(VARIANTS) * len(DOMAINS)
    before = {p: p.stat().st_mtime_ns for p in results}
    summary = (loo.out / "summary.md").read_text()
    assert main(loo.args) == 0
    printed = capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in results} == before
    assert not list((loo.out / "runs").glob("*/checkpoint.pt"))
    assert printed == loo.stdout
    assert (loo.out / "summary.md").read_text() == summary
