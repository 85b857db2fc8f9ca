"""``python -m archalign.cli``: the ``archalign`` command."""
from __future__ import annotations

import sys

from archalign.cli import main

sys.exit(main())
