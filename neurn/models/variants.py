"""Variants: the input pipeline a backbone gets, parsed from ``"name"`` or ``"name:key=value,..."``.

Every front end gets the raw image in [0, 1] (N, 3, 32, 32) and runs before any resize, so
its ``k`` means what it means at 28-32 px. What reaches the backbone is then
standardised with *fixed* constants: the mean / std of that input over the source's
train split (data seed 0), measured once and written below (:data:`INPUT_STATS`; a
test recomputes them). They are constants, never batch statistics, so every sample
is still treated on its own. NeuRN's and Sobel's maps lie in [0, 1] but are mostly 0
(NeuRN: mean 0.18, std 0.30). Fed raw, ViT-Tiny with NeuRN reached 36% source
validation after 300 steps; standardised, 68%, beside the baseline's 66% (same seed
and recipe; ``benchmarks/bench_input_scale.py``): raw, the backbone's input had a
third of the scale that timm's initialisations and our learning rates assume:

- ``baseline``: pixels -> standardise -> resize if planned -> backbone.
- ``neurn`` (options ``k``, ``per``, ``eps``, ``padding``; :mod:`neurn.fronts.layer`): NeuRN ->
  standardise (the k = 3 map's statistics, for every k) -> resize -> backbone.
- ``gray`` (:class:`~neurn.fronts.Gray`): luminance -> standardise as pixels -> resize
  -> backbone; on grey digits it equals the baseline's input (to rounding).
- ``sobel`` (:class:`~neurn.fronts.Sobel`): gradient magnitude in [0, 1] ->
  standardise -> resize -> backbone.
- ``lcn`` (options ``k`` = 9, ``eps`` = 0.05; :class:`~neurn.fronts.LCN`): local contrast
  normalisation, already zero-mean and about unit-variance -> resize -> backbone.
- ``randconv`` (options ``p`` = 0.5, ``k`` = 1/3/5/7 (odd sizes joined by ``/``),
  ``mix`` = 0, ``clamp`` = 0, ``gate`` = batch (``p`` chooses batches; ``image``: images);
  :mod:`neurn.fronts.randconv`): the baseline's pipeline, trained
  on random convolutions of its batches; :func:`~neurn.models.build_augmentation` makes
  the augmentation, which only the training loop applies, so evaluation sees clean images.
- ``prorandconv`` (options ``L`` = 10, ``k`` = 3, ``p`` = 0.5, ``deform`` = 1, ``gate`` =
  image;
  :mod:`neurn.fronts.prorandconv`): as ``randconv``, with progressive random
  convolutions (Choi et al., CVPR 2023): one small random block per batch, applied 1
  to L times (uniform).
- ``<front>+<augmentation>`` (``neurn+randconv``, ``sobel+prorandconv``,
  ``neurn:k=5+randconv:p=1``, ...): a front end (``neurn``, ``gray``, ``sobel``,
  ``lcn``) trained on an augmentation (``randconv``, ``prorandconv``), each with its
  own options. The augmentation changes the raw training image, then the front end and
  its standardisation run as in the front end's own variant. Either order is accepted;
  the canonical name puts the front end first (``randconv+neurn`` is
  ``neurn+randconv``). ``std`` belongs to the front end (``neurn:std=0+randconv``). Two
  front ends, two augmentations, three parts or a ``baseline`` part are refused in one
  line naming what to write instead (``baseline+randconv`` is ``randconv``). The
  :class:`Variant` of a combination is its front end's (``kind``, ``options``,
  ``standardise``: ``kernel_size`` is NeuRN's k) with the augmentation's in
  ``augmentation``; run folders keep the ``+`` (``convnet__neurn+randconv__seed0``).

Every kind but ``lcn`` also takes ``std`` (default 1); ``std=0`` feeds the backbone
the front end's output raw, as the first release did (``neurn:std=0`` is the
ablation in ``benchmarks/bench_input_scale.py``). Flags take ``0`` / ``1`` (or
``true`` / ``false``). ``kernel_size`` is accepted for ``k``. :data:`KINDS` is the table
of kinds: their options, front end, augmentation and standardisation constants.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple
from collections.abc import Callable

import torch
from torch import nn

from archalign.utils.errors import UsageError
from neurn.fronts import FRONT_STATS, LCN, Gray, NeuRN, ProRandConv, RandConv, Sobel

__all__ = ["INPUT_STATS", "KINDS", "Variant", "as_variant", "check_variant",
           "measure_input_stats", "parse_variant"]

# what the backbone sees -> (mean, std) over the source train split (4,000 MNIST digits,
# data seed 0), the same for every channel; tests/neurn/test_neurn_data.py recomputes them
INPUT_STATS = FRONT_STATS


class _Option(NamedTuple):
    keyword: str  # the front end's / augmentation's constructor argument
    parse: Callable[[str], object]
    what: str  # "<value> is not <what>"
    show: Callable[[object], str] = str  # the value in the canonical variant name


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true"):
        return True
    if text.lower() in ("0", "false"):
        return False
    raise UsageError(text)


def _flag_option(keyword: str) -> _Option:
    return _Option(keyword, _flag, "0 or 1", lambda flag: str(int(flag)))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UsageError(text)
    return value


_KERNEL_SIZE = _Option("kernel_size", int, "an integer")
_EPS = _Option("eps", _finite, "a finite number")
_STD = _flag_option("standardise")  # handled by build_model, not passed to the front end
_GATE = _Option("gate", str, "'batch' or 'image'")
_KERNEL_SIZES = _Option("kernel_sizes", lambda text: tuple(int(k) for k in text.split("/")),
                        "odd sizes joined by '/', e.g. 1/3/5/7",
                        lambda sizes: "/".join(map(str, sizes)))


@dataclass(frozen=True)
class _Kind:
    """A variant kind: its options, and what it adds to the baseline's pipeline."""

    options: dict[str, _Option] = field(default_factory=dict)
    front: Callable[..., nn.Module] | None = None  # runs on the raw [0, 1] image
    augment: Callable[..., nn.Module] | None = None  # training batches only
    stats: str | None = None  # key of INPUT_STATS standardising the backbone's input
    # which behaviour the kind's name stands for, where one name has meant two (recorded
    # in the run settings only then): prorandconv chose whole batches until revision 2
    revision: int | None = None



