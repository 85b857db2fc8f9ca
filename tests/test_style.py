"""One house style for both packages (issue 27): ruff with the configuration in
pyproject.toml, and NumPy docstring sections rather than Google ones."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Raises|Yields|Attributes|Example|"
                            r"Examples|Note|Notes):\s*$", re.MULTILINE)


def _ruff() -> list[str] | None:
    if shutil.which("ruff"):
        return ["ruff"]
    try:
        import ruff  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "ruff"]


def test_ruff_is_clean():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    done = subprocess.run([*ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_docstring_sections_are_numpy_style():
    google = [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
              for package in ("archalign", "neurn")
              for path in sorted((ROOT / package).rglob("*.py"))
              for text in [path.read_text()]
              for m in GOOGLE_SECTION.finditer(text)]
    assert not google, f"Google-style sections (write NumPy sections): {google}"
