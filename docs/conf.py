"""Sphinx configuration of the documentation site.

Build (warnings are errors, as CI builds it)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python docs/check_links.py docs/_build/html

The notebooks in ``notebooks/`` (``docs/notebooks`` is a link to that folder) are executed
at every build with the tiny budget the tests use (``NEURN_NOTEBOOK_SMOKE=1``: about a
minute for both on 2 cores). ``NEURN_NOTEBOOK_SMOKE= python -m sphinx ...`` (set, empty)
renders the study notebook at the README main job's budget instead, which takes minutes.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# autodoc imports the packages from this checkout even when they are not installed, and
# the notebook kernels, which inherit the environment, do the same
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
os.environ.setdefault("NEURN_NOTEBOOK_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from archalign import __version__

project = "archalign + neurn"
author = "the archalign + neurn developers"
copyright = "2026, the archalign + neurn developers"
release = __version__
version = __version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# Markdown: the pages are plain GitHub Markdown, so that they read the same on GitHub;
# headings get anchors so that links such as page.md#section resolve in both places.
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 4

# Notebooks: committed without outputs, executed at every build so the site shows what the
# code does today; one cell may take as long as the tests allow it.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True

# API reference: NumPy-style sections, signatures as written.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# "Attributes" sections as fields: as directives they would describe a dataclass field a
# second time, beside the entry autodoc writes for it
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"archalign + neurn {version}"
html_copy_source = False
html_show_sourcelink = False


def _drop_type_docstring(app, what, name, obj, options, lines):
    # a constant without a doc-comment would show its type's docstring (dict's, tuple's);
    # the API pages say what each constant is instead
    own_type_doc = type(obj).__doc__
    if what == "data" and own_type_doc and " ".join(" ".join(lines).split()) == " ".join(
            own_type_doc.split()):
        lines.clear()


def setup(app):
    # before napoleon (priority 500) turns the NumPy sections into fields
    app.connect("autodoc-process-docstring", _drop_type_docstring, priority=400)
