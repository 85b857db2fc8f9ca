"""One vocabulary on the command line (issue 28): --linkage wherever a dendrogram is cut
or drawn, --strategy for the shortlist, -j/--n-jobs; every command that reads a matrix
takes SIM.npz (``archalign shortlist sim.npz`` is the shortlist of its models); matrix
without --out prints the matrix; cluster's name-prefix agreement only when asked;
``python -m archalign``. The old spellings still work, with a one-line warning."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import archalign
from archalign.cli import build_parser, main
from archalign.similarity.shortlist import Shortlist

MODELS = ["resnet18", "resnet34", "vgg11", "vgg13", "vit_tiny_patch16_224",
          "deit_tiny_patch16_224"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("traces"))


@pytest.fixture(scope="module")
def sim(cache, tmp_path_factory):
    path = tmp_path_factory.mktemp("matrix") / "sim.npz"
    assert main(["matrix", *MODELS, "--out", str(path), "--cache-dir", cache,
                 "--no-progress"]) == 0
    return path


@pytest.mark.parametrize("extra", [[], ["--strategy", "farthest"], ["--linkage", "complete"],
                                   ["--must-include", "vgg11", "--exclude", "resnet34"]])
def test_shortlist_of_a_saved_matrix_is_the_shortlist_of_its_models(sim, cache, tmp_path,
                                                                     extra):
    from_npz, from_models = tmp_path / "npz.json", tmp_path / "models.json"
    assert main(["shortlist", str(sim), "-k", "3", "--out", str(from_npz), *extra]) == 0
    assert main(["shortlist", *MODELS, "-k", "3", "--out", str(from_models), "--cache-dir",
                 cache, "--no-progress", *extra]) == 0
    a, b = Shortlist.load(from_npz), Shortlist.load(from_models)
    assert a.names == b.names and len(a) == 3
    assert a == b  # strategy, details, settings, encoding and scoring too


def test_the_shortlist_of_a_saved_matrix_without_out_is_printed(sim, capsys):
    assert main(["shortlist", str(sim), "-k", "3"]) == 0  # the command issue 28 names
    picks = archalign.SimilarityMatrix.load(sim).shortlist(3)
    assert capsys.readouterr().out == f"shortlist (medoids, k=3): {', '.join(picks.names)}\n"


@pytest.mark.parametrize("argv, needle", [
    (["-g", "type"], "drop --granularity"),
    (["--streaming"], "drop --streaming"),
    (["resnet18"], "give one SIM.npz or models, not both"),
])
def test_a_saved_matrix_refuses_what_it_fixes_itself(sim, tmp_path, capsys, argv, needle):
    assert main(["shortlist", str(sim), *argv, "-k", "2", "--out", str(tmp_path / "s.json")]
                ) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "s.json").exists()


def test_matrix_without_out_prints_the_labelled_matrix(cache, capsys):
    assert main(["matrix", *MODELS[:4], "--cache-dir", cache, "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(":") and "4 models" in lines[0]
    assert lines[1].split() == MODELS[:4]
    sm = archalign.similarity_matrix(MODELS[:4], cache_dir=cache, progress=False)
    for label, line, expected in zip(MODELS[:4], lines[2:6], sm.values):
        name, *values = line.split()
        assert name == label
        np.testing.assert_allclose([float(v) for v in values], expected, atol=5e-4)


def test_cluster_agreement_only_when_asked_and_linkage_by_either_name(sim, tmp_path, capsys):
    assert main(["cluster", str(sim), "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "cluster 1" in out and "adjusted Rand index" not in out
    assert main(["cluster", str(sim), "-n", "3", "--agreement"]) == 0
    assert "agreement with name prefixes: adjusted Rand index" in capsys.readouterr().out
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert main(["cluster", str(sim), "-n", "2", "--linkage", "single", "--json", str(new)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["cluster", str(sim), "-n", "2", "--method", "single", "--json", str(old)]) == 0
    err = capsys.readouterr().err
    assert err == "archalign: warning: --method is now --linkage here (the old spelling goes in " \
                  "the next release)\n"
    assert json.loads(new.read_text()) == json.loads(old.read_text())
    assert main(["cluster", str(sim), "-n", "2", "--method", "single", "--linkage",
                 "complete"]) == 2
    assert "give --linkage alone" in capsys.readouterr().err


def test_shortlist_method_is_now_strategy(sim, tmp_path, capsys):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert main(["shortlist", str(sim), "-k", "3", "--strategy", "farthest", "--out",
                 str(new)]) == 0
    capsys.readouterr()
    assert main(["shortlist", str(sim), "-k", "3", "--method", "farthest", "--out",
                 str(old)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--method is now --strategy" in err  # warned once
    assert Shortlist.load(old) == Shortlist.load(new)
    assert Shortlist.load(new).strategy == "farthest"


def test_every_figure_and_the_report_take_the_linkage_and_the_shortlist(sim, tmp_path,
                                                                         capsys):
    picks = tmp_path / "s.json"
    assert main(["shortlist", str(sim), "-k", "3", "--linkage", "complete", "--out", str(picks),
                 "--dendrogram", str(tmp_path / "sd.png"), "--heatmap",
                 str(tmp_path / "sh.png")]) == 0
    assert main(["plot", str(sim), "--linkage", "complete", "--shortlist", str(picks),
                 "--dendrogram", str(tmp_path / "d.png"), "--heatmap", str(tmp_path / "h.svg")]
                ) == 0
    assert main(["matrix", str(sim).replace(".npz", "-never.npz"), "--linkage", "ward"]) == 2
    page = tmp_path / "r.html"
    assert main(["report", str(sim), "--out", str(page), "--shortlist", str(picks),
                 "--linkage", "complete", "--no-alignments"]) == 0
    for name in ("sd.png", "sh.png", "d.png", "h.svg", "r.html"):
        assert (tmp_path / name).stat().st_size > 1000, name
    text = page.read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.DOTALL)[1])
    assert data["clusters"] == 3  # the report opens at the shortlist's k
    assert "<td>linkage</td><td>complete</td>" in text


def test_help_speaks_one_vocabulary():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("matrix", "cluster", "shortlist", "plot", "report"):
        assert "--linkage" in commands[name].format_help(), name
    for name in ("matrix", "shortlist", "trace"):
        assert "-j N, --n-jobs N" in commands[name].format_help(), name
    for name, command in commands.items():
        text = command.format_help()
        assert "--method" not in text and "--jobs" not in text, name
    assert "--strategy {medoids,farthest}" in commands["shortlist"].format_help()
    assert "--agreement" in commands["cluster"].format_help()


def test_python_m_archalign():
    done = subprocess.run([sys.executable, "-m", "archalign", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout == f"archalign {archalign.__version__}\n"
    done = subprocess.run([sys.executable, "-m", "archalign", "cluster", "missing.npz", "-n",
                           "2"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("archalign: error: missing.npz")
