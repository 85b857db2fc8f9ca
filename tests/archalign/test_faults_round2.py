"""Reliability, round two (archalign): text that must stay text (the report's embedded
JSON, the diff page, .csv labels), no request that leaves the machine unless a hub model
was asked for, nothing written or overwritten by a command that refuses, no model
dropped by a full cache, nonsense scores and matrix files refused in one line, and
messages (and Python warnings) that say what to do in one line."""
from __future__ import annotations
import csv
import json
import os
import socket
import warnings

import numpy as np
import pytest

from archalign import Scoring, Trace, score
from archalign.utils.io import arrays_digest
from archalign.cli import main
from archalign.defaults import resolve_gaps
from archalign.similarity.matrix import MatrixFileError, SimilarityMatrix
from archalign.tracing.calls import Call, UnknownModelError

# labels built to break out of a <script> element, an HTML comment, CDATA or a JS string
BREAKOUT = ["<!--<script>", "</script><script>alert(1)</script>", "]]>", "a\u2028b\u2029c",
            "x & y > z", "'\"`${1}"]


def one_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def matrix(labels=("a", "b", "c", "d"), **settings) -> SimilarityMatrix:
    n = len(labels)
    values = np.full((n, n), 0.25) + np.diag(np.full(n, 0.75))
    values[0, 1] = values[1, 0] = 0.8
    return SimilarityMatrix(list(labels), values * 10, values, settings=settings or None)


def snapshot(path):
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def sim(tmp_path):
    return matrix(granularity="shape").save(tmp_path / "sim.npz")


# ------------------------------------------------------------ 4. escaping and network
def test_report_json_is_inert_in_a_script_element():
    from archalign.similarity.report import build_report

    page = build_report(matrix(BREAKOUT))
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert not any(c in data for c in "<>&\u2028\u2029")
    assert sorted(json.loads(data)["labels"]) == sorted(BREAKOUT)


def test_report_with_breakout_labels_renders_in_a_browser(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.support.ui import WebDriverWait

    path = matrix(BREAKOUT).to_html(tmp_path / "r.html", alignments=False)
    browser.get(path.as_uri())
    WebDriverWait(browser, 20).until(lambda d: d.execute_script(
        "return window.archalignReport && window.archalignReport.painted"))
    with pytest.raises(NoAlertPresentException):  # no script of a label ran
        browser.switch_to.alert.accept()
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert sorted(browser.execute_script("return window.archalignReport.labels")) == sorted(
        BREAKOUT)
    options = browser.execute_script(
        "return [...document.querySelectorAll('#names option')].map((o) => o.value)")
    assert sorted(options) == sorted(BREAKOUT)
    assert browser.execute_script("return document.querySelectorAll('script').length") == 2


def _trace(model: str, k: int) -> Trace:
    calls = [Call(0, "module", "Conv2d", "stem", {"k": 3, "g": 1}),
             Call(1, "module", "Conv2d", "body", {"k": k, "g": 1})]
    return Trace(model=model, route="meta", calls=calls, num_params=10,
                 modules={"": "Net"})


def test_diff_page_with_breakout_labels_reads_back_in_a_browser(browser, tmp_path):
    from archalign.diffing import diff

    a, b = BREAKOUT[0], BREAKOUT[1]
    path = tmp_path / "d.html"
    path.write_text(diff(_trace(a, 1), _trace(b, 3)).to_html(), encoding="utf-8")
    browser.get(path.as_uri())
    names = browser.execute_script(
        "return [...document.querySelectorAll('h1 .name')].map((e) => e.textContent)")
    assert names == [a, b]
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    assert browser.title == f"archalign diff: {a} → {b}"


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection or resolve a host fails the test (and is
    recorded), with the hub's offline switch off so that nothing is skipped for it."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"a network request was made: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == []


@pytest.mark.parametrize("ref", ["./configs/my.json", "/abs/missing", "org/name", "my.json",
                                 "~/nowhere/config.json", "configs\\my"])
def test_a_transformers_path_that_is_missing_is_one_line_and_no_request(ref, no_network,
                                                                        tmp_path, capsys):
    pytest.importorskip("transformers")
    from archalign.tracing.transformers_trace import trace_transformers

    with pytest.raises(UnknownModelError, match="no such config file or folder") as info:
        trace_transformers(f"transformers:{ref}")
    assert "\n" not in str(info.value) and "transformers:hub:" in str(info.value)
    cache = tmp_path / "cache"
    assert main(["trace", f"transformers:{ref}", "--cache-dir", str(cache)]) == 2
    one_line(capsys, ref, "no such config file or folder")
    out = tmp_path / "m.npz"
    assert main(["matrix", f"transformers:{ref}", "resnet18", "--out", str(out),
                 "--cache-dir", str(cache)]) == 2
    one_line(capsys, ref)
    assert not out.exists()


def test_a_folder_without_config_json_is_one_line(no_network, tmp_path):
    pytest.importorskip("transformers")
    from archalign.tracing.transformers_trace import trace_transformers

    with pytest.raises(UnknownModelError, match="holds no config.json"):
        trace_transformers(f"transformers:{tmp_path}")


def test_a_local_config_is_traced_with_no_request(no_network, tmp_path):
    transformers = pytest.importorskip("transformers")
    from archalign.tracing.transformers_trace import trace_transformers

    folder = tmp_path / "tiny-bert"
    transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, vocab_size=50).save_pretrained(folder)
    t = trace_transformers(f"transformers:{folder / 'config.json'}")
    assert t.route == "meta" and len(t) > 5


