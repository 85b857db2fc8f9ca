"""NeuRN: the neuron-response normalisation layer.

Paper: "NeuRN: Neuro-inspired Domain Generalization for Image Classification",
arXiv 2505.06881 (https://arxiv.org/abs/2505.06881).

For every channel, the k x k patch centred on each pixel (stride 1) gives a population
standard deviation sigma (1/k^2, not 1/(k^2 - 1)); the output is sigma divided by its
maximum c, so values lie in [0, 1]. It is a fixed contrast / structure map with no
learned weights that sits in front of a network.

Implementation choices:

* ``per="image"`` (default) takes one max over all channels of a sample, so the
  relative strength of the channels survives and colour outputs stay coloured, as in
  the paper's figures; ``per="channel"`` takes one max per channel of a sample, so every
  channel reaches 1. The max is always per sample, never across the batch: a sample's
  output does not depend on its batch-mates.
* ``kernel_size`` must be odd (the patch is centred on the pixel) and >= 3 (a 1 x 1
  patch has zero std everywhere). The default 3 follows the paper at 28-32 px.
* ``padding="reflect"`` (default) keeps H x W without inventing structure. Zero padding
  would put an edge along every border whose sigma can exceed anything inside the
  image and then, through the max, dim the whole output; replicate padding repeats the
  border pixel and so biases border sigmas low. Reflect needs H, W > k // 2;
  ``"replicate"`` and ``"zeros"`` are available for smaller images or comparisons.
* ``eps`` (default 1e-5, in input units) is the contrast floor: a patch with
  sigma <= eps counts as flat (sigma = 0 there, with a zero gradient instead of the
  infinite one of sqrt at 0), and an image whose max sigma is <= eps maps to zeros, so
  a constant image gives 0s, never NaN. One 8-bit grey level in a 3 x 3 patch is a
  sigma of about 1.2e-3 on a [0, 1] scale, so the floor is far below any real contrast
  yet well above round-off. Scale invariance is exact for every patch above the floor.
* Fast path (`neurn_response`): box sums by separable cumulative sums, so the cost is
  O(H W) whatever k. var = E[x^2] - E[x]^2 cancels badly in float32 (a flat region
  after a bright stroke comes out as sigma ~ 1e-3 noise), so each channel's mean is
  subtracted first (sigma is shift-invariant) and the sums and the variance are taken
  in float64, then clamped at 0 against negative round-off; sqrt and the max run in
  float32 (float64 for float64 input). Statistics are thus never computed in
  float16/bfloat16, under autocast or not; the output has the input's dtype. On CPU
  the batch runs in groups of samples whose float64 intermediates (~1 MiB) stay in
  cache, about 3x faster than whole-batch passes; samples are independent, so the
  values are the same.
* Reference (`neurn_reference`): unfolded patches, two-pass mean and population std,
  divide by the max. Quadratic in k and memory hungry; used to check the fast path.
* No parameters and no buffers; TorchScript- and ``torch.compile``-friendly; runs on
  the meta device (no data-dependent control flow), which architecture tracing uses.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archalign.utils.errors import UsageError

__all__ = ["NeuRN", "neurn_response", "neurn_reference"]

def _check_args(x: torch.Tensor, kernel_size: int, per: str, padding: str) -> None:
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise UsageError(
            "kernel_size must be an odd integer >= 3 (the patch is centred on the "
            "pixel), got " + str(kernel_size) + "; use 3, 5, 7, ...")
    if per != "image" and per != "channel":
        raise UsageError("per must be 'image' or 'channel', got '" + per + "'")
    if padding != "reflect" and padding != "replicate" and padding != "zeros":
        raise UsageError(
            "padding must be 'reflect', 'replicate' or 'zeros', got '" + padding + "'")
    if x.dim() != 4:
        raise UsageError(
            "NeuRN expects an (N, C, H, W) batch, got a tensor of shape "
            + str(list(x.shape)) + "; for a single image use x.unsqueeze(0)")
    if not x.is_floating_point():
        raise TypeError(
            "NeuRN expects a floating-point tensor, got " + str(x.dtype)
            + "; convert images with x.float() / 255")
    half = kernel_size // 2
    if padding == "reflect" and (x.shape[2] <= half or x.shape[3] <= half):
        raise UsageError(
            "reflect padding needs H and W > kernel_size // 2 = " + str(half)
            + ", got H x W = " + str(x.shape[2]) + " x " + str(x.shape[3])
            + "; use a smaller kernel_size or padding='replicate'")


def _pad(x: torch.Tensor, kernel_size: int, padding: str) -> torch.Tensor:
    half = kernel_size // 2
    mode = "constant"
    if padding == "reflect":
        mode = "reflect"
    elif padding == "replicate":
        mode = "replicate"
    return F.pad(x, [half, half, half, half], mode=mode)


def _divide_by_max(sigma: torch.Tensor, per: str, eps: float) -> torch.Tensor:
    dims: list[int] = [1, 2, 3] if per == "image" else [2, 3]
    peak = sigma.amax(dim=dims, keepdim=True)
    # Every sigma <= eps is already 0, so clamping the max at eps only matters for
    # flat images: 0 / eps = 0 instead of 0 / 0 = NaN.
    return sigma / peak.clamp(min=eps)


def _box_sums(t: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """k x k window sums of ``t`` whose first row and column are zeros ("valid" size).

    Separable cumulative sums: a window sum is a difference of two prefix sums, so
    the cost does not depend on k. The leading zero row / column makes the first
    window's difference start from 0 without another padding pass.
    """
    prefix = t.cumsum(dim=-1)
    rows = prefix[..., kernel_size:] - prefix[..., :-kernel_size]
    prefix = rows.cumsum(dim=-2)
    return prefix[..., kernel_size:, :] - prefix[..., :-kernel_size, :]


def neurn_response(x: torch.Tensor, kernel_size: int = 3, per: str = "image",
                   eps: float = 1e-5, padding: str = "reflect") -> torch.Tensor:
    """NeuRN output of an (N, C, H, W) batch by box filters, O(H W) whatever k.

    Returns a tensor of x's shape and dtype with values in [0, 1]; see the module
    docstring for what each argument means.
    """
    _check_args(x, kernel_size, per, padding)
    chunk_elements = 131072  # about 1 MiB per float64 intermediate
    samples_per_chunk = max(1, chunk_elements // (x.shape[1] * x.shape[2] * x.shape[3]))
    if x.device.type != "cpu" or samples_per_chunk >= x.shape[0]:
        return _response(x, kernel_size, per, eps, padding)
    # On CPU, groups of samples whose float64 intermediates stay in cache run about
    # 3x faster than passes over the whole batch (measured at 32 and 224 px). Samples
    # are independent, so this changes no value.
    return torch.cat([_response(part, kernel_size, per, eps, padding)
                      for part in x.split(samples_per_chunk)])


def _response(x: torch.Tensor, kernel_size: int, per: str, eps: float,
              padding: str) -> torch.Tensor:
    # Centre after padding so that "zeros" still pads with the image's zeros; the
    # subtraction promotes to float64, the precision of every sum below.
    mean = x.mean(dim=[2, 3], keepdim=True, dtype=torch.float64)
    centred = F.pad(_pad(x, kernel_size, padding) - mean, [1, 0, 1, 0])
    area = float(kernel_size * kernel_size)
    sums = _box_sums(centred, kernel_size)
    sums_sq = _box_sums(centred * centred, kernel_size)
    # area * var = sum(x^2) - sum(x)^2 / area (E[x^2] - E[x]^2 times area), clamped at
    # 0 against negative round-off; float64 has done its job once it is formed.
    area_var = torch.addcmul(sums_sq, sums, sums, value=-1.0 / area).clamp(min=0.0)
    if x.dtype != torch.float64:
        area_var = area_var.to(torch.float32)
    floor = eps * eps * area  # sigma <= eps counts as flat
    # Clamping before sqrt keeps its infinite slope at 0 out of the backward pass.
    sigma = torch.sqrt(area_var.clamp(min=floor)).masked_fill(area_var <= floor, 0.0)
    sigma = sigma / float(kernel_size)
    return _divide_by_max(sigma, per, eps).to(x.dtype)


def neurn_reference(x: torch.Tensor, kernel_size: int = 3, per: str = "image",
                    eps: float = 1e-5, padding: str = "reflect") -> torch.Tensor:
    """NeuRN output computed directly from unfolded k x k patches (for tests).

    Two-pass mean and population std in at least float32; memory grows with k^2.
    """
    _check_args(x, kernel_size, per, padding)
    n, c, h, w = x.shape
    work = x if x.dtype == torch.float64 else x.to(torch.float32)
    patches = F.unfold(_pad(work, kernel_size, padding), kernel_size)
    patches = patches.view(n, c, kernel_size * kernel_size, h * w)
    mu = patches.mean(dim=2, keepdim=True)
    sigma = (patches - mu).square().mean(dim=2).sqrt().view(n, c, h, w)
    sigma = torch.where(sigma > eps, sigma, torch.zeros_like(sigma))
    return _divide_by_max(sigma, per, eps).to(x.dtype)


class NeuRN(nn.Module):
    """NeuRN front end: local k x k std per channel, divided by its per-sample max.

    Parameters
    ----------
    kernel_size
        odd patch size k >= 3 (default 3, the paper's choice at 28-32 px).
    per
        ``"image"`` (one max over all channels of a sample, default) or
        ``"channel"`` (one max per channel of a sample).
    eps
        contrast floor in input units; patches with std <= eps count as flat and
        a flat image gives zeros.
    padding
        ``"reflect"`` (default, keeps H x W), ``"replicate"`` or ``"zeros"``.

    Shape: (N, C, H, W) -> (N, C, H, W), any C; values in [0, 1]. No parameters.
    """

    def __init__(self, kernel_size: int = 3, per: str = "image", eps: float = 1e-5,
                 padding: str = "reflect") -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
            raise TypeError(f"kernel_size must be an int, got {kernel_size!r}")
        if not eps > 0:
            raise UsageError(f"eps must be > 0 (it keeps flat images at 0, not NaN), got {eps!r}")
        # Validate the scalar arguments now, on a dummy batch, so a bad layer fails
        # where it is built rather than at its first forward.
        _check_args(torch.zeros(1, 1, kernel_size, kernel_size), kernel_size, per, padding)
        self.kernel_size = kernel_size
        self.per = per
        self.eps = float(eps)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return neurn_response(x, self.kernel_size, self.per, self.eps, self.padding)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, per={self.per!r}, eps={self.eps:g}, "
                f"padding={self.padding!r}")
