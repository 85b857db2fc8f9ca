"""``python -m neurn`` and ``neurn --version``, as a newcomer first tries them."""
from __future__ import annotations

import subprocess
import sys

from archalign._version import __version__


def test_python_dash_m_neurn_is_the_command():
    done = subprocess.run([sys.executable, "-m", "neurn", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == f"neurn {__version__}"
    done = subprocess.run([sys.executable, "-m", "neurn", "domains", "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("usage: neurn domains")