def test_only_a_hub_spec_may_use_the_network_and_it_says_so(no_network, tmp_path):
    pytest.importorskip("transformers")
    from archalign.tracing.zoo_cache import expand_names

    with pytest.warns(UserWarning, match="from the Hugging Face hub") as record:
        names = expand_names(["transformers:hub:org/name"], cache_dir=tmp_path)
    assert names == ["transformers:hub:org/name"] and len(record) == 1
    with pytest.raises(UnknownModelError, match="give the hub id"):
        expand_names(["transformers:hub:"], cache_dir=tmp_path)


def test_csv_labels_that_a_spreadsheet_would_run_are_quoted(tmp_path):
    labels = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\ry", "ok-1"]
    sm = matrix(labels)
    sm.values[0, 1] = sm.values[1, 0] = -0.5  # numbers are numbers, not labels
    rows = list(csv.reader(sm.save(tmp_path / "m.csv").open(newline="")))
    quoted = ["'" + x for x in labels[:6]] + ["ok-1"]
    assert rows[0] == [""] + quoted and [r[0] for r in rows[1:]] == quoted
    assert rows[1][2] == "-0.5"


# ------------------------------------------ 6. nothing changed on refusal, nonsense refused
def test_a_refused_figure_leaves_the_matrix_file_alone(sim, tmp_path, capsys):
    keep = tmp_path / "keep.npz"
    keep.write_bytes(sim.read_bytes())
    before, cache = snapshot(keep), tmp_path / "cache"
    assert main(["matrix", "resnet18", "resnet34", "--out", str(keep), "--heatmap",
                 str(tmp_path / "h.xyz"), "--cache-dir", str(cache)]) == 2
    one_line(capsys, str(tmp_path / "h.xyz"), "'.xyz'", ".png")
    assert snapshot(keep) == before and not cache.exists()  # nothing traced either
    assert main(["shortlist", "resnet18", "resnet34", "-k", "1", "--out",
                 str(tmp_path / "s.json"), "--matrix", str(keep), "--dendrogram",
                 str(tmp_path / "d.xyz"), "--cache-dir", str(cache)]) == 2
    one_line(capsys, str(tmp_path / "d.xyz"))
    assert snapshot(keep) == before and not cache.exists()
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("argv, needles", [
    (["matrix", "resnet18", "resnet34", "--out", "{dir}"], ["is a folder", ".npz or .csv"]),
    (["matrix", "resnet18", "resnet34", "--out", "{tmp}/m.txt"], ["'.txt'", ".npz or .csv"]),
    (["matrix", "resnet18", "resnet34", "--out", "{file}/m.npz"], ["is a file, not a folder"]),
    (["matrix", "resnet18", "resnet34", "--out", "{tmp}/m.npz", "--dendrogram",
      "{tmp}/d"], ["--dendrogram", "no file type", ".pdf"]),
    (["matrix", "resnet18", "resnet34", "--out", "{tmp}/m.npz", "--blocks-dir", "{file}"],
     ["--blocks-dir", "takes a folder"]),
    (["shortlist", "resnet18", "resnet34", "-k", "1", "--out", "{tmp}/s.npz"], [".json"]),
    (["shortlist", "resnet18", "resnet34", "-k", "1", "--out", "{tmp}/s.json", "--matrix",
      "{dir}"], ["--matrix", "is a folder"]),
    (["plot", "{sim}", "--heatmap", "{tmp}/h.xyz"], ["--heatmap", "'.xyz'"]),
    (["cluster", "{sim}", "-n", "2", "--json", "{tmp}/c.txt"], ["--json", ".json"]),
    (["report", "{sim}", "--out", "{tmp}/r.txt"], [".html"]),
    (["report", "{sim}", "--out", "{dir}"], ["is a folder", ".html"]),
    (["align", "resnet18", "resnet34", "--plot", "{tmp}/a.xyz"], ["--plot", "'.xyz'"]),
    (["diff", "resnet18", "resnet34", "--format", "json", "--out", "{tmp}/d.html"],
     ["'.html'", ".json"]),
    (["diff", "resnet18", "resnet34", "--out", "{dir}"], ["is a folder"]),
    (["trace", "resnet18", "--out", "{file}"], ["is a file", "takes a folder"]),
])
def test_every_output_is_checked_before_any_work(argv, needles, sim, tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    fill = {"{tmp}": str(tmp_path), "{dir}": str(tmp_path / "folder"),
            "{file}": str(tmp_path / "file"), "{sim}": str(sim)}
    for key, value in fill.items():
        argv = [a.replace(key, value) for a in argv]
    before = sorted(os.listdir(tmp_path))
    cache = tmp_path / "cache"
    extra = [] if argv[0] in ("plot", "cluster", "report") else ["--cache-dir", str(cache)]
    assert main(argv + extra) == 2
    one_line(capsys, *needles)
    assert sorted(os.listdir(tmp_path)) == before  # no output, no cache, no temp file


def test_save_names_the_path_and_the_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; name a file ending in \.npz"):
        matrix().save(tmp_path)
    with pytest.raises(ValueError, match=r"m\.txt: unknown file type '\.txt'"):
        matrix().save(tmp_path / "m.txt")


def _fill(folder):
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_trace_cache_drops_no_model(small_disk, tmp_path, capsys):
    import archalign

    _fill(small_disk)
    out = tmp_path / "m.npz"
    assert main(["matrix", "resnet18", "resnet34", "--out", str(out), "--cache-dir",
                 str(small_disk), "--no-progress", "-j", "1"]) == 0
    one_line(capsys, "archalign: warning: 2 model(s) traced but not cached",
             "No space left on device")
    assert SimilarityMatrix.load(out).labels == ["resnet18", "resnet34"]
    with pytest.warns(RuntimeWarning, match="not cached"):
        sm = archalign.similarity_matrix(["resnet18", "vgg11"], cache_dir=small_disk,
                                         progress=False, n_jobs=1)
    assert sm.labels == ["resnet18", "vgg11"]
    # caching is what `trace` is for: there it is an error
    assert main(["trace", "resnet18", "--cache-dir", str(small_disk), "--no-progress"]) == 2
    one_line(capsys, "not cached", "No space left on device")


@pytest.mark.parametrize("argv, needles", [
    (["--gap", "1"], ["--gap: '1'", "<= 0"]),
    (["--gap-open", "-1", "--gap-extend", "0.5"], ["--gap-extend: '0.5'"]),
    (["--gap-open", "-0.5", "--gap-extend", "-8"],
     ["--gap-extend -8 is below --gap-open -0.5", "--gap-open <= --gap-extend <= 0"]),
    (["--match", "-1", "--mismatch", "-1"], ["--mismatch -1 is not below --match -1"]),
    (["--mismatch", "2"], ["--mismatch 2 is not below --match 1"]),
])
def test_meaningless_scores_are_refused_before_any_work(argv, needles, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "m.npz"
    assert main(["matrix", "resnet18", "resnet34", "--out", str(out), "--cache-dir",
                 str(cache), *argv]) == 2
    one_line(capsys, *needles)
    assert not out.exists() and not cache.exists()


def test_meaningless_scores_are_refused_by_the_library():
    import archalign

    with pytest.raises(ValueError, match=r"gap=1 is not a score <= 0.*e\.g\. gap=-1"):
        resolve_gaps(gap=1)
    with pytest.raises(ValueError, match="gap_extend=0.5 is not a score <= 0"):
        resolve_gaps(gap_open=-1, gap_extend=0.5)
    with pytest.raises(ValueError, match="gap_extend=-8 is below gap_open=-0.5"):
        resolve_gaps(gap_open=-0.5, gap_extend=-8)
    with pytest.raises(ValueError, match="mismatch=1 is not below match=1"):
        Scoring(match=1, mismatch=1).for_similarity()
    with pytest.raises(ValueError, match=r"substitution\[0, 1\]=2 is not below"):
        Scoring(substitution=[[1, 2], [0, 1]]).for_similarity()
    assert Scoring(gap_open=-5, gap_extend=0).for_similarity()  # free extension: fine
    # the aligner itself still takes any scores
    assert score([0, 1], [0, 1], Scoring(match=-1, mismatch=0, gap=1)) == 4
    traces = [_trace("a", 1), _trace("b", 3)]
    with pytest.raises(ValueError, match="gap=2 is not a score <= 0"):
        archalign.similarity_matrix(traces, gap=2, progress=False)
    with pytest.raises(ValueError, match="mismatch=1 is not below match=0"):
        archalign.similarity_matrix(traces, scoring=Scoring(match=0, mismatch=1),
                                    progress=False)


def _rewrite(path, **changes):
    """``path`` rewritten with some members changed and a digest that matches them, as
    a careless writer (not damage) would leave it."""
    members = dict(np.load(path, allow_pickle=False))
    members.update(changes)
    members["digest"] = np.array(arrays_digest({m: members[m] for m in (
        "labels", "scores", "values", "similarity", "settings")}))
    np.savez_compressed(path, **members)


BAD_SETTINGS = [({"lengths": "abc"}, "'lengths'"),
                ({"unrolled_lengths": [1.5, 2, 3, 4]}, "'unrolled_lengths'"),
                ({"granularity": 3}, "'granularity'"),
                ({"num_params": [1, 2]}, "'num_params'"),
                ({"gap_open": "x"}, "'gap_open'"),
                ({"rolled": "yes"}, "'rolled'"),
                ({"versions": {"torch": 2}}, "'versions'")]


@pytest.mark.parametrize("change, needle", [
    ({"values": "nan"}, "NaN or infinite"),
    ({"scores": "inf"}, "NaN or infinite"),
    *[({"settings": s}, n) for s, n in BAD_SETTINGS],
])
def test_a_matrix_file_that_is_unsound_is_refused_on_load(change, needle, sim, tmp_path,
                                                          capsys):
    (key, value), = change.items()
    if key == "settings":
        value = np.array(json.dumps(value))
    else:
        good = np.load(sim)[key].copy()
        good[0, 2] = float(value)
        value = good
    _rewrite(sim, **{key: value})
    with pytest.raises(MatrixFileError, match="not an archalign matrix file") as info:
        SimilarityMatrix.load(sim)
    assert needle in str(info.value) and "\n" not in str(info.value)
    for argv in (["cluster", str(sim), "-n", "2"], ["plot", str(sim), "--heatmap",
                                                     str(tmp_path / "h.png")],
                 ["report", str(sim), "--out", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        one_line(capsys, str(sim), needle)
    assert not (tmp_path / "h.png").exists() and not (tmp_path / "r.html").exists()


def _unsound():
    yield "no models", SimilarityMatrix([], np.zeros((0, 0)), np.zeros((0, 0)))
    sm = matrix()
    sm.labels[1] = "a"
    yield "repeated labels", sm
    yield "NUL", matrix(("a\0", "b"))
    sm = matrix()
    sm.values[1, 2] = np.nan
    yield "NaN or infinite", sm
    yield "not JSON", matrix(granularity=np.int64(3))
    for settings, needle in BAD_SETTINGS:
        yield needle, matrix(**settings)


@pytest.mark.parametrize("needle, sm", list(_unsound()))
def test_save_refuses_what_load_would_refuse_before_writing(needle, sm, tmp_path):
    for name in ("m.npz", "m.csv"):
        path = tmp_path / name
        path.write_bytes(b"the previous file")
        with pytest.raises(ValueError, match="not written") as info:
            sm.save(path)
        assert needle in str(info.value) and "\n" not in str(info.value)
        assert path.read_bytes() == b"the previous file"
    assert sorted(os.listdir(tmp_path)) == ["m.csv", "m.npz"]


# ------------------------------------------------------------------------ 7. messages
def test_clustering_nan_names_the_pair_and_the_fix():
    sm = matrix()
    sm.values[0, 3] = np.nan
    with pytest.raises(ValueError, match="similarity of a and d is nan.*compute it again"):
        sm.clusters(n_clusters=2)


@pytest.mark.parametrize("exists", [False, True])
def test_trace_of_an_onnx_file_says_what_trace_takes(exists, tmp_path, capsys):
    path = tmp_path / "model.onnx"
    if exists:
        path.write_bytes(b"not really onnx")
    assert main(["trace", str(path), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = one_line(capsys, str(path), "archalign matrix", "timm names")
    assert ("no such file" in err) != exists and "closest" not in err
    assert not (tmp_path / "cache").exists()


def test_python_warnings_are_one_line_on_both_command_lines(sim, monkeypatch, capsys):
    import neurn.cli

    def warns(*args, **kwargs):
        warnings.warn("something to know\nover two lines", UserWarning)
        return matrix()

    shown = warnings.showwarning
    monkeypatch.setattr(SimilarityMatrix, "load", warns)
    assert main(["cluster", str(sim), "-n", "2"]) == 0
    assert capsys.readouterr().err == "archalign: warning: something to know over two lines\n"
    assert warnings.showwarning is shown  # put back when the command ends

    def domains(args):
        warnings.warn("about the data", RuntimeWarning)
        return 0

    monkeypatch.setattr(neurn.cli, "_domains", domains)
    assert neurn.cli.main(["domains"]) == 0
    assert capsys.readouterr().err == "neurn: warning: about the data\n"
    assert warnings.showwarning is shown
