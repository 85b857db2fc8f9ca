"""neurn.models: (backbone name, variant) in, a freshly initialised classifier and its plan out.

Open :mod:`.build` first (``build_model``); :mod:`.variants` parses the input pipelines
(``"neurn:k=5"``), :mod:`.plan` fits an architecture to the image size on the meta device.
"""
from __future__ import annotations

from neurn.models.build import DigitClassifier, build_augmentation, build_model, uses_convolutions
from neurn.models.plan import (
    BUILTIN_MODELS, RESIZE_CANDIDATES, ModelPlan, check_model_name, plan_model)
from neurn.models.variants import (
    INPUT_STATS, Variant, check_variant, measure_input_stats, parse_variant)

__all__ = ["BUILTIN_MODELS", "INPUT_STATS", "DigitClassifier", "ModelPlan", "Variant",
           "build_augmentation", "build_model", "check_model_name", "check_variant",
           "measure_input_stats", "parse_variant", "plan_model", "RESIZE_CANDIDATES",
           "uses_convolutions"]
