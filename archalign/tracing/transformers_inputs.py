"""Dummy forward inputs for Hugging Face ``transformers`` models, from the ``forward``
signature and the config alone.

A shape trace needs inputs of the right kind and size, never meaningful values. The
primary input decides the candidate sets, tried in order by
:func:`archalign.tracing.transformers_trace.trace_transformers`:

* ``input_ids``: 1 x ``TEXT_LENGTH`` tokens (``decoder_input_ids`` too for
  encoder-decoders);
* ``pixel_values``: 1 x C x H x W at the config's ``image_size``; for video models (a
  ``num_frames`` config) and image-pair matchers, 1 x frames x C x H x W;
  ``pixel_values_videos`` always gets the 5-D form;
* patch sequences (Qwen2-VL-style vision towers, which take ``grid_thw``): the image
  cut into ``GRID`` x ``GRID`` flattened patches of C x temporal x patch x patch values;
* ``input_values`` (1 s of 16 kHz audio, as a waveform or a 1 x frames x mel bins
  spectrogram) and ``input_features`` (mel bins x 3,000 frames, frames x features, and
  frames x the input width of the model's first layer, for models that stack frames);
* ``past_values`` (time series): 1 x ``context_length`` x ``num_input_channels``.

Multimodal models get everything they take, then text alone and vision alone. The
inputs that go with a primary one are filled by name (:data:`AUXILIARY`): masks,
``grid_thw``, ``bbox``, the ids of a second text (``qformer_input_ids``), prompts.
Each set is tried again with ``use_cache=False`` where the forward takes it (some
hybrid caches fail on meta). Config values are looked up in the config and then in its
sub-configs (``vision_config``, ``encoder_config``, ...).
"""
from __future__ import annotations

import inspect

from archalign.tracing.calls import TraceError

__all__ = ["TEXT_LENGTH", "GRID", "AUXILIARY", "config_value", "dummy_inputs"]

TEXT_LENGTH = 16
GRID = 8  # patches per side of a patch-sequence image: a multiple of every merge size
SAMPLES = 16_000
FRAMES = 3000  # Whisper's 30 s of mel frames
FEATURE_FRAMES = 400  # frames x features layouts: a multiple of every subsampling factor


def config_value(config, *keys, default=None):
    """The first positive int (or int pair) under any of ``keys`` in ``config``, then in
    its sub-configs, breadth first; ``default`` when none has one."""
    queue, seen = [config], set()
    while queue:
        cfg = queue.pop(0)
        if id(cfg) in seen:
            continue
        seen.add(id(cfg))
        for key in keys:
            value = getattr(cfg, key, None)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and value > 0:
                return value
            if (isinstance(value, (list, tuple)) and len(value) == 2
                    and all(isinstance(v, int) and v > 0 for v in value)):
                return tuple(value)
        queue += [v for v in vars(cfg).values()
                  if hasattr(v, "to_dict") and hasattr(v, "model_type")]
    return default


def _image_size(config) -> tuple[int, int]:
    size = config_value(config, "image_size", default=224)
    return (size, size) if isinstance(size, int) else size


