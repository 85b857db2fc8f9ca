"""neurn: the NeuRN front-end layer, and the study that tests it on unseen domains.

Data flow: ``data/`` (domains) -> ``fronts/`` (NeuRN, other front ends) -> ``models/``
(backbone + variant) -> ``study/`` (the grid of runs) -> ``results/`` (tables, plots); open
``fronts/layer.py`` for the layer, ``study/grid.py`` for the study, ``cli.py`` for ``neurn``.
"""
from __future__ import annotations

from neurn.fronts import NeuRN, NeuRNFront, neurn_reference, neurn_response, with_neurn

__all__ = ["NeuRN", "NeuRNFront", "neurn_reference", "neurn_response", "with_neurn"]

# the study (issue 6): models, training engine, grid of runs, result tables
from neurn.models import build_model, parse_variant, plan_model  # noqa: E402
from neurn.study import Study, StudyResults  # noqa: E402

__all__ += ["Study", "StudyResults", "build_model", "parse_variant", "plan_model"]
