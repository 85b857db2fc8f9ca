"""neurn: the NeuRN front-end layer and the digit domains of the NeuRN study.

``NeuRN`` and ``with_neurn`` are the layer and the wrapper; ``neurn.data`` holds the
source and target domains (``neurn.data.domain("mnist")``).
"""
from .front import NeuRNFront, with_neurn
from .layer import NeuRN, neurn_reference, neurn_response

__all__ = ["NeuRN", "NeuRNFront", "neurn_reference", "neurn_response", "with_neurn"]
