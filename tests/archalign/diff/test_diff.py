"""archalign.diff: the rolled structure, the edit script and its laws (empty on a model
and itself, mirrored when swapped, applied to A it gives B), and the header's words on
pairs whose differences are known and documented."""
from __future__ import annotations
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archalign import Trace
from archalign.cli import main
from archalign.diffing import diff
from archalign.diffing.edits import apply_edits, edit_script, mirror
from archalign.diffing.structure import Block, build_structure, item_from_dict, path_range
from archalign.tracing.calls import Call


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def pair(cache):
    made = {}

    def get(a, b):
        if (a, b) not in made:
            made[a, b] = diff(a, b, cache_dir=cache)
        return made[a, b]
    return get


# ------------------------------------------------------------------ synthetic traces
def synthetic(stages, name="m"):
    """A trace of ``stages``: [(class, [block, ...])], a block being a list of
    (op, params); calls get module paths like a timm model's (``stage1.0.l2``)."""
    calls, modules = [], {"": "Net"}
    calls.append(Call(0, "module", "Conv2d", "stem", {"k": 3}))
    for s, (cls, blocks) in enumerate(stages):
        modules[f"stage{s}"] = "Sequential"
        for b, block in enumerate(blocks):
            modules[f"stage{s}.{b}"] = cls
            for k, (op, params) in enumerate(block):
                calls.append(Call(len(calls), "module", op, f"stage{s}.{b}.l{k}", dict(params)))
            calls.append(Call(len(calls), "function", "add", f"stage{s}.{b}", {}))
    return Trace(model=name, route="meta", calls=calls, num_params=len(calls), modules=modules)


layer = st.tuples(st.sampled_from(["Conv2d", "ReLU", "BatchNorm2d"]),
                  st.fixed_dictionaries({"k": st.sampled_from([1, 3])}))
block = st.lists(layer, min_size=1, max_size=3)
stage = st.tuples(st.sampled_from(["Basic", "Bottleneck"]),
                  st.lists(block, min_size=1, max_size=4).map(lambda bs: bs[:1] + bs[1:] * 2))
model = st.lists(stage, min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(model, model)
def test_edit_script_laws_on_random_structures(x, y):
    a, b = build_structure(synthetic(x)), build_structure(synthetic(y))
    forward, backward = edit_script(a, b), edit_script(b, a)
    assert apply_edits(a, forward).key == b.key
    assert apply_edits(b, backward).key == a.key
    assert apply_edits(b, mirror(forward)).key == a.key
    assert mirror(mirror(forward)) == forward
    assert all(e["op"] == "keep" for e in edit_script(a, a))


def test_runs_roll_with_path_ranges():
    blocks = [[("Conv2d", {"k": 3})]] * 5
    s = build_structure(synthetic([("Basic", blocks)]))
    stage = s.children[1]
    assert isinstance(stage, Block) and stage.path == "stage0"
    (run,) = stage.children
    assert (run.name, run.path, run.count) == ("Basic", "stage0.0-4", 5)
    assert path_range("layer3.1-2", "layer3.3") == "layer3.1-3"
    assert path_range("a.x", "a.y") == "a.x..a.y"


def test_a_flat_reading_rolls_layers():
    t = synthetic([("Basic", [[("ReLU", {"k": 1})]] * 3)])
    flat = build_structure(t, hierarchical=False)
    assert all(not isinstance(c, Block) for c in flat.children)
    # stem, then (ReLU add) x3: only back-to-back identical items merge
    assert [c.op for c in flat.children] == ["Conv2d"] + ["ReLU", "add"] * 3
    # back-to-back identical layers do: ReLU ReLU ReLU
    t2 = Trace("m", "meta", [Call(i, "module", "ReLU", f"r{i}", {}) for i in range(3)])
    assert [c.count for c in build_structure(t2).children] == [3]


# ------------------------------------------------------------------ laws on real pairs
@pytest.mark.parametrize("a, b", [("resnet50", "resnext50_32x4d"), ("resnet18", "resnet34")])
def test_json_edit_script_applies_and_mirrors(pair, a, b, cache):
    d = pair(a, b)
    data = json.loads(d.to_json())
    start = item_from_dict(data["a"]["structure"])
    end = item_from_dict(data["b"]["structure"])
    assert apply_edits(start, data["edits"]).key == end.key
    back = diff(b, a, cache_dir=cache)
    assert back.edits == mirror(d.edits)
    assert apply_edits(end, back.edits).key == start.key
    assert back.to_dict()["summary"] != [] and len(back) == len(d)


def test_a_model_against_itself_is_empty(pair):
    d = pair("resnet18", "resnet18")
    assert d.is_empty and len(d) == 0 and d.similarity == pytest.approx(1.0)
    assert d.summary == ["parameters: 11.7M (the same)"]
    assert "no difference in structure" in str(d)


# ------------------------------------------------------------------ known pairs
def test_resnet18_resnet34_differ_only_in_depth_per_stage(pair):
    d = pair("resnet18", "resnet34")
    assert d.summary[:4] == ["layer1: 2 → 3 blocks", "layer2: 2 → 4 blocks",
                             "layer3: 2 → 6 blocks", "layer4: 2 → 3 blocks"]
    assert d.summary[4:] == ["layers: 69 → 125 (unrolled)", "parameters: 11.7M → 21.8M (×1.86)"]
    assert d.similarity == pytest.approx(1.0)  # rolled: depth is set aside by design
    assert "~   layer3.1 → layer3.1-5  BasicBlock ×1 → ×5" in str(d)


def test_resnet50_resnext50_groups_in_conv2(pair):
    d = pair("resnet50", "resnext50_32x4d")
    assert "Conv2d g: 1 → 32 in conv2 of 16 Bottleneck (layer1-4)" in d.summary
    assert "width ×2 in 80 layers of layer1-4 (conv1, bn1, conv2, bn2, conv3)" in d.summary
    assert not any("blocks" in line for line in d.summary)
    assert "Conv2d(k=3,s=1, in=64→128, out=64→128, g=1→32)" in str(d)


def test_resnet50_wide_resnet50_2_is_width(pair):
    d = pair("resnet50", "wide_resnet50_2")
    assert d.summary[0] == "width ×2 in 80 layers of layer1-4 (conv1, bn1, conv2, bn2, conv3)"
    assert d.summary[1].startswith("parameters: 25.6M → 68.9M") and len(d.summary) == 2


def test_resnet50_resnet101_names_the_stage_that_deepens(pair):
    d = pair("resnet50", "resnet101")
    assert d.summary[0] == "layer3: 6 → 23 blocks"
    assert [line for line in d.summary if "blocks" in line] == ["layer3: 6 → 23 blocks"]


def test_vit_small_and_deit_small_are_identical(pair):
    d = pair("vit_small_patch16_224", "deit_small_patch16_224")
    assert d.is_empty and d.summary == ["parameters: 22.1M (the same)"]


def test_bert_roberta(pair):
    pytest.importorskip("transformers", reason="the transformers extra is not installed")
    d = pair("transformers:bert", "transformers:roberta")
    # default configs: RoBERTa's vocabulary, and position ids computed from the input
    # ids (padding_idx), which is one more op in the embeddings
    assert "Embedding num: 30522 → 50265 at embeddings.word_embeddings" in d.summary
    assert any(line.startswith("inserted: mul") and "at embeddings" in line
               for line in d.summary)
    changed = {e["a"] for e in d.changes if e["op"] == "change"}
    assert changed == {"embeddings", "embeddings.word_embeddings"}


def test_torch_model_and_its_onnx_export_are_identical(tmp_path, cache):
    pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript "
                                             "(the onnx extra)")
    import warnings

    import timm
    import torch

    model = timm.create_model("resnet18").eval()
    path = tmp_path / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=True,
                          verbose=False)
    d = diff(model, path, cache_dir=cache)
    assert d.is_empty and "as exported" in d.setting
    assert "module paths differ" in str(d)
    assert not diff(model, path, as_exported=False, cache_dir=cache).is_empty


