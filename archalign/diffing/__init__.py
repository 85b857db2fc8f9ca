"""Stage 5, two models -> Diff: what differs between two architectures, in words.

``diff(a, b)`` (``api.py``) traces both, reads each as a rolled module tree
(``structure.py``), aligns the trees into an edit script (``edits.py``), names the
changes (``summary.py``) and renders them as text (``text.py``), JSON or an HTML page
(``page.py``).
"""
from __future__ import annotations

from archalign.diffing.api import FORMATS, Diff, diff

__all__ = ["Diff", "diff", "FORMATS"]
