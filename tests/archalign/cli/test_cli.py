"""The archalign command line end to end on a few small timm models."""
from __future__ import annotations
import json

import numpy as np
import pytest

import archalign
from archalign.cli import main
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.shortlist import Shortlist

MODELS = ["resnet18", "resnet34", "vgg11", "vgg13", "vit_tiny_patch16_224",
          "deit_tiny_patch16_224"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("traces"))


def test_matrix_cluster_plot(tmp_path, cache, capsys):
    out = tmp_path / "sim.npz"
    assert main(["matrix", *MODELS, "--out", str(out), "--cache-dir", cache,
                 "--no-progress", "--heatmap", str(tmp_path / "h.png")]) == 0
    sm = SimilarityMatrix.load(out)
    assert sm.labels == MODELS and sm.settings["granularity"] == "shape"
    assert (tmp_path / "h.png").stat().st_size > 0
    assert main(["cluster", str(out), "-n", "3", "--json", str(tmp_path / "c.json"),
                 "--agreement"]) == 0
    groups = sorted(sorted(v) for v in json.loads((tmp_path / "c.json").read_text()).values())
    assert groups == [["deit_tiny_patch16_224", "vit_tiny_patch16_224"],
                      ["resnet18", "resnet34"], ["vgg11", "vgg13"]]
    assert "adjusted Rand index" in capsys.readouterr().out  # vit and deit: two prefixes
    assert main(["plot", str(out), "--dendrogram", str(tmp_path / "d.pdf")]) == 0
    assert (tmp_path / "d.pdf").read_bytes().startswith(b"%PDF")


def test_matrix_agrees_with_library(tmp_path, cache):
    out = tmp_path / "sim.npz"
    main(["matrix", *MODELS[:3], "--out", str(out), "--cache-dir", cache, "--no-progress",
          "--gap-open", "-3", "--gap-extend", "-1", "-g", "type"])
    from_cli = SimilarityMatrix.load(out)
    lib = archalign.similarity_matrix(MODELS[:3], granularity="type", cache_dir=cache,
                                      scoring=archalign.Scoring(gap_open=-3, gap_extend=-1),
                                      progress=False)
    np.testing.assert_array_equal(from_cli.scores, lib.scores)


@pytest.mark.parametrize("extra", [[], ["--strategy", "farthest"], ["--streaming"]])
def test_shortlist_picks_one_per_family(tmp_path, cache, extra):
    out = tmp_path / "shortlist.json"
    assert main(["shortlist", *MODELS, "-k", "3", "--out", str(out), "--cache-dir", cache,
                 "--no-progress", *extra]) == 0
    names = Shortlist.load(out).names
    families = {n[:3] for n in names}
    assert len(names) == 3 and families in ({"res", "vgg", "vit"}, {"res", "vgg", "dei"})


def test_align_prints_rows(cache, capsys):
    assert main(["align", "vgg11", "vgg13", "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out and "identical" in out


def test_user_errors_exit_2(tmp_path, cache, capsys):
    assert main(["matrix", "resnet_does_not_exist", "--out", str(tmp_path / "x.npz"),
                 "--cache-dir", cache, "--no-progress"]) == 2
    assert main(["cluster", str(tmp_path / "missing.npz"), "-n", "2"]) == 2
    assert main(["matrix", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "--panel" in err


def test_token_options_reach_the_library(tmp_path, cache, capsys):
    out = tmp_path / "old.npz"
    assert main(["matrix", *MODELS[:3], "--out", str(out), "--cache-dir", cache,
                 "--no-progress", "--no-rolled", "--gap", "-1"]) == 0
    sm = SimilarityMatrix.load(out)
    lib = archalign.similarity_matrix(MODELS[:3], rolled=False, gap=-1, cache_dir=cache,
                                      progress=False)
    np.testing.assert_array_equal(sm.scores, lib.scores)
    assert sm.settings["rolled"] is False and sm.settings["gap_open"] == -1
    assert main(["matrix", *MODELS[:3], "--out", str(out), "--cache-dir", cache,
                 "--no-progress", "--max-period", "4"]) == 0
    assert SimilarityMatrix.load(out).settings["max_period"] == 4
    assert main(["matrix", *MODELS[:3], "--preset", "paper", "--rolled", "--out", str(out),
                 "--cache-dir", cache]) == 2
    assert "--preset paper fixes" in capsys.readouterr().err
    assert main(["matrix", *MODELS[:2], "--out", str(out), "--max-period", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-period: '-1' is not a whole number >= 0" in err
    assert main(["align", "resnet18", "resnet34", "--cache-dir", cache]) == 0
    assert "×" in capsys.readouterr().out  # rolled blocks show their counts
