"""``convnet``: the digits backbone of the single-source digits domain-generalisation papers.

conv(64, 5 x 5) - ReLU - maxpool 2 - conv(128, 5 x 5) - ReLU - maxpool 2 - fc 1024 - ReLU -
fc 1024 - ReLU - fc ``num_classes``, on 3 x 32 x 32 images. The convolutions have no
padding, so the maps go 32 -> 28 -> 14 -> 10 -> 5 and the first fc layer takes
128 * 5 * 5 = 3,200 inputs; 4,547,466 parameters with 10 classes.

This is the network of

* Volpi et al., NeurIPS 2018, "Generalizing to Unseen Domains via Adversarial Data
  Augmentation" (ADA), which introduced the MNIST -> SVHN / MNIST-M / SYN / USPS protocol;
* Qiao et al., CVPR 2020, "Learning to Learn Single Domain Generalization" (M-ADA);
* Xu et al., ICLR 2021, "Robust and Generalizable Visual Representation Learning via
  Random Convolutions" (RandConv; ``DigitNet`` in its code),

so results with it compare with those papers' tables. No batch norm and no dropout, as in
them; weights use PyTorch's default initialisation.
"""
from __future__ import annotations

from torch import nn

__all__ = ["ConvNet"]


class ConvNet(nn.Module):
    """The ADA / M-ADA / RandConv digits CNN; ``(N, in_chans, 32, 32) -> (N, num_classes)``."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(128 * 5 * 5, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
            nn.Linear(1024, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
