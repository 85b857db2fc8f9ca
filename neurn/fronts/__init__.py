"""neurn.fronts: what an image passes through before the backbone (float [0, 1] in, a map out).

Open :mod:`.layer` (the NeuRN layer) first; :mod:`.fixed` holds the classic fixed front
ends, :mod:`.front` the wrapper for any model, :mod:`.randconv` / :mod:`.prorandconv` /
:mod:`.augment` the training-batch augmentations. Nothing here knows of models or the study.
"""
from .augment import CropFlip
from .fixed import LCN, SOBEL_MAX, Gray, Sobel
from .front import FrontEnd, NeuRNFront, with_front, with_neurn
from .layer import NeuRN, neurn_reference, neurn_response
from .prorandconv import ProRandConv
from .randconv import RandConv
from .standardize import FRONT_STATS, Standardize

__all__ = ["CropFlip", "FRONT_STATS", "FrontEnd", "Gray", "LCN", "NeuRN", "NeuRNFront",
           "ProRandConv", "RandConv", "SOBEL_MAX", "Sobel", "Standardize", "neurn_reference",
           "neurn_response", "with_front", "with_neurn"]
