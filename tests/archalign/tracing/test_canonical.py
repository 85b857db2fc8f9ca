"""The canonical-op table (archalign.tracing.canonical): every alias, on a source that
produces it, reads as one token; dropout is not recorded."""
from __future__ import annotations
import pytest
import timm.layers.activations as timm_act
import torch
import torch.nn as nn
import torch.nn.functional as F

from archalign import trace
from archalign.tracing.canonical import CANONICAL_OPS


class Then(nn.Module):
    """A linear layer, then ``fn``: a module, or a function called in this forward."""

    def __init__(self, fn, width=8):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.linear(x))


def Functional(fn):  # noqa: N802 - reads like the module spellings beside it
    return fn


def only_token(fn, size=(4, 8)):
    tokens = trace(Then(fn, size[-1]), size).tokens("full")
    assert len(tokens) == 2, tokens
    return tokens[1]


def _transformers_activations():
    return pytest.importorskip("transformers.activations",
                               reason="the transformers extra is not installed")


GELU = "GELU(approx=none)"
GELU_TANH = "GELU(approx=tanh)"


@pytest.mark.parametrize("make, token", [
    (lambda: nn.GELU(), GELU),
    (lambda: Functional(F.gelu), GELU),
    (lambda: timm_act.GELU(), GELU),
    (lambda: nn.GELU(approximate="tanh"), GELU_TANH),
    (lambda: Functional(lambda x: F.gelu(x, approximate="tanh")), GELU_TANH),
    (lambda: timm_act.GELUTanh(), GELU_TANH),
    (lambda: timm_act.QuickGELU(), "QuickGELU"),
    (lambda: nn.SiLU(), "SiLU"),
    (lambda: Functional(F.silu), "SiLU"),
    (lambda: timm_act.Swish(), "SiLU"),
    (lambda: nn.Mish(), "Mish"),
    (lambda: timm_act.Mish(), "Mish"),
    (lambda: nn.Hardswish(), "Hardswish"),
    (lambda: timm_act.HardSwish(), "Hardswish"),
    (lambda: Functional(F.hardswish), "Hardswish"),
    (lambda: nn.Hardsigmoid(), "Hardsigmoid"),
    (lambda: timm_act.HardSigmoid(), "Hardsigmoid"),
    (lambda: timm_act.Sigmoid(), "Sigmoid"),
    (lambda: nn.Sigmoid(), "Sigmoid"),
    (lambda: timm_act.Tanh(), "Tanh"),
    (lambda: nn.RMSNorm(8, eps=1e-6), "RMSNorm(shape=8,eps=1e-06)"),
    (lambda: Functional(lambda x: F.rms_norm(x, (8,), eps=1e-6)), "RMSNorm(shape=8,eps=1e-06)"),
])
def test_torch_and_timm_spellings(make, token):
    assert only_token(make()) == token


@pytest.mark.parametrize("name, token", [
    ("GELUActivation", GELU), ("GELUTanh", GELU_TANH), ("NewGELUActivation", GELU_TANH),
    ("FastGELUActivation", GELU_TANH), ("QuickGELUActivation", "QuickGELU"),
    ("SiLUActivation", "SiLU"), ("MishActivation", "Mish"),
])
def test_transformers_activation_classes(name, token):
    cls = getattr(_transformers_activations(), name)
    assert only_token(cls()) == token


def test_transformers_rms_norms():
    pytest.importorskip("transformers", reason="the transformers extra is not installed")
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    from transformers.models.t5.modeling_t5 import T5LayerNorm

    for module in (LlamaRMSNorm(8, eps=1e-6), T5LayerNorm(8, eps=1e-6)):
        assert only_token(module) == "RMSNorm(shape=8,eps=1e-06)"


