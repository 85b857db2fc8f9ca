"""``python -m neurn``: the ``neurn`` command."""
from __future__ import annotations

import sys

from neurn.cli import main

sys.exit(main())