# ------------------------------------------------------------------ text and CLI
def test_colour_only_when_asked(pair):
    d = pair("resnet18", "resnet34")
    assert "\x1b[" not in d.to_text() and "\x1b[33m~" in d.to_text(color=True)


def test_cli_text_json_and_errors(tmp_path, capsys, cache):
    assert main(["diff", "resnet18", "resnet34", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "layer3: 2 → 6 blocks" in out and "\x1b[" not in out  # piped: no colour
    target = tmp_path / "d.json"
    assert main(["diff", "resnet18", "resnet34", "--format", "json", "--out", str(target),
                 "--cache-dir", str(cache)]) == 0
    data = json.loads(target.read_text())
    assert data["summary"][0] == "layer1: 2 → 3 blocks"
    assert main(["diff", "resnet18", "resnt34", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resnt34" in err


@pytest.mark.parametrize("a, b, lines", [
    ("efficientnet_b0", "efficientnet_b1",  # compound scaling: depth ×1.1 per stage
     ["blocks.0: 1 → 2 blocks", "blocks.3: 3 → 4 blocks", "blocks.6: 1 → 2 blocks"]),
    ("mobilenetv2_100", "mobilenetv2_140",  # width ×1.4, rounded to multiples of 8
     ["width ×1.333 to ×1.5 (by layer) in 110 layers of conv_stem, bn1, blocks, conv_head, "
      "bn2, classifier (conv_dw, bn1, conv_pw, bn2, conv_pwl, bn3)"]),
    ("vit_small_patch16_224", "vit_base_patch16_224",  # 384 -> 768 wide, 6 -> 12 heads
     ["width ×2 in 75 layers of patch_embed, blocks, norm, head (proj, norm1, qkv, norm2, "
      "fc1, fc2)",
      "scaled_dot_product_attention heads: 6 → 12 in attn of 12 Attention (blocks)"]),
    ("convnext_tiny", "convnext_small", ["stages.2.blocks: 9 → 27 blocks"]),
    ("vit_base_patch16_224", "vit_base_patch16_384",  # one structure, a bigger input
     ["input: 3x224x224 → 3x384x384"]),
    ("vit_base_patch16_224", "vit_base_patch32_224",
     ["Conv2d k: 16 → 32 at patch_embed.proj", "Conv2d s: 16 → 32 at patch_embed.proj"]),
    ("resnet50", "seresnet50", ["inserted: SEModule block ×16 at layer1.0.se, layer1.1.se, "
                                "layer2.0.se and 5 more"]),
    ("resnet50", "resnet50d",  # ResNet-D: a deep stem, average-pool downsampling
     ["removed: Conv2d at conv1",
      "inserted: Sequential block at conv1; AvgPool2d ×3 at layer2.0.downsample.0, "
      "layer3.0.downsample.0, layer4.0.downsample.0",
      "Conv2d s: 2 → 1 in downsample.1 of 3 Sequential (layer2-4)"]),
])
def test_more_known_pairs(pair, a, b, lines):
    d = pair(a, b)
    for line in lines:
        assert line in d.summary


def test_a_stage_that_deepens_is_one_line(pair):
    # Swin's blocks alternate shifted windows, so they do not roll: the 12 extra blocks
    # are insertions, which the stage's depth line already says
    d = pair("swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224")
    assert d.summary[0] == "layers.2.blocks: 6 → 18 blocks"
    assert not any(line.startswith("inserted") for line in d.summary)
