"""The HTML report: built offline, refused on bad input, and driven in a real browser.

The browser tests run Debian's chromium through chromedriver (selenium, in the `test`
extra); where no browser can be had they skip and say why.
"""
from __future__ import annotations
import io
import re

import numpy as np
import pytest

import archalign
from archalign.cli import main
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.shortlist import Shortlist
from archalign.tracing.specs import resolve_traces

MODELS = ["resnet18", "resnet34", "vgg11", "vgg13", "vit_tiny_patch16_224",
          "deit_tiny_patch16_224"]
# the default setting (affine gaps, rolled), the paper's (linear gaps, unrolled type
# tokens) and family credit (a substitution matrix in the page)
SETTINGS = {"default": {}, "paper": {"preset": "paper"}, "family": {"family": True}}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("traces"))


@pytest.fixture(scope="module")
def matrices(cache):
    return {name: archalign.similarity_matrix(MODELS, cache_dir=cache, progress=False, **kw)
            for name, kw in SETTINGS.items()}


@pytest.fixture(scope="module")
def pages(matrices, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    return {name: sm.to_html(out / f"{name}.html", cache_dir=cache, shortlist=["vgg11"])
            for name, sm in matrices.items()}


def test_page_is_self_contained(pages):
    text = pages["default"].read_text()
    assert "https://" not in text and "http://" not in text
    assert not re.search(r"\b(src|href)\s*=", text)  # no file or host to fetch
    assert "default-src 'none'" in text  # and the browser is told to fetch nothing


def test_cli_report_with_shortlist(matrices, cache, tmp_path, capsys):
    sim = matrices["default"].save(tmp_path / "sim.npz")
    matrices["default"].shortlist(3).save(tmp_path / "s.json")
    out = tmp_path / "new" / "folder" / "r.html"  # missing folders are created
    assert main(["report", str(sim), "--out", str(out), "--shortlist", str(tmp_path / "s.json"),
                 "--cache-dir", cache]) == 0
    assert "wrote" in capsys.readouterr().out and out.stat().st_size > 10_000


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err


def test_bad_inputs(matrices, tmp_path, capsys):
    sim = matrices["default"].save(tmp_path / "sim.npz")
    out = str(tmp_path / "r.html")
    assert "no such file" in _error(["report", str(tmp_path / "nope.npz"), "--out", out], capsys)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(sim.read_bytes()[:500])
    assert "damaged" in _error(["report", str(damaged), "--out", out], capsys)
    Shortlist(["vgg11", "alexnet"], "medoids").save(tmp_path / "s.json")
    err = _error(["report", str(sim), "--out", out, "--shortlist", str(tmp_path / "s.json"),
                  "--no-alignments"], capsys)
    assert "not in the matrix: alexnet" in err
    assert "is a folder; name a file in it ending in .html" in _error(
        ["report", str(sim), "--out", str(tmp_path), "--no-alignments"], capsys)


def test_alignments_need_matching_traces(matrices, cache, tmp_path):
    sm = matrices["default"]
    renamed = SimilarityMatrix([f"{x}_v2" for x in sm.labels], sm.scores, sm.values,
                               sm.similarity, sm.settings)
    with pytest.raises(ValueError, match="--no-alignments"):
        renamed.to_html(tmp_path / "r.html")
    assert renamed.to_html(tmp_path / "r.html", alignments=False).stat().st_size > 5_000
    _, traces = resolve_traces(MODELS, cache_dir=cache, progress=False, tokens_only=True)
    with pytest.raises(ValueError, match="no longer give the sequences"):
        sm.to_html(tmp_path / "r.html", traces=traces[::-1])


# ------------------------------------------------------------------------ in a browser
# ``browser``: tests/archalign/conftest.py
def _open(browser, path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return window.archalignReport && window.archalignReport.painted"))


def _pixels(element) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"))


def test_page_in_browser(browser, pages, matrices):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _open(browser, pages["default"])
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    canvas = browser.find_element(By.ID, "view")
    pixels = _pixels(canvas)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, "the heatmap canvas is blank"

    box = browser.find_element(By.ID, "search")
    box.send_keys("vgg13")
    assert browser.find_element(By.ID, "search-status").text.startswith("vgg13: row")
    magenta = np.all(np.abs(_pixels(canvas).astype(int) - [255, 0, 255]) < 40, axis=-1)
    assert magenta.sum() > 50, "the found model is not highlighted"

    x, y = browser.execute_script("return window.archalignReport.cellCentre('vgg11', 'vgg13')")
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    ActionChains(browser).move_to_element_with_offset(
        canvas, x - rect["left"] - rect["width"] / 2, y - rect["top"] - rect["height"] / 2
    ).click().perform()
    title = browser.find_element(By.ID, "alignment-title").text
    sm = matrices["default"]
    score = sm.scores[sm.index("vgg11"), sm.index("vgg13")]
    assert title.startswith("vgg11 (top) vs vgg13 (bottom)") and f"score {score:g}," in title
    assert "Conv2d" in browser.find_element(By.ID, "alignment-body").text


def test_pair_view_shows_changed_fields_without_hovering(browser, pages):
    from selenium.webdriver.common.by import By

    _open(browser, pages["default"])
    browser.execute_script("window.archalignReport.show('resnet18', 'vgg11')")
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#alignment-body .name")]
    assert names == ["resnet18", "vgg11"]
    changed = browser.find_elements(By.CSS_SELECTOR, "#alignment-body .substituted b")
    assert changed and all(e.is_displayed() for e in changed)
    # resnet18's stem conv (k=7) aligns with a 3x3 conv of vgg11: only k is bold
    assert {e.text for e in changed} == {"k=7", "k=3"}
    body = browser.find_element(By.ID, "alignment-body").text
    assert "Conv2d(k=7,s=2,g=1)" in body.replace("\n", "")


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_page_aligner_agrees_with_archalign(browser, pages, matrices, setting):
    """The page's Gotoh gives the compiled aligner's score for every pair."""
    _open(browser, pages[setting])
    sm = matrices[setting]
    page = browser.execute_script(
        "const r = window.archalignReport;"
        "return arguments[0].map(a => arguments[0].map(b => r.align(a, b)))", sm.labels)
    np.testing.assert_allclose(page, sm.scores, rtol=0, atol=1e-9)


def test_page_opens_at_the_shortlists_k_with_a_colour_bar_a_hint_and_a_stable_header(
        browser, matrices, tmp_path):
    from selenium.webdriver.common.by import By

    sm = matrices["default"]
    picks = sm.shortlist(3)
    _open(browser, sm.to_html(tmp_path / "r.html", shortlist=picks, alignments=False))
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # the cut opens where the shortlist was picked: its 3 clusters
    assert browser.find_element(By.ID, "cut").get_attribute("value") == "3"
    assert browser.find_element(By.ID, "cut-status").text.startswith("3 clusters at distance")
    # a colour bar: viridis from dark (lo) to yellow (1), labelled
    bar = browser.find_element(By.ID, "colorbar")
    assert bar.is_displayed()
    pixels = _pixels(bar)[3:-3, 3:-3]  # inside its border
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "the colour bar is blank"
    assert pixels[:, 0].mean(axis=0)[2] > pixels[:, 0].mean(axis=0)[1]  # purple-blue end
    assert pixels[:, -1].mean(axis=0)[0] > 200 and pixels[:, -1].mean(axis=0)[1] > 200
    assert browser.find_element(By.ID, "colorbar-box").text.split() == [
        "0", "1", "normalized", "similarity"]
    # the hint is in view on opening, not below the fold
    hint = browser.find_element(By.ID, "hint")
    assert "Click a cell" in hint.text and browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight", hint)
    # a stable header: what the controls say does not move it, and it stays in view
    header = browser.find_element(By.TAG_NAME, "header")
    height = header.rect["height"]
    browser.find_element(By.ID, "search").send_keys("vit")
    browser.execute_script("const s = document.getElementById('cut'); s.value = '1';"
                           "s.dispatchEvent(new Event('input'))")
    assert browser.find_element(By.ID, "cut-status").text.startswith("1 clusters")
    assert header.rect["height"] == height
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    assert browser.execute_script("return window.scrollY") > 0
    assert browser.execute_script(
        "return document.querySelector('header').getBoundingClientRect().top") == 0