KINDS: dict[str, _Kind] = {
    "baseline": _Kind(stats="pixels"),
    "neurn": _Kind({"k": _KERNEL_SIZE, "per": _Option("per", str, "a string"), "eps": _EPS,
                    "padding": _Option("padding", str, "a string")}, front=NeuRN,
                   stats="neurn"),
    "gray": _Kind(front=Gray, stats="pixels"),
    "sobel": _Kind(front=Sobel, stats="sobel"),
    "lcn": _Kind({"k": _KERNEL_SIZE, "eps": _EPS}, front=LCN),
    "randconv": _Kind({"p": _Option("p", _finite, "a finite number"), "k": _KERNEL_SIZES,
                       "mix": _flag_option("mix"), "clamp": _flag_option("clamp"),
                       "gate": _GATE},
                      augment=RandConv, stats="pixels"),
    "prorandconv": _Kind({"L": _Option("max_repeats", int, "an integer"), "k": _KERNEL_SIZE,
                          "p": _Option("p", _finite, "a finite number"),
                          "deform": _flag_option("deform"), "gate": _GATE},
                         augment=ProRandConv, stats="pixels", revision=2),
}
_ALIASES = {"kernel_size": "k"}


@dataclass(frozen=True)
class Variant:
    """A parsed variant: its canonical ``name``, its ``kind`` (a key of the variant table,
    ``"baseline"``, ``"neurn"``, ``"gray"``, ``"sobel"``, ``"lcn"``, ``"randconv"``,
    ``"prorandconv"``) and the keyword arguments of its front end or augmentation
    (``options``). A combination (``"neurn+randconv"``) has its front end's kind, options
    and ``standardise``, and its augmentation's own :class:`Variant` in ``augmentation``
    (None otherwise)."""

    name: str
    kind: str
    options: dict[str, object] = field(default_factory=dict)
    standardise: bool = True  # ``std=0``: the backbone gets the front end's output raw
    augmentation: Variant | None = None

    @property
    def neurn_kwargs(self) -> dict[str, object]:
        """The NeuRN layer's keyword arguments (empty unless ``kind == "neurn"``)."""
        return dict(self.options) if self.kind == "neurn" else {}

    @property
    def kernel_size(self) -> int | None:
        """NeuRN's k (the results' ``kernel_size`` column); None for other kinds."""
        return self.options.get("kernel_size", 3) if self.kind == "neurn" else None

    @property
    def revision(self) -> int | None:
        """Which behaviour the name stands for, where one name has meant two; recorded in
        the run settings (so in the hash) only then. ``prorandconv`` chose whole batches
        at first and chooses images since revision 2: its earlier runs are retrained."""
        parts = [self] + ([self.augmentation] if self.augmentation else [])
        return max((KINDS[v.kind].revision for v in parts if KINDS[v.kind].revision),
                   default=None)

    @property
    def effective(self) -> tuple:
        """What the variant does: its kind, every option of its front end or augmentation
        with the defaults filled in, ``std``, and a combination's augmentation's. Two
        spellings of one variant (``neurn`` and ``neurn:k=3``, ``randconv+neurn`` and
        ``neurn+randconv``) have the same; a study refuses to train both."""
        kind = KINDS[self.kind]
        build = kind.front or kind.augment
        options = {}
        if build is not None:
            bound = inspect.signature(build).bind_partial(**self.options)
            bound.apply_defaults()
            options = bound.arguments
        augmentation = self.augmentation
        return (self.kind, tuple(sorted((k, repr(v)) for k, v in options.items())),
                self.standardise, None if augmentation is None else augmentation.effective)


