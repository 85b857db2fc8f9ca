"""Check the internal links of the built documentation site, offline.

Walks every HTML file under the site's root and checks each relative ``href`` and ``src``
(links, images, scripts, style sheets): the file it names must exist, and a ``#anchor``
in an HTML file must name an element's ``id`` (or an ``<a name=...>``) there. Links with
a scheme (``https:``, ``mailto:``, ...) are not followed: the check runs without a
network, and what it guards is the site's own structure, which a renamed heading or page
breaks silently.

Usage::

    python docs/check_links.py [SITE_ROOT]     # default: docs/_build/html

Exit status 1 and one line per broken link when any is found, else 0.
"""
from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_ROOT = Path(__file__).resolve().parent / "_build" / "html"
LINK_ATTRIBUTES = ("href", "src")


class _PageParser(HTMLParser):
    """Collects a page's anchors and the links it makes, with their line numbers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.anchors.add(value)
            elif name in LINK_ATTRIBUTES:
                self.links.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def _parse(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def _is_internal(url: str) -> bool:
    parts = urlsplit(url)
    # "//host/path" has no scheme but is still another site
    return not parts.scheme and not parts.netloc


def find_broken_links(root: Path | str) -> list[str]:
    """Every broken internal link of the HTML site under ``root``.

    Parameters
    ----------
    root : path
        The built site's folder (Sphinx's HTML output).

    Returns
    -------
    list of str
        One line per broken link, ``PAGE:LINE: URL (why)`` with ``PAGE`` relative to
        ``root``, sorted; empty when every internal link resolves.

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder, or holds no HTML file (a build that did not run).
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no site at {root}: build it first")
    pages = sorted(root.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no HTML file under {root}: build the site first")
    parsed: dict[Path, _PageParser] = {}

    def page_of(path: Path) -> _PageParser:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    broken = []
    for page in pages:
        for line, url in page_of(page).links:
            if not _is_internal(url):
                continue
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}:{line}: {url}"
            if not target.is_file():
                broken.append(f"{where} (no file {_shown(target, root)})")
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in page_of(target).anchors:
                broken.append(f"{where} (no anchor #{unquote(parts.fragment)} in "
                              f"{_shown(target, root)})")
    return sorted(broken)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # a link that climbs out of the site
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    root = Path(args[0]) if args else DEFAULT_ROOT
    try:
        broken = find_broken_links(root)
    except FileNotFoundError as e:
        print(f"check_links: {e}", file=sys.stderr)
        return 2
    for line in broken:
        print(line)
    pages = len(list(Path(root).rglob("*.html")))
    if broken:
        print(f"check_links: {len(broken)} broken internal links in {pages} pages", file=sys.stderr)
        return 1
    print(f"check_links: every internal link resolves ({pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
