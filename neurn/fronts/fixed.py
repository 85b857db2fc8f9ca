"""The classic fixed front ends that NeuRN is compared with: ``Gray``, ``Sobel``, ``LCN``.

Like :class:`~neurn.fronts.layer.NeuRN` they have no parameters and no buffers, treat every
sample on its own (a sample's output never depends on its batch-mates), keep the
input's shape and dtype (``Gray`` and ``Sobel`` need 3 channels) and run on the meta
device. Each receives the raw image in [0, 1], as NeuRN does; :mod:`neurn.models`
decides what happens to the output.

* ``Gray``: luminance ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), copied to the three
  channels the backbone expects. The output is still an image in pixel units, so the
  model normalises it with the source statistics like the baseline's input: on grey
  digits it equals the baseline's input (to rounding), and the two differ only on
  colour targets.
* ``Sobel``: gradient magnitude ``sqrt(Gx^2 + Gy^2)`` of the luminance with the 3 x 3
  Sobel kernels, reflect padding (same H x W, no edge along the border), divided by
  ``SOBEL_MAX = sqrt(20)``: the largest magnitude the kernels reach on a [0, 1] image
  (for the 3 x 3 patch ``[[0, 0, a], [0, ., 1], [b, 1, 1]]`` with ``|a - b| = 1``: Gx, Gy =
  3 +- 1), so the output lies in [0, 1]; a vertical step from 0 to 1 gives 4 / sqrt(20)
  beside the step. Its gradient is 0, not NaN, where the magnitude is 0.
* ``LCN``: local contrast normalisation of Jarrett et al., ICCV 2009, "What is the Best
  Multi-Stage Architecture for Object Recognition?": subtract the mean over the k x k
  window *and all channels* (as Jarrett does, so colour contrast between channels
  survives), then divide by ``max(std, eps)`` over the same window and channels (a box
  window, not Jarrett's Gaussian). ``kernel_size`` (odd, >= 3, default 9) and reflect
  padding as NeuRN; ``eps`` (default 0.05, in [0, 1] input units, about 13 grey levels)
  is the contrast floor: a window flatter than that is divided by ``eps``, so sensor or
  JPEG noise (std ~0.01) is not blown up to the contrast of a stroke, and a constant
  image gives exact zeros. Output: zero local mean, about unit local std, fed to the
  backbone as it is.

As in NeuRN, the arithmetic runs in float32 (float64 for float64 input), never in 16 bits,
and the result is cast back to the input's dtype.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archalign.utils.errors import UsageError

__all__ = ["Gray", "LCN", "SOBEL_MAX", "Sobel", "lcn", "luminance", "sobel_magnitude"]

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601
#: The largest Sobel gradient magnitude the 3 x 3 kernels reach on a [0, 1] image (the
#: module docstring gives the patch); ``Sobel`` divides by it, so its map lies in [0, 1].
SOBEL_MAX = math.sqrt(20.0)


def _check_batch(x: torch.Tensor, name: str, rgb: bool, half: int) -> None:
    if x.dim() != 4:
        raise UsageError(f"{name} expects an (N, C, H, W) batch, got shape {list(x.shape)}; "
                         f"for a single image use x.unsqueeze(0)")
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point tensor in [0, 1], got {x.dtype}; "
                        f"convert images with x.float() / 255")
    if rgb and x.shape[1] != 3:
        raise UsageError(f"{name} expects RGB input (3 channels), got {x.shape[1]}; copy a "
                         f"grey image to 3 channels with x.expand(-1, 3, -1, -1)")
    if x.shape[2] <= half or x.shape[3] <= half:
        raise UsageError(f"{name}: reflect padding needs H and W > {half}, got "
                         f"{x.shape[2]} x {x.shape[3]}")


def _working(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _reflect(x: torch.Tensor, half: int) -> torch.Tensor:
    return F.pad(x, [half, half, half, half], mode="reflect")


def luminance(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luminance of an (N, 3, H, W) batch as (N, 1, H, W), in the working dtype."""
    _check_batch(x, "luminance", rgb=True, half=0)
    r, g, b = _working(x).unbind(1)
    wr, wg, wb = LUMA_WEIGHTS
    return (wr * r + wg * g + wb * b).unsqueeze(1)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 Sobel gradient magnitude of the luminance / ``SOBEL_MAX``, (N, 1, H, W)."""
    _check_batch(x, "Sobel", rgb=True, half=1)
    p = _reflect(luminance(x), 1)
    # Separable kernels: [1, 2, 1] across the derivative, [-1, 0, 1] along it. Slices
    # rather than conv2d keep the arithmetic in float32 under autocast.
    down = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    across = p[..., :-2] + 2 * p[..., 1:-1] + p[..., 2:]
    gx = down[..., 2:] - down[..., :-2]
    gy = across[..., 2:, :] - across[..., :-2, :]
    return torch.linalg.vector_norm(torch.stack([gx, gy]), dim=0) / SOBEL_MAX


def lcn(x: torch.Tensor, kernel_size: int = 9, eps: float = 0.05) -> torch.Tensor:
    """Jarrett's local contrast normalisation over k x k windows and all channels."""
    half = kernel_size // 2
    _check_batch(x, "LCN", rgb=False, half=half)
    work = _working(x)
    # Shifting each sample by its mean changes no output but keeps E[x^2] - E[x]^2
    # from cancelling on bright images.
    work = work - work.mean(dim=(1, 2, 3), keepdim=True)
    mean = F.avg_pool2d(_reflect(work.mean(1, keepdim=True), half), kernel_size, stride=1)
    mean_sq = F.avg_pool2d(_reflect(work.square().mean(1, keepdim=True), half),
                           kernel_size, stride=1)
    # Flooring the variance (not the std) keeps sqrt's infinite slope at 0 out of the
    # backward pass.
    std = (mean_sq - mean.square()).clamp(min=eps * eps).sqrt()
    return ((work - mean) / std).to(x.dtype)


class Gray(nn.Module):
    """BT.601 luminance copied to 3 channels: (N, 3, H, W) -> (N, 3, H, W), in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return luminance(x).to(x.dtype).repeat(1, 3, 1, 1)


class Sobel(nn.Module):
    """Sobel gradient magnitude of the luminance in [0, 1], copied to 3 channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sobel_magnitude(x).to(x.dtype).repeat(1, 3, 1, 1)


class LCN(nn.Module):
    """Local contrast normalisation (Jarrett et al. 2009) over k x k x C windows.

    Parameters
    ----------
    kernel_size
        odd window size k >= 3 (default 9).
    eps
        contrast floor in input units (default 0.05); see the module docstring.

    Shape: (N, C, H, W) -> (N, C, H, W), any C; H and W > k // 2 (reflect padding).
    """

    def __init__(self, kernel_size: int = 9, eps: float = 0.05) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
            raise TypeError(f"LCN kernel_size must be an int, got {kernel_size!r}")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise UsageError(f"LCN kernel_size must be odd and >= 3 (the window is centred "
                             f"on the pixel), got {kernel_size}; use 3, 5, 7, 9, ...")
        if not eps > 0:
            raise UsageError(f"LCN eps must be > 0 (it keeps flat images at 0, not NaN), "
                             f"got {eps!r}")
        self.kernel_size = kernel_size
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lcn(x, self.kernel_size, self.eps)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, eps={self.eps:g}"