def _option_table(kind: _Kind) -> dict[str, _Option]:
    """The options a kind accepts: its own, plus ``std`` where its input is standardised."""
    return {**kind.options, "std": _STD} if kind.stats is not None else dict(kind.options)


def _variant_help() -> str:
    with_options = "; ".join(f"{name}: {', '.join(_option_table(kind))}"
                             for name, kind in KINDS.items() if _option_table(kind))
    return (f"use one of {', '.join(map(repr, KINDS))}, with options as "
            f"'name:key=value,key=value' ({with_options}), e.g. 'neurn:k=5', 'lcn:k=7', "
            f"'randconv:k=1/3/5/7,p=0.5,mix=1', or a front end and an augmentation joined "
            f"by '+', e.g. 'neurn+randconv'")


# "+" starts a part only before a kind's name, so "eps=1e+3" stays one option
_JOIN = re.compile(r"\+(?=\s*[A-Za-z])")
_FRONTS = [name for name, kind in KINDS.items() if kind.front is not None]
_AUGMENTS = [name for name, kind in KINDS.items() if kind.augment is not None]


def parse_variant(spec: str) -> Variant:
    """Parse ``"baseline"``, ``"neurn:k=5,per=channel"``, ``"lcn:k=7"``,
    ``"randconv:k=3/5,p=1,mix=1"``, ``"neurn+prorandconv:L=5"``, ... (see the module
    docstring for every kind, option and combination). The front end / augmentation is
    built once here, so a bad value fails with its own message before any training."""
    parts = [part.strip() for part in _JOIN.split(str(spec).strip())]
    if len(parts) == 1:
        return _parse_part(spec, parts[0])
    names = [part.partition(":")[0].strip().lower() for part in parts]
    for name in names:
        if name not in KINDS:
            raise UsageError(f"unknown variant {name!r} in {spec!r}; {_variant_help()}")
    if "baseline" in names and len(parts) == 2:
        base, other = (parts if names[0] == "baseline" else parts[::-1])
        std = base.partition(":")[2].strip()
        fix = other + ("," if ":" in other else ":") + std if std else other
        raise UsageError(f"variant {spec!r}: the baseline is the plain image and combines "
                         f"with nothing; write {fix!r}")
    fronts = [part for part, name in zip(parts, names) if name in _FRONTS]
    augments = [part for part, name in zip(parts, names) if name in _AUGMENTS]
    if len(fronts) != 1 or len(augments) != 1 or len(parts) != 2:
        what = (f"{len(parts)} parts" if len(parts) != 2 else
                "two front ends" if len(fronts) == 2 else "two augmentations")
        raise UsageError(f"variant {spec!r} has {what}; combine one front end "
                         f"({', '.join(_FRONTS)}) with one augmentation "
                         f"({', '.join(_AUGMENTS)}), e.g. 'neurn+randconv'")
    front = _parse_part(spec, fronts[0])
    augmentation = _parse_part(spec, augments[0], combined=True)
    return replace(front, name=f"{front.name}+{augmentation.name}", augmentation=augmentation)


