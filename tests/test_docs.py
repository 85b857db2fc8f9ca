"""docs/check_links.py, the offline link checker CI runs over the built site, on tiny fake
sites: it must catch a link to a missing page and a link to a missing anchor, and pass
everything that resolves. (The site itself is built in CI, not here: too slow.)"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_checker():
    # docs/ is not a package: load the script as a module from its path
    spec = importlib.util.spec_from_file_location("check_links", ROOT / "docs" / "check_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_links = _load_checker()


def _site(tmp_path: Path, index_body: str) -> Path:
    site = tmp_path / "html"
    (site / "api").mkdir(parents=True)
    (site / "_images").mkdir()
    (site / "_images" / "fig.png").write_bytes(b"\x89PNG")
    (site / "guide.html").write_text(
        '<html><body><h1 id="guide">Guide</h1><section id="the-layer"><p>x</p></section>'
        '<a name="old-anchor"></a><a href="index.html#top">back</a></body></html>')
    (site / "api" / "index.html").write_text(
        '<html><body><dt id="neurn.Study">Study</dt><a href="../guide.html#the-layer">g</a>'
        '</body></html>')
    (site / "index.html").write_text(f'<html><body id="top">{index_body}</body></html>')
    return site


GOOD_LINKS = (
    '<a href="guide.html">page</a>'
    '<a href="guide.html#the-layer">heading</a>'
    '<a href="guide.html#old-anchor">named anchor</a>'
    '<a href="#top">same page</a>'
    '<a href="api/">folder, its index.html</a>'
    '<a href="api/index.html#neurn.Study">API entry</a>'
    '<a href="guide.html?highlight=x#guide">query string</a>'
    '<img src="_images/fig.png">'
    '<link rel="stylesheet" href="https://example.org/missing.css">'
    '<a href="mailto:someone@example.org">mail</a>'
    '<a href="//cdn.example.org/x.js">another host</a>'
)


def test_a_site_whose_links_resolve_passes(tmp_path):
    site = _site(tmp_path, GOOD_LINKS)
    assert check_links.find_broken_links(site) == []
    assert check_links.main([str(site)]) == 0


def test_a_broken_page_link_and_a_broken_anchor_are_caught(tmp_path, capsys):
    site = _site(tmp_path, GOOD_LINKS
                 + '<a href="missing.html">gone</a>'
                 + '<a href="guide.html#the-layr">typo in an anchor</a>'
                 + '<img src="_images/gone.png">')
    broken = check_links.find_broken_links(site)
    assert len(broken) == 3, broken
    assert any("missing.html" in b and "no file" in b for b in broken)
    assert any("guide.html#the-layr" in b and "no anchor #the-layr" in b for b in broken)
    assert any("_images/gone.png" in b for b in broken)
    assert all(b.startswith("index.html:") for b in broken)

    assert check_links.main([str(site)]) == 1
    out = capsys.readouterr()
    assert "missing.html" in out.out and "3 broken internal links" in out.err


def test_a_broken_anchor_in_a_nested_page_is_caught(tmp_path):
    site = _site(tmp_path, GOOD_LINKS)
    (site / "api" / "index.html").write_text(
        '<html><body><dt id="neurn.Study">Study</dt><a href="../guide.html#no-such-section">g</a>'
        '</body></html>')
    assert check_links.find_broken_links(site) == [
        "api/index.html:1: ../guide.html#no-such-section (no anchor #no-such-section in "
        "guide.html)"]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_a_site_that_was_not_built_is_an_error(tmp_path, make, capsys):
    site = tmp_path / "html"
    if make == "empty":
        site.mkdir()
    with pytest.raises(FileNotFoundError):
        check_links.find_broken_links(site)
    assert check_links.main([str(site)]) == 2
    assert "build" in capsys.readouterr().err