def _first_layer_width(model) -> int | None:
    """``in_features`` of the model's first Linear (registration order): the feature
    width of models that stack frames before projecting them."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            return module.in_features
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
            return None
    return None


def _text(names, config, zeros_long) -> dict:
    if "input_ids" not in names:
        return {}
    text = {"input_ids": zeros_long(1, TEXT_LENGTH)}
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in names:
        text["decoder_input_ids"] = zeros_long(1, TEXT_LENGTH)
    return text


def _vision(names, config, zeros) -> list[dict]:
    channels = config_value(config, "num_channels", "in_channels", default=3)
    height, width = _image_size(config)
    image = zeros(1, channels, height, width)
    frames = config_value(config, "num_frames", default=2)
    clip = zeros(1, frames, channels, height, width)
    sets = []
    if {"grid_thw", "image_grid_thw"} & set(names):
        patch = config_value(config, "patch_size", default=14)
        temporal = config_value(config, "temporal_patch_size", default=1)
        width_ = channels * temporal * (patch if isinstance(patch, int) else patch[0]) ** 2
        sequence = zeros(GRID * GRID, width_)
        key = "hidden_states" if "hidden_states" in names else "pixel_values"
        sets.append({key: sequence})
    if "pixel_values" in names:
        sets += [{"pixel_values": image}, {"pixel_values": clip}]
    if "pixel_values_videos" in names:
        sets.append({"pixel_values_videos": clip})
    return sets


def _audio(model, names, config, zeros) -> list[dict]:
    mels = config_value(config, "num_mel_bins", "feature_projection_input_dim",
                        "input_feat_per_channel", "feature_size", default=80)
    sets = []
    if "input_values" in names:
        sets += [{"input_values": zeros(1, SAMPLES)}, {"input_values": zeros(1, 1, SAMPLES)},
                 {"input_values": zeros(1, config_value(config, "max_length", default=1024),
                                        mels)}]
    if "input_features" in names:
        features = mels * getattr(config, "input_channels", 1)
        sets += [{"input_features": zeros(1, mels, FRAMES)},
                 {"input_features": zeros(1, FEATURE_FRAMES, features)}]
        width = _first_layer_width(model)
        if width and width != features:
            sets.append({"input_features": zeros(1, FEATURE_FRAMES, width)})
    return sets


def _series(names, config, zeros) -> list[dict]:
    if "past_values" not in names:
        return []
    length = config_value(config, "context_length", default=512)
    channels = config_value(config, "num_input_channels", default=1)
    return [{"past_values": zeros(1, length, channels)}, {"past_values": zeros(1, length)}]


def _frames_mask(features, ones):
    """Ones over the frames of ``features``: its last axis in the (mel bins, frames)
    layout, else its second."""
    shape = features.shape
    return ones(shape[0], FRAMES if shape[-1] == FRAMES else shape[1])


# name -> (inputs, helpers) -> tensor or None: what goes with a primary input
AUXILIARY = {
    "grid_thw": lambda x, h: h.grid(x),
    "image_grid_thw": lambda x, h: h.grid(x),
    "merge_sizes": lambda x, h: h.long([1]) if h.grid(x) is not None else None,
    "bbox": lambda x, h: h.zeros_long(1, TEXT_LENGTH, 4) if "input_ids" in x else None,
    "input_features_mask": lambda x, h: (_frames_mask(x["input_features"], h.ones_long)
                                         if "input_features" in x else None),
    "past_values_padding": lambda x, h: (h.zeros(*x["past_values"].shape[:2])
                                         if "past_values" in x else None),
    "freq": lambda x, h: h.zeros_long(1, 1) if "past_values" in x else None,
    "prompt_pixel_values": lambda x, h: x.get("pixel_values"),
    "prompt_masks": lambda x, h: x.get("pixel_values"),
    # LXMERT's 36 detected regions: features and boxes
    "visual_feats": lambda x, h: h.zeros(1, 36, h.value("visual_feat_dim", 2048)),
    "visual_pos": lambda x, h: h.zeros(1, 36, h.value("visual_pos_dim", 4)),
    # OneFormer's task prompt, as long as its config says
    "task_inputs": lambda x, h: h.zeros_long(1, h.value("task_seq_len", TEXT_LENGTH)),
}


class _Helpers:
    def __init__(self, torch, device, dtype, config):
        self.torch, self.device, self.dtype, self.config = torch, device, dtype, config

    def zeros(self, *shape):
        return self.torch.zeros(*shape, device=self.device, dtype=self.dtype)

    def zeros_long(self, *shape):
        return self.torch.zeros(*shape, device=self.device, dtype=self.torch.long)

    def ones_long(self, *shape):
        return self.torch.ones(*shape, device=self.device, dtype=self.torch.long)

    def long(self, values):
        return self.torch.tensor(values, device=self.device, dtype=self.torch.long)

    def value(self, key, default):
        return config_value(self.config, key, default=default)

    def grid(self, inputs):
        """``[[1, GRID, GRID]]`` for a patch sequence: one frame of GRID x GRID patches."""
        first = inputs.get("hidden_states", inputs.get("pixel_values"))
        if first is None or first.dim() != 2:
            return None
        return self.long([[1, GRID, GRID]])


def dummy_inputs(model, config, device, dtype=None) -> list[dict]:
    """Candidate keyword inputs for ``model.forward``, to try in order (see the module
    docstring). Floating inputs are in ``dtype`` (default float32)."""
    import torch

    helpers = _Helpers(torch, device, dtype or torch.float32, config)
    params = inspect.signature(model.forward).parameters
    names = list(params)
    text = _text(names, config, helpers.zeros_long)
    vision = _vision(names, config, helpers.zeros)
    sets = ([{**text, **vision[0]}] if text and vision else []) + ([text] if text else [])
    sets += vision
    if not sets:
        sets = _audio(model, names, config, helpers.zeros) + _series(names, config,
                                                                     helpers.zeros)
    elif "input_features" in names or "input_values" in names:  # audio-text models
        sets += [{**text, **a} for a in _audio(model, names, config, helpers.zeros)]
    if not sets:
        raise TraceError(f"{config.model_type}: no dummy input for its forward("
                         f"{', '.join(names[:6])}, ...); supported: input_ids, "
                         f"pixel_values, pixel_values_videos, input_values, "
                         f"input_features, past_values, patch sequences with grid_thw")
    decoder = getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in names
    if decoder and "input_ids" not in names:  # speech encoder-decoders: Whisper, Moonshine
        sets = [{**x, "decoder_input_ids": helpers.zeros_long(1, TEXT_LENGTH)} for x in sets]
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for inputs in sets:
        for name in names:
            if name in inputs:
                continue
            if name in AUXILIARY:
                value = AUXILIARY[name](inputs, helpers)
            elif name.endswith("input_ids") and name in required:  # a second text
                value = helpers.zeros_long(1, TEXT_LENGTH)
            else:
                continue
            if value is not None:
                inputs[name] = value
    if "use_cache" in names:
        sets += [{**x, "use_cache": False} for x in sets]
    return _unique(sets)


def _unique(sets: list[dict]) -> list[dict]:
    """``sets`` without repeats (same names, same shapes)."""
    seen, out = set(), []
    for inputs in sets:
        key = tuple(sorted((k, tuple(getattr(v, "shape", [v]))) for k, v in inputs.items()))
        if key not in seen:
            seen.add(key)
            out.append(inputs)
    return out