def test_every_table_entry_is_tested_here():
    # a new alias must come with a source that produces it (the lists above)
    tested = {"GELU", "GELUTanh", "QuickGELU", "SiLU", "Swish", "Mish", "Hardswish",
              "HardSwish", "Hardsigmoid", "HardSigmoid", "Sigmoid", "Tanh", "GELUActivation",
              "PytorchGELUTanh", "NewGELUActivation", "FastGELUActivation",
              "QuickGELUActivation", "SiLUActivation", "MishActivation", "T5LayerNorm"}
    assert set(CANONICAL_OPS) == tested
    acts = _transformers_activations()
    if hasattr(acts, "PytorchGELUTanh"):  # an older name of GELUTanh
        assert only_token(acts.PytorchGELUTanh()) == GELU_TANH


def test_flatten_spellings_meet():
    class ConvThen(Then):
        def __init__(self, fn):
            super().__init__(fn)
            self.linear = nn.Conv2d(4, 4, 1)

    module = trace(ConvThen(nn.Flatten(1)), (4, 2, 2)).tokens("full")
    functional = trace(ConvThen(lambda x: torch.flatten(x, 1)), (4, 2, 2)).tokens("full")
    assert module[1] == functional[1] == "Flatten(start=1,end=3)"


def test_dropout_of_any_rate_is_not_recorded():
    from timm.layers import DropBlock2d, DropPath

    model = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Dropout(0.5), nn.Dropout2d(0.2),
                          nn.AlphaDropout(0.1), DropPath(0.3), DropBlock2d(0.1), nn.ReLU())
    t = trace(model, (4, 8, 8))
    assert t.tokens("type") == ["Conv2d", "ReLU"]
    # looked through: the ReLU consumes the conv's output directly
    assert t.calls[1].inputs == (0,)


def test_onnx_gelu_and_flatten_meet_torch():
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from archalign.tracing.onnx_trace import trace_onnx

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Gelu", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 16])],
        initializer=[numpy_helper.from_array(np.zeros((4, 4, 1, 1), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    import tempfile, os  # noqa: E401
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.onnx")
        onnx.save(model, path)
        exported = trace_onnx(path).tokens("full")[1:]
    torch_side = trace(nn.Sequential(nn.Conv2d(4, 4, 1), nn.GELU(), nn.Flatten(1)),
                       (4, 2, 2)).tokens("full")[1:]
    assert exported == torch_side == [GELU, "Flatten(start=1,end=3)"]


def test_bert_and_vit_share_the_encoder_blocks_ops():
    pytest.importorskip("transformers", reason="the transformers extra is not installed")
    from archalign import align_models

    bert, vit = trace("transformers:bert"), trace("vit_base_patch16_224")
    assert "Dropout" not in bert.tokens("type")
    alignment, vocab = align_models(bert, vit)  # the default setting: rolled shape tokens
    pairs = [(vocab.tokens[alignment.a[i]], vocab.tokens[alignment.b[j]])
             for i, j in alignment.path if i >= 0 and j >= 0]
    # the MLP half of the block (LayerNorm, Linear, GELU, Linear) aligns identically;
    # before the table, GELUActivation and BERT's Dropouts made it 4 identical / 17 other
    assert ("GELU", "GELU") in pairs
    assert not any(a != b and "GELU" in (a + b) for a, b in pairs)
    counts = alignment.counts()
    assert counts["identical"] > 5 * counts["substituted"]


def test_module_classes_are_recorded_and_round_trip(tmp_path):
    from archalign import Trace

    t = trace("resnet18")
    assert t.modules[""] == "ResNet" and t.modules["layer1.0"] == "BasicBlock"
    t.save(tmp_path / "t.json")
    assert Trace.load(tmp_path / "t.json").modules == t.modules


def test_torchvision_and_timm_resnet18_give_the_same_tokens():
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed")
    import timm

    ours = trace(torchvision.models.resnet18(weights=None))
    theirs = trace(timm.create_model("resnet18"))
    for granularity in ("type", "shape", "full"):
        assert ours.tokens(granularity) == theirs.tokens(granularity)
