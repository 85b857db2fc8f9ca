"""neurn: the NeuRN front-end layer and the digit domains of the NeuRN study.

``NeuRN`` and ``with_neurn`` are the layer and the wrapper; ``neurn.data`` holds the
source and target domains (``neurn.data.domain("mnist")``).
"""
from .front import NeuRNFront, with_neurn
from .layer import NeuRN, neurn_reference, neurn_response

__all__ = ["NeuRN", "NeuRNFront", "neurn_reference", "neurn_response", "with_neurn"]

# the study (issue 6): models, training engine, grid of runs, result tables
from .models import build_model, parse_variant, plan_model  # noqa: E402
from .study import Study, StudyResults  # noqa: E402

__all__ += ["Study", "StudyResults", "build_model", "parse_variant", "plan_model"]
