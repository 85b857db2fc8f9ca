"""Pretrained backbones: a timm name (and tag) or a weights file -> :class:`Pretrained`.

Weights come through timm's own loading, so its checkpoint filters (renamed keys,
resampled position embeddings) apply as they do for ``timm.create_model(pretrained=True)``:

* ``load_pretrained("resnet50.a1_in1k")``: the hub when it is reachable, the local
  Hugging Face cache when it is not (``HF_HUB_OFFLINE=1`` skips the network);
* ``load_pretrained("resnet50", weights="r50.safetensors")``: a local ``.safetensors`` /
  ``.pth`` file through ``pretrained_cfg_overlay=dict(file=...)``; ``weights`` may be a
  folder of ``<model>.safetensors`` (or ``.pth``) files, one per model.

The classifier is never kept: a study's classes are not ImageNet's, so the head keeps the
seeded initialisation of the run (:func:`neurn.models.build_model` loads every other
tensor over it). The weights are loaded once per study and shared by its runs; what the
backbone then starts from is recorded as an :class:`Init` (the tag or file, the file's
SHA-256 and a SHA-256 over the loaded tensors), which goes into every run's settings.
Any failure (offline and not cached, a file of another architecture, a truncated file)
is one ``ValueError`` naming the model, the source and the fix.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from archalign.utils.errors import UsageError
from archalign.utils.io import file_sha256

from neurn.models.plan import BUILTIN_MODELS

__all__ = ["Init", "Pretrained", "SCRATCH", "load_pretrained", "pretrained_input_size",
           "pretrained_tag", "refuse_tags", "tensors_sha256", "weights_file"]

PathLike = str | os.PathLike
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class Init:
    """Where a backbone's weights start: ``kind`` "scratch" or "pretrained"; for
    pretrained, the timm ``tag`` (``resnet50.a1_in1k``) or the ``file``, the file's
    SHA-256 and ``weights_sha256`` over the loaded backbone tensors (names and bytes in
    name order, classifier excluded)."""

    kind: str = "scratch"
    tag: str | None = None
    file: str | None = None
    file_sha256: str | None = None
    weights_sha256: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, record: dict | None) -> Init:
        """The :class:`Init` a result records (``to_dict``); scratch when it has none."""
        return cls(**{k: v for k, v in (record or {}).items() if k in cls.__dataclass_fields__})

    def describe(self) -> str:
        if self.kind == "scratch":
            return "from scratch"
        where = (f"file {self.file} (sha256 {str(self.file_sha256)[:12]})" if self.file
                 else f"timm weights {self.tag}")
        return (f"pretrained, {where}, weights sha256 {str(self.weights_sha256)[:12]}; "
                f"classifier re-initialised")


SCRATCH = Init()


@dataclass(frozen=True)
class Pretrained:
    """A model's pretrained backbone tensors (classifier left out), its :class:`Init`,
    and what its weights expect as input (``mean``, ``std`` per channel, ``input_size``)."""

    name: str
    state: dict[str, torch.Tensor]
    init: Init
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int


def pretrained_tag(name: str) -> str | None:
    """The tag of a timm name (``a1_in1k`` of ``resnet50.a1_in1k``), or None."""
    return name.partition(".")[2] or None


def refuse_tags(names) -> None:
    """``ValueError`` for a tagged name (``resnet18.a1_in1k``) in a study from scratch:
    the tag names weights that would silently not be loaded."""
    for name in names:
        tag = pretrained_tag(name)
        if tag is not None:
            raise UsageError(f"model {name!r} names pretrained weights ({tag}) but the study "
                             f"trains from scratch; pass --pretrained (pretrained=True) to "
                             f"load them, or drop the tag ({name.partition('.')[0]!r})")


def pretrained_input_size(name: str) -> int | None:
    """The image side ``name``'s pretrained weights were trained at (from timm's
    pretrained config, nothing loaded); None for a built-in or unknown name."""
    import timm

    if name in BUILTIN_MODELS:
        return None
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # an unknown tag: load_pretrained says so, in its words
        return None
    return int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else None


def weights_file(name: str, weights: PathLike) -> Path:
    """The weights of ``name`` under ``weights``: the file itself, or in a folder
    ``<name>.<suffix>`` then ``<architecture>.<suffix>`` (name without its tag)."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weights file or folder; pass a "
                                f".safetensors / .pth file or a folder of "
                                f"<model>.safetensors files")
    if path.is_file():
        return path
    stems = dict.fromkeys((name, name.partition(".")[0]))
    for stem in stems:
        for suffix in WEIGHT_SUFFIXES:
            if (path / (stem + suffix)).is_file():
                return path / (stem + suffix)
    raise FileNotFoundError(f"{path}: no weights for {name} in this folder (looked for "
                            f"{', '.join(s + '.safetensors' for s in stems)} and the .pth / "
                            f".pt / .bin of those names)")


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over tensor names and raw bytes, in name order (device- and file-format
    independent, so hub and file loads of the same weights agree)."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode() + b"\0")
        h.update(state[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _classifier_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    names = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    return (names,) if isinstance(names, str) else tuple(names)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(" .:")


def load_pretrained(name: str, *, num_classes: int, weights: PathLike | None = None,
                    create_kwargs: dict | None = None) -> Pretrained:
    """Load ``name``'s pretrained weights (timm's, or from ``weights``); see the module
    docstring. ``ValueError`` / ``FileNotFoundError`` in one line on any failure."""
    import timm

    if name in BUILTIN_MODELS:
        raise UsageError(f"{name!r} is a built-in model without published weights; "
                         f"--pretrained / --weights apply to timm models, drop them for "
                         f"{name}")
    path = weights_file(name, weights) if weights is not None else None
    overlay = {"file": str(path)} if path is not None else None
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes,
                                  pretrained_cfg_overlay=overlay, **(create_kwargs or {}))
    except Exception as exc:  # noqa: BLE001 - hub, file and state-dict errors differ
        if path is not None:
            fix = (f"is it a complete .safetensors / .pth of {name.partition('.')[0]} "
                   f"(not another architecture's)?")
            raise UsageError(f"{name}: cannot load the weights file {path}: "
                             f"{_first_line(exc)}; {fix}") from None
        raise UsageError(f"{name}: cannot load timm's pretrained weights "
                         f"({_first_line(exc)}); go online once so timm can download them "
                         f"into the Hugging Face cache, or pass --weights FILE") from None
    prefixes = _classifier_prefixes(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not any(k == p or k.startswith(p + ".") for p in prefixes)}
    cfg = model.pretrained_cfg
    tag = None if path is not None else (
        f"{name.partition('.')[0]}.{cfg['tag']}" if cfg.get("tag") else name)
    init = Init("pretrained", tag=tag, file=os.fspath(path) if path else None,
                file_sha256=file_sha256(path) if path is not None else None,
                weights_sha256=tensors_sha256(state))
    input_size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    return Pretrained(name, state, init, tuple(map(float, cfg.get("mean", (0.5,) * 3))),
                      tuple(map(float, cfg.get("std", (0.5,) * 3))), input_size)
