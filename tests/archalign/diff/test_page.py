"""archalign.diff as HTML: a page that loads nothing, a notebook fragment whose styles
stay inside it, every text escaped, and, in a real browser (``browser``:
tests/archalign/conftest.py), changed fields readable on load and blocks that open."""
from __future__ import annotations
import html
import re

import pytest

from archalign import Trace
from archalign.diffing import diff
from archalign.tracing.calls import Call

EVIL_A, EVIL_B = '<script>alert("a")</script>', "b & <i>"


@pytest.fixture(scope="module")
def resnext(tmp_path_factory):
    return diff("resnet50", "resnext50_32x4d", cache_dir=tmp_path_factory.mktemp("traces"))


def _trace(model: str, k: int, mode: str) -> Trace:
    """A two-block model whose label, module class and a field value need escaping."""
    calls = [Call(0, "module", "Conv2d", "stem", {"k": 3, "g": 1})]
    for b in range(2):
        calls += [Call(len(calls), "module", "Conv2d", f"blk.{b}.conv", {"k": k, "g": 1}),
                  Call(len(calls) + 1, "module", "Pad", f"blk.{b}.pad", {"mode": mode})]
    modules = {"": "Net", "blk": "Sequential", "blk.0": "<Evil>", "blk.1": "<Evil>"}
    return Trace(model=model, route="meta", calls=calls, num_params=10, modules=modules)


@pytest.fixture(scope="module")
def evil():
    return diff(_trace(EVIL_A, 1, "<x>"), _trace(EVIL_B, 3, "<y>"))


def test_page_is_self_contained(resnext):
    page = resnext.to_html()
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\b(src|href|url)\s*[=(]", page)  # no file or host to fetch
    assert "<link" not in page and "<script" not in page and "@import" not in page


def test_page_shows_header_and_changed_fields(resnext):
    page = resnext.to_html()
    for line in resnext.summary:
        assert html.escape(line) in page
    assert "0.9355" in page and "25,557,032" in page and "25,028,904" in page
    # conv2 of every Bottleneck run: groups 1 left, 32 right, marked on both sides
    assert page.count('<mark class="fa" data-field="g">g=1</mark>') == 8
    assert page.count('<mark class="fb" data-field="g">g=32</mark>') == 8
    assert "Bottleneck ×5 (10 layers each)" in page
    assert page.count('<details class="block change" open>') == 12  # 4 stages, 8 runs
    assert '<details class="block keep">' in page  # each downsample, closed


def test_fragment_is_scoped(resnext):
    fragment = resnext._repr_html_()
    assert fragment.startswith('<div class="archalign-diff">') and "<html" not in fragment
    assert "<body" not in fragment and "<script" not in fragment
    css = re.search(r"<style>(.*?)</style>", fragment, re.DOTALL)[1]
    rules = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", rules)
                 for s in block.split(",")]
    assert selectors and all(s.startswith(".archalign-diff") for s in selectors), selectors
    assert resnext.summary[1] in fragment


def test_everything_is_escaped(evil):
    for text in (evil.to_html(), evil._repr_html_()):
        assert "<script" not in text and "<i>" not in text and "<Evil>" not in text
        assert "<x>" not in text and "<y>" not in text
        assert html.escape(EVIL_A) in text and html.escape(EVIL_B) in text
        assert "&lt;Evil&gt; ×2" in text
        assert '<mark class="fa" data-field="mode">mode=&lt;x&gt;</mark>' in text
        assert '<mark class="fb" data-field="k">k=3</mark>' in text


def test_identical_models_fold_to_one_row():
    d = diff(_trace("a", 1, "zeros"), _trace("b", 1, "zeros"))
    page = d.to_html()
    assert d.is_empty and "no difference in structure" in page
    assert page.count('<details class="fold">') == 1 and "2 unchanged (5 layers" in page


# ------------------------------------------------------------------------ in a browser
@pytest.fixture(scope="module")
def opened(browser, resnext, tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "diff.html"
    path.write_text(resnext.to_html(), encoding="utf-8")
    browser.get(path.as_uri())
    return browser


def test_page_loads_clean_and_offline(opened):
    errors = [e for e in opened.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert opened.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_changed_fields_show_without_hovering(opened):
    from selenium.webdriver.common.by import By

    for side, text in (("fa", "g=1"), ("fb", "g=32")):
        marks = opened.find_elements(By.CSS_SELECTOR, f'mark.{side}[data-field="g"]')
        assert len(marks) == 8 and {m.text for m in marks} == {text}
        assert all(m.is_displayed() for m in marks)
        # highlighted: a background of its own, not the row's
        assert {m.value_of_css_property("background-color") for m in marks}.isdisjoint(
            {"rgba(0, 0, 0, 0)", "rgb(255, 245, 194)"})


def test_kept_block_opens_on_click(opened):
    from selenium.webdriver.common.by import By

    block = next(b for b in opened.find_elements(By.CSS_SELECTOR, "details.block.keep")
                 if "layer3.0.downsample" in b.find_element(By.TAG_NAME, "summary").text)
    inner = block.find_elements(By.CSS_SELECTOR, ":scope > div.row")
    assert block.get_attribute("open") is None and len(inner) == 2
    assert not any(row.is_displayed() for row in inner)
    summary = block.find_element(By.TAG_NAME, "summary")
    opened.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    assert block.get_attribute("open") is not None
    assert all(row.is_displayed() for row in inner)
    assert "layer3.0.downsample.0" in inner[0].text and "Conv2d(k=1,s=2,g=1)" in inner[0].text
