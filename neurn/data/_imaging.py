"""Batch image operations shared by the generated domains.

Arrays are float32 (N, C, H, W) in [0, 1] unless said otherwise. Geometry goes through
torch's ``affine_grid`` / ``grid_sample`` on the whole batch at once, which is what
keeps building a domain to a fraction of a second.
"""
from __future__ import annotations

import hashlib
import io
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

__all__ = ["digit_hash", "resize", "to_uint8", "warp", "gaussian_blur", "jpeg",
           "photo_patches", "random_colours", "PHOTOS"]

# Public-domain / CC0 photos bundled inside scikit-image (no download).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel",
          "camera", "coins", "hubble_deep_field")


def digit_hash(raw: np.ndarray) -> np.uint64:
    """Stable 64-bit hash of a raw digit's pixels (its ``origins`` entry)."""
    digest = hashlib.blake2b(np.ascontiguousarray(raw, dtype=np.uint8).tobytes(),
                             digest_size=8).digest()
    return np.frombuffer(digest, dtype=np.uint64)[0]


def resize(images: np.ndarray, size: int) -> np.ndarray:
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
                        size=(size, size), mode="bilinear", align_corners=False,
                        antialias=True)
    return out.clamp_(0, 1).numpy()


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [0, 1] (N, 1 or 3, 32, 32) -> uint8 (N, 3, 32, 32), grey replicated."""
    out = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(out, 3, axis=1) if out.shape[1] == 1 else out


def warp(images: np.ndarray, rng: np.random.Generator, *, rotate: float = 0.0,
         shear: float = 0.0, scale=(1.0, 1.0), translate: float = 0.0,
         out_size: int = 32, scale_x=None, shift_x=(0.0, 0.0)) -> np.ndarray:
    """Random affine warp per image, drawn uniformly from the given ranges.

    rotate / shear in degrees (+-), scale a (low, high) zoom, translate in output pixels
    (+-), scale_x an optional extra horizontal (low, high) squeeze, shift_x an extra
    horizontal (low, high) offset in output pixels (to place neighbouring digits).
    """
    n = len(images)
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n))
    skew = np.tan(np.deg2rad(rng.uniform(-shear, shear, n)))
    zoom = rng.uniform(*scale, n)
    zoom_x = zoom * (rng.uniform(*scale_x, n) if scale_x is not None else 1.0)
    shift = rng.uniform(-translate, translate, (n, 2))
    shift[:, 0] += rng.uniform(min(shift_x), max(shift_x), n)
    shift *= 2.0 / out_size
    cos, sin = np.cos(angle), np.sin(angle)
    # forward map (input -> output) = rotation @ shear @ zoom; grid_sample wants the
    # inverse (output -> input) in normalised [-1, 1] coordinates.
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0] = cos * zoom_x
    forward[:, 0, 1] = (cos * skew - sin) * zoom
    forward[:, 1, 0] = sin * zoom_x
    forward[:, 1, 1] = (sin * skew + cos) * zoom
    inverse = np.linalg.inv(forward)
    theta = np.concatenate([inverse, -(inverse @ shift[:, :, None])], axis=2)
    grid = F.affine_grid(torch.from_numpy(theta).float(),
                         [n, images.shape[1], out_size, out_size], align_corners=False)
    out = F.grid_sample(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
                        grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.numpy()


def gaussian_blur(images: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    out = images.copy()
    for i, sigma in enumerate(sigmas):
        if sigma > 0.05:
            out[i] = ndimage.gaussian_filter(images[i], sigma=(0, sigma, sigma), mode="nearest")
    return out


def jpeg(images: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """Round-trip each RGB image through PIL's JPEG encoder at the given quality."""
    out = np.empty_like(images)
    for i, (image, quality) in enumerate(zip(to_uint8(images), qualities)):
        buffer = io.BytesIO()
        Image.fromarray(image.transpose(1, 2, 0)).save(buffer, "JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(buffer), dtype=np.float32).transpose(2, 0, 1) / 255.0
    return out


@lru_cache(maxsize=None)
def _photo_pyramid(factors: tuple[float, ...]) -> list[np.ndarray]:
    """Each bundled photo as float RGB (3, H, W), downscaled by each of ``factors``."""
    import skimage.data

    pyramid = []
    for name in PHOTOS:
        photo = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        if photo.ndim == 2:
            photo = np.repeat(photo[:, :, None], 3, axis=2)
        tensor = torch.from_numpy(np.ascontiguousarray(photo[:, :, :3].transpose(2, 0, 1)))
        for factor in factors:
            size = [max(64, int(s * factor)) for s in tensor.shape[1:]]
            pyramid.append(F.interpolate(tensor[None], size=size, mode="bilinear",
                                         antialias=True, align_corners=False)[0].numpy())
    return pyramid


def photo_patches(rng: np.random.Generator, n: int, size: int = 32,
                  factors: tuple[float, ...] = (0.15, 0.25, 0.4)) -> np.ndarray:
    """n random size x size RGB crops of the bundled photos, each from a random photo
    downscaled by a random one of ``factors``. The default zooms out far enough that a
    crop shows texture at about a digit's scale rather than one flat patch of sky."""
    pyramid = _photo_pyramid(tuple(factors))
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i, which in enumerate(rng.integers(len(pyramid), size=n)):
        photo = pyramid[which]
        top = rng.integers(photo.shape[1] - size + 1)
        left = rng.integers(photo.shape[2] - size + 1)
        out[i] = photo[:, top:top + size, left:left + size]
    return out


def random_colours(rng: np.random.Generator, n: int, min_contrast: float = 0.35):
    """Foreground / background RGB pairs whose luminances differ by >= min_contrast."""
    luminance = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    background = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    foreground = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    too_close = np.abs((foreground - background) @ luminance) < min_contrast
    # push a low-contrast foreground to the far end of the luminance range
    dark = (background @ luminance) > 0.5
    foreground[too_close & dark] *= 0.3
    foreground[too_close & ~dark] = 0.7 + 0.3 * foreground[too_close & ~dark]
    return foreground[:, :, None, None], background[:, :, None, None]
