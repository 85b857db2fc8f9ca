"""``python -m archalign.cli``: the ``archalign`` command."""
import sys

from archalign.cli import main

sys.exit(main())
