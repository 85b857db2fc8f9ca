"""neurn.study: model names, variants, seeds and domains in; trained runs and their tables out.

Open :mod:`.grid` first (``Study``: the protocol, and one module per step of it);
``Study.run`` returns :class:`~neurn.results.StudyResults`.
"""
from __future__ import annotations

from neurn.results import StudyResults
from neurn.study.data import FULLSCALE_TARGETS, OFFLINE_TARGETS
from neurn.study.grid import Study, StudyInterrupted
from neurn.study.settings import load_models
from neurn.study.verify import DamagedFileWarning, DamagedRunWarning

__all__ = ["DamagedFileWarning", "DamagedRunWarning", "Study", "StudyInterrupted",
           "StudyResults", "load_models",
           "OFFLINE_TARGETS", "FULLSCALE_TARGETS"]