def _parse_part(spec: str, text: str, combined: bool = False) -> Variant:
    """One kind and its options; ``combined``: the augmentation of a combination, whose
    ``std`` is the front end's."""
    name, _, options = text.partition(":")
    name = name.strip().lower()
    if name not in KINDS:
        raise UsageError(f"unknown variant {spec!r}; {_variant_help()}")
    kind = KINDS[name]
    table = dict(kind.options) if combined else _option_table(kind)
    if options.strip() and not table:
        raise UsageError(f"variant {spec!r}: {name!r} takes no options; write {name!r}")
    kwargs: dict[str, object] = {}
    shown: dict[str, str] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if combined and key == "std":
            raise UsageError(f"variant {spec!r}: std sets the front end's standardisation; "
                             f"write it on the front end, e.g. 'neurn:std=0+{name}'")
        if not eq or key not in table:
            raise UsageError(f"variant {spec!r}: bad option {item!r}; write key=value with "
                             f"key in {list(table)}")
        option = table[key]
        try:
            kwargs[option.keyword] = option.parse(value.strip())
        except ValueError:
            raise UsageError(f"variant {spec!r}: {key}={value.strip()!r} is not "
                             f"{option.what}") from None
        shown[key] = option.show(kwargs[option.keyword])
    standardise = kwargs.pop(_STD.keyword, True)
    build = kind.front or kind.augment
    if build is not None:
        try:
            build(**kwargs)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"variant {spec!r}: {exc}") from None
    canonical = name + ":" + ",".join(f"{k}={v}" for k, v in shown.items()) if shown else name
    return Variant(canonical, name, kwargs, standardise)


def check_variant(variant, img_size: int) -> None:
    """``ValueError`` when the variant's front end cannot take ``img_size`` images (NeuRN's
    and LCN's reflect padding needs a side > k // 2): found on one blank image, before a
    study trains anything."""
    variant = as_variant(variant)
    front = KINDS[variant.kind].front
    if front is None:
        return
    try:
        with torch.no_grad():
            front(**variant.options)(torch.zeros(1, 3, img_size, img_size))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"variant {variant.name!r} cannot run on {img_size} px images: "
                         f"{exc}") from None


def measure_input_stats(images: torch.Tensor) -> dict[str, tuple[float, float]]:
    """:data:`INPUT_STATS` for other data: the (mean, std) of what each standardised kind
    hands the backbone, over ``images`` (float [0, 1], N x 3 x H x W, source-train
    images only), each front end with its default options."""
    stats = {}
    with torch.no_grad():
        for key, front in (("pixels", None), ("neurn", NeuRN()), ("sobel", Sobel())):
            out = images if front is None else front(images)
            stats[key] = (round(float(out.mean()), 4), round(float(out.std()), 4))
    return stats


def as_variant(variant) -> Variant:
    return variant if isinstance(variant, Variant) else parse_variant(variant)
