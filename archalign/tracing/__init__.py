"""Stage 1, specs -> Trace: a model, a timm / torchvision / transformers name or an ONNX
file in, a ``Trace`` (the calls one forward pass runs, and their tokens) out. Open
``api.py`` first (``trace``), then ``calls.py``; ``zoo.py`` traces many models, cached.
"""
# The names of the former ``archalign.tracing`` module, which this package replaces.
from __future__ import annotations

from archalign.tracing.api import trace
from archalign.tracing.calls import (DEFAULT_INPUT_SIZE, GRANULARITIES, ROUTES, SCHEMA_VERSION,
                                     Call, Trace, TraceError, TraceFallbackWarning,
                                     UnknownModelError)
from archalign.tracing.leaves import is_leaf_module_class, register_leaf_module

__all__ = [
    "trace", "Trace", "Call", "register_leaf_module", "is_leaf_module_class",
    "TraceError", "TraceFallbackWarning", "UnknownModelError", "GRANULARITIES", "ROUTES",
    "SCHEMA_VERSION", "DEFAULT_INPUT_SIZE",
]
