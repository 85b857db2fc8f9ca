"""neurn.study: model names, variants, seeds and domains in; trained runs and their tables out.

Open :mod:`.grid` first (``Study``: the protocol, and one module per step of it);
``Study.run`` returns :class:`~neurn.results.StudyResults`.
"""
from ..results import StudyResults
from .data import FULLSCALE_TARGETS, OFFLINE_TARGETS
from .grid import Study, StudyInterrupted
from .settings import load_models
from .verify import DamagedFileWarning, DamagedRunWarning

__all__ = ["DamagedFileWarning", "DamagedRunWarning", "Study", "StudyInterrupted",
           "StudyResults", "load_models",
           "OFFLINE_TARGETS", "FULLSCALE_TARGETS"]
