"""Pro-RandConv: progressive random convolutions, a training-time augmentation.

Paper: Choi, Das, Choi, Yang, Park, Yun, CVPR 2023, "Progressive Random Convolutions for
Single Domain Generalization" (arXiv 2304.00424). RandConv (:mod:`.randconv`) grows its
receptive field with larger kernels, and a large random kernel soon destroys the
digit's shape; Pro-RandConv keeps a small kernel and applies one random block several
times, so the receptive field grows by ``k // 2`` pixels per repetition while the
weight of far pixels falls off, as in a stack of convolutions.

For each training batch, each image with probability ``p`` (default 0.5; ``gate``
below):

* a number of repetitions L is drawn uniformly from 1 .. ``max_repeats`` (the paper's
  L_max; 10 in its digits setting, the default);
* one random block is drawn for the whole batch (every image gets the same weights,
  offsets and affine parameters), and the *same* block is applied L times:

  1. a random k x k convolution, C -> C channels, no bias, zero padding (k = 3, the
     paper's): weights ~ N(0, 1 / (C k^2)) (He's fan-in scale, as RandConv's), each
     multiplied by a Gaussian window ``exp(-(i^2 + j^2) / (2 sigma_g^2))`` over the
     kernel's offsets (i, j), ``sigma_g ~ U(eps, 1)``, which damps the kernel's
     high-frequency noise; a small ``sigma_g`` leaves only the centre tap, a random
     colour mixing;
  2. random deformable offsets: one (dy, dx) per kernel tap and pixel, ~ N(0,
     sigma_d^2), ``sigma_d ~ U(eps, 0.5)`` pixels, which jitter the texture the kernel
     samples (``deform=0`` leaves them out). The deformable convolution is
     ``torchvision.ops.deform_conv2d``'s (bilinear reads, zero outside the image; a test
     checks), computed as one ``grid_sample`` of every tap and a channel mixing: the
     offset field is the batch's, so its sampling grid is built once and reused at
     every repetition, 4 times faster on CPU than ``deform_conv2d`` (one convolution of
     64 digits on 1 thread: 4.2 ms against 18.5 ms);
  3. standardisation of each channel of each image over its H x W pixels (the
     paper's per-channel mean and variance over H and W: no image depends on its
     batch-mates), then a random per-channel affine map ``gamma * z + beta``,
     ``gamma, beta ~ N(0, 0.5^2)``, and tanh, which keeps the values bounded however
     often the block repeats; a negative gamma inverts that channel's contrast.

The first block convolves the *whitened* image ``(x - mean) / std`` (source pixel
statistics), so zero padding pads with the mean pixel, as :class:`~.randconv.RandConv`
does here; later blocks get the previous tanh output, whose midpoint 0 is the padding.
The result, in (-1, 1), is mapped to ``(1 + y) / 2``: an image in (0, 1), the range
every front end (NeuRN, Sobel, ...) expects, so ``neurn+prorandconv`` feeds NeuRN an
image of the usual range.

L_max = 10, k = 3, the block's three steps, one block per batch and its reuse at every
repetition are the paper's. The distributions of sigma_g, gamma and beta above are its
digits setting as described in accounts of the paper; they were not checked against
its text (no network here). Left open, or chosen here: the upper end of ``sigma_d``
(0.5 px) and ``eps`` (0.001); the padding value (the mean pixel); the output range
(mapped back to [0, 1]); and ``p``: 0.5, ``randconv``'s default here, so that the two
differ only in their transform, and half the images stay as clean as the source
validation split that selects the checkpoint (``prorandconv:p=1`` augments them all).

``p`` chooses images (``gate="image"``), where ``randconv`` chooses whole batches as
RandConv's reference code does (``prorandconv:gate=batch`` does that too). The block's
output, (1 + tanh) / 2 of standardised channels, has pixel statistics far from a digit's
(mean about 0.5 against 0.13), and with whole batches BatchNorm's running statistics,
which follow the last few batches, swing between the two kinds: in the reference study
(``benchmarks/reference_study.sh``, 600 steps, seed 0, ``prorandconv:gate=batch``) the
source validation accuracy of the backbones with BatchNorm, measured with those
statistics, wandered between 24 and 76% from one evaluation to the next
(``test_resnet``, ``test_coatnet``) and the runs ended undertrained, while the ConvNet,
without BatchNorm, reached 98.4%. Chosen per image, every batch holds the same mixture
(the README's reference table has the runs). Runs trained with the whole-batch gate
under the name ``prorandconv`` (before the per-image default) are retrained, not
reused: the variant's settings carry a revision (:attr:`neurn.models.Variant.revision`).

In eval mode the module is the identity and leaves its generator untouched;
:func:`neurn.study.engine.evaluate` never applies it. Every draw comes from
``generator``, a CPU ``torch.Generator`` that the run owns and checkpoints, in a fixed
order (the gate: one number per image, or one per batch; then L, sigma_g, weights,
[sigma_d, offsets,] gamma, beta), so a run repeats and resumes bit-identically on any
device; the draws are then copied to the batch's device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from archalign.utils.errors import UsageError
from neurn.data import DIGITS_MEAN, DIGITS_STD
from neurn.fronts.randconv import BatchAugmentation

__all__ = ["ProRandConv"]

_EPS = 1e-3  # lower end of sigma_g and sigma_d: U(0, .) could draw an exact 0
_SIGMA_D_MAX = 0.5  # pixels; upper end of the offsets' standard deviation
_SIGMA_AFFINE = 0.5  # standard deviation of gamma and beta
_NORM_EPS = 1e-5  # a flat channel (a blank image) standardises to 0, not to NaN


class ProRandConv(BatchAugmentation):
    """Progressive random convolutions of a float [0, 1] batch (identity in eval mode).

    Parameters
    ----------
    max_repeats : int
        L_max: each augmented batch goes through its block L ~ U{1, ..., max_repeats}
        times (default 10, the paper's digits setting).
    kernel_size : int
        Odd side k of the random kernel (default 3, the paper's).
    p : float
        Probability that a training image is augmented (default 0.5).
    deform : bool
        Random deformable offsets in each convolution (default True, the paper's block).
    mean, std : tuple of float
        Per-channel statistics that whiten the image before the first block.
    generator : torch.Generator, optional
        Source of every random draw (seed it; default: a fresh CPU generator).
    gate : str
        What ``p`` chooses: ``"image"`` (default) or ``"batch"``
        (:class:`~neurn.fronts.randconv.BatchAugmentation`).

    Shape: (N, len(mean), H, W) -> the same; no parameters.
    """

    example = "prorandconv:p=0.5"

    def __init__(self, max_repeats: int = 10, kernel_size: int = 3, p: float = 0.5,
                 deform: bool = True,
                 mean: tuple[float, ...] = DIGITS_MEAN, std: tuple[float, ...] = DIGITS_STD,
                 generator: torch.Generator | None = None, gate: str = "image") -> None:
        super().__init__(p, mean, std, generator, gate)
        if (isinstance(max_repeats, bool) or not isinstance(max_repeats, int)
                or max_repeats < 1):
            raise UsageError(f"ProRandConv's L is the most times the block repeats and must "
                             f"be an integer >= 1, got {max_repeats!r}; e.g. prorandconv:L=10")
        if (isinstance(kernel_size, bool) or not isinstance(kernel_size, int)
                or kernel_size < 1 or not kernel_size % 2):
            raise UsageError(f"ProRandConv's kernel size must be an odd positive integer (the "
                             f"kernel is centred on the pixel), got {kernel_size!r}; e.g. "
                             f"prorandconv:k=3")
        self.max_repeats = max_repeats
        self.kernel_size = kernel_size
        self.deform = bool(deform)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        repeats = int(torch.randint(1, self.max_repeats + 1, (), generator=self.generator))
        return self.progressive(x, repeats)

    def progressive(self, x: torch.Tensor, repeats: int) -> torch.Tensor:
        """``x`` through one freshly drawn block applied ``repeats`` times: what
        :meth:`forward` does once it has drawn p and L (call it to fix L)."""
        g, k = self.generator, self.kernel_size
        c, (h, w) = x.shape[1], x.shape[-2:]
        sigma_g = _EPS + (1.0 - _EPS) * float(torch.rand((), generator=g))
        taps = torch.arange(k, dtype=torch.float32) - k // 2
        window = torch.exp(-(taps.view(-1, 1) ** 2 + taps.view(1, -1) ** 2)
                           / (2 * sigma_g ** 2))
        weight = (torch.randn(c, c, k, k, generator=g) / math.sqrt(c * k * k) * window).to(x)
        grid = None
        if self.deform:
            sigma_d = _EPS + (_SIGMA_D_MAX - _EPS) * float(torch.rand((), generator=g))
            # one offset field for the batch: every image is deformed alike
            grid = _sampling_grid((sigma_d * torch.randn(1, 2 * k * k, h, w, generator=g)
                                   ).to(x), k)
        gamma = (_SIGMA_AFFINE * torch.randn(1, c, 1, 1, generator=g)).to(x)
        beta = (_SIGMA_AFFINE * torch.randn(1, c, 1, 1, generator=g)).to(x)
        y = (x - self.mean.to(x)) / self.std.to(x)
        for _ in range(repeats):
            y = (F.conv2d(y, weight, padding=k // 2) if grid is None
                 else _deform_conv(y, grid, weight))
            var, mean = torch.var_mean(y, dim=(2, 3), keepdim=True, unbiased=False)
            y = torch.tanh(gamma * (y - mean) / torch.sqrt(var + _NORM_EPS) + beta)
        return (1.0 + y) / 2.0

    def extra_repr(self) -> str:
        return (f"max_repeats={self.max_repeats}, kernel_size={self.kernel_size}, "
                f"p={self.p:g}, deform={self.deform}")


def _sampling_grid(offset: torch.Tensor, k: int) -> torch.Tensor:
    """Where each of the k x k taps of each pixel reads, offsets included, as
    ``grid_sample``'s (1, k^2 H, W, 2) grid; ``offset`` is (1, 2 k^2, H, W) in
    ``deform_conv2d``'s layout, a (dy, dx) pair per tap in row-major order."""
    h, w = offset.shape[-2:]
    taps = torch.arange(k, dtype=offset.dtype, device=offset.device) - k // 2
    dy, dx = torch.meshgrid(taps, taps, indexing="ij")
    rows = torch.arange(h, dtype=offset.dtype, device=offset.device).view(1, h, 1)
    cols = torch.arange(w, dtype=offset.dtype, device=offset.device).view(1, 1, w)
    rows = rows + dy.reshape(-1, 1, 1) + offset[0, 0::2]
    cols = cols + dx.reshape(-1, 1, 1) + offset[0, 1::2]
    # align_corners=False: pixel i's centre lies at (2 i + 1) / size - 1
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], dim=-1)
    return grid.reshape(1, k * k * h, w, 2)


def _deform_conv(y: torch.Tensor, grid: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``deform_conv2d(y, offset, weight, padding=k // 2)`` for the offsets ``grid``
    was built from: every tap read bilinearly (zero outside), then mixed over channels."""
    n, c, h, w = y.shape
    taps = weight.shape[-2] * weight.shape[-1]
    samples = F.grid_sample(y, grid.expand(n, -1, -1, -1), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
    # (N, C, k^2 H, W) is (N, C k^2, H, W) in memory: the mixing is a 1 x 1 convolution
    return F.conv2d(samples.view(n, c * taps, h, w),
                    weight.reshape(weight.shape[0], c * taps, 1, 1))
