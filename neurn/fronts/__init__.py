"""neurn.fronts: what an image passes through before the backbone (float [0, 1] in, a map out).

Open :mod:`.layer` (the NeuRN layer) first; :mod:`.fixed` holds the classic fixed front
ends, :mod:`.front` the wrapper for any model, :mod:`.randconv` / :mod:`.prorandconv` /
:mod:`.augment` the training-batch augmentations. Nothing here knows of models or the study.
"""
from __future__ import annotations

from neurn.fronts.augment import CropFlip
from neurn.fronts.fixed import LCN, SOBEL_MAX, Gray, Sobel
from neurn.fronts.front import FrontEnd, NeuRNFront, with_front, with_neurn
from neurn.fronts.layer import NeuRN, neurn_reference, neurn_response
from neurn.fronts.prorandconv import ProRandConv
from neurn.fronts.randconv import RandConv
from neurn.fronts.standardize import FRONT_STATS, Standardize

__all__ = ["CropFlip", "FRONT_STATS", "FrontEnd", "Gray", "LCN", "NeuRN", "NeuRNFront",
           "ProRandConv", "RandConv", "SOBEL_MAX", "Sobel", "Standardize", "neurn_reference",
           "neurn_response", "with_front", "with_neurn"]
