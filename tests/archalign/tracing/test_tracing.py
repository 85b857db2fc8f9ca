"""Tracing: execution order, functional ops, hyper-parameters, routes and errors."""
from __future__ import annotations
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from archalign.tracing.api import trace
from archalign.tracing.calls import Trace, TraceError, TraceFallbackWarning, UnknownModelError
from archalign.tracing.leaves import register_leaf_module


# --------------------------------------------------------------- a hand-written model
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(8, 8, 1)  # registered first, runs last
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x):
        y = self.act(self.conv(x))
        y = self.act(y)  # the same module, called a second time
        y = y + x  # residual add
        return self.proj(torch.cat([y, x], dim=1)[:, :8])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 4)  # registered first, runs last
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.block = Block()
        self.unused = nn.Conv2d(8, 8, 1)  # registered, never called

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.head(x.mean((2, 3)))


NET_TYPE_TOKENS = ["Conv2d", "Conv2d", "ReLU", "ReLU", "add", "cat", "Conv2d", "mean", "Linear"]


@pytest.fixture(scope="module")
def net_trace():
    return trace(Net(), (3, 16, 16))


def test_execution_order_reuse_add_and_cat(net_trace):
    t = net_trace
    assert t.route == "meta" and t.notes == []
    assert t.tokens() == NET_TYPE_TOKENS
    assert t.tokens("shape") == [
        "Conv2d(k=3,s=2,g=1)", "Conv2d(k=3,s=1,g=dw)", "ReLU", "ReLU", "add", "cat",
        "Conv2d(k=1,s=1,g=1)", "mean", "Linear"]
    assert t.tokens("full")[0] == "Conv2d(in=3,out=8,k=3,s=2,p=0,d=1,g=1,bias=True)"
    assert t.tokens("full")[5] == "cat(dim=1,n=2)"
    assert [c.path for c in t] == ["stem", "block.conv", "block.act", "block.act", "block",
                                   "block", "block.proj", "", "head"]
    assert [c.kind for c in t].count("function") == 3
    assert t[0].shape == (1, 8, 7, 7)


def test_data_flow_edges(net_trace):
    g = net_trace.graph
    assert g.number_of_nodes() == len(net_trace) == 9
    # add(y, x) consumes the second ReLU and the stem; cat([y, x]) the add and the stem;
    # the slice [:, :8] between cat and proj is looked through.
    assert sorted(g.edges) == [(0, 1), (0, 4), (0, 5), (1, 2), (2, 3), (3, 4), (4, 5),
                               (5, 6), (6, 7), (7, 8)]
    assert g.nodes[4]["op"] == "add" and g.nodes[4]["path"] == "block"


def test_user_module_is_left_untouched():
    model = Net().train()
    model.block.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, (3, 16, 16))
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert model.training and not model.block.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_functional_ops_inside_leaf_are_not_recorded_and_registered_leaves():
    class Swishy(nn.Module):  # a leaf: no children; its F calls are its own business
        def forward(self, x):
            return F.relu(x) * torch.sigmoid(x)

    @register_leaf_module
    class Fused(nn.Module):  # has children, registered as one token
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)

        def forward(self, x):
            return self.b(F.gelu(self.a(x)))

    model = nn.Sequential(Swishy(), Fused(), nn.Identity(), nn.Linear(4, 4))
    t = trace(model, (4,))
    assert t.tokens("type") == ["Swishy", "Fused", "Linear"]
    assert [c.path for c in t] == ["0", "1", "3"]


def test_functional_activations_share_module_tokens():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(8, 3, 3, 3))

        def forward(self, x):
            x = F.conv2d(x, self.w, stride=2, padding=1)
            x = F.gelu(F.batch_norm(x, None, None, training=True))
            x = x * 0.5 + 1.0  # scalar arithmetic: not structural
            return F.adaptive_avg_pool2d(x, 1).flatten(1)

    t = trace(Functional(), (3, 8, 8))
    assert t.tokens() == ["Conv2d", "BatchNorm2d", "GELU", "AdaptiveAvgPool2d", "Flatten"]
    assert t.tokens("shape")[0] == "Conv2d(k=3,s=2,g=1)"
    assert {c.kind for c in t} == {"function"}


# ------------------------------------------------------------------- timm by name
@pytest.mark.parametrize("name, expected", [
    ("resnet18", {"Conv2d": 20, "BatchNorm2d": 20, "ReLU": 17, "add": 8, "MaxPool2d": 1,
                  "Linear": 1, "scaled_dot_product_attention": 0}),
    # 12 blocks x (qkv, proj, fc1, fc2) + head; 24 residual adds + the position embedding
    ("vit_tiny_patch16_224", {"Conv2d": 1, "scaled_dot_product_attention": 12, "add": 25,
                              "LayerNorm": 25, "GELU": 12, "Linear": 49, "cat": 1}),
    # stem + DS block (dw, 2 SE, pw) + 15 IR blocks (pw, dw, 2 SE, pwl) + head = 81 convs;
    # residual adds in blocks with stride 1 and equal widths: 1+1+2+2+3 = 9; 16 SE gates
    ("efficientnet_b0", {"Conv2d": 81, "BatchNorm2d": 49, "SiLU": 49, "add": 9, "mul": 16,
                         "Sigmoid": 16, "scaled_dot_product_attention": 0}),
    # stem + DS(4) + 10 IR x 3 + 8 SE x 2 + final 1x1 + conv_head = 53; adds 1+2+1+2 = 6
    ("mobilenetv3_small_100", {"Conv2d": 53, "add": 6, "mul": 9, "Hardsigmoid": 9,
                               "Hardswish": 19}),
])
def test_timm_models_have_the_architectures_counts(name, expected):
    t = trace(name)
    assert t.route == "meta" and t.input_size == (3, 224, 224) and t.fused_attn is True
    counts = t.counts()
    assert {op: counts[op] for op in expected} == expected


def test_vit_attention_heads_and_fused_attention_switch():
    from timm.layers import use_fused_attn

    before = use_fused_attn()
    fused = trace("vit_tiny_patch16_224")
    assert fused.tokens("shape").count("scaled_dot_product_attention(heads=3)") == 12
    unfused = trace("vit_tiny_patch16_224", fused_attn=False)
    c = unfused.counts()
    assert (c["scaled_dot_product_attention"], c["matmul"], c["Softmax"]) == (0, 24, 12)
    assert unfused.fused_attn is False and use_fused_attn() == before


def test_family_members_differ_only_below_type_granularity():
    r50, wide, rx = (trace(n) for n in ("resnet50", "wide_resnet50_2", "resnext50_32x4d"))
    assert r50.tokens() == wide.tokens() == rx.tokens()
    assert r50.tokens("shape") == wide.tokens("shape") != rx.tokens("shape")
    assert "Conv2d(k=3,s=1,g=32)" in rx.tokens("shape")
    assert len({tuple(t.tokens("full")) for t in (r50, wide, rx)}) == 3


def test_resnet_downsample_runs_before_the_add():
    # Registration order puts layer2.0.downsample after conv3/bn3; execution runs it
    # before the residual add.
    t = trace("resnet50")
    paths = [c.path for c in t]
    i = paths.index("layer2.0.downsample.0")
    assert paths[i - 1] == "layer2.0.bn3" and t[i + 2].op == "add"
    assert set(t.graph.predecessors(i + 2)) == {i - 1, i + 1}


def test_a_module_built_on_cpu_traces_like_its_name():
    # The user's module keeps its CPU weights; meta stand-ins are swapped in for one pass.
    import timm

    model = timm.create_model("resnet18", pretrained=False)
    t = trace(model)
    assert t.route == "meta" and t.model == "ResNet"
    assert t.tokens("full") == trace("resnet18").tokens("full")
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "efficientnet_b0", "mobilevitv2_050"])
def test_fast_meta_shape_rules_change_nothing(name):
    # The shortcut for slow meta kernels (norms, linear, attention) must give exactly
    # the calls, shapes and edges that running those kernels gives.
    import timm

    from archalign.tracing import routes as _trace_record

    with torch.device("meta"):
        model = timm.create_model(name)
    slow = _trace_record._meta_route(model, (3, 224, 224), fast_meta=False)
    assert _trace_record._meta_route(model, (3, 224, 224)) == slow


def test_fast_meta_lstm_rule_changes_nothing():
    from archalign.tracing import routes as _trace_record

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 16, num_layers=2, proj_size=4, bidirectional=True,
                               batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    model = Seq().to("meta")
    slow = _trace_record._meta_route(model, (5, 8), fast_meta=False)
    assert _trace_record._meta_route(model, (5, 8)) == slow
    assert [c.shape for c in slow] == [(1, 5, 8), (1, 5, 3)]


def test_input_size_override():
    t = trace("resnet18", input_size=(3, 64, 64))
    assert t.input_size == (3, 64, 64) and t[0].shape == (1, 64, 32, 32)


# ---------------------------------------------------------------------- fallbacks
class NeedsValues(Net):
    def forward(self, x):
        n = x.abs().sum().item()  # impossible on meta tensors
        return super().forward(x) * n


class Branches(Net):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x + 1
        return super().forward(x)


def test_meta_failure_falls_back_to_eager_and_says_so():
    with pytest.warns(TraceFallbackWarning, match="fallback route 'eager'"):
        t = trace(NeedsValues(), (3, 16, 16))
    assert t.route == "eager" and t.tokens() == NET_TYPE_TOKENS
    assert "meta route failed" in t.notes[0] and "item()" in t.notes[0]


def test_meta_failure_falls_back_to_fx():
    with pytest.warns(TraceFallbackWarning):
        t = trace(NeedsValues(), (3, 16, 16), routes=("meta", "fx"))
    assert t.route == "fx"
    assert t.tokens()[:len(NET_TYPE_TOKENS)] == NET_TYPE_TOKENS


def test_last_resort_is_registration_order():
    with pytest.warns(TraceFallbackWarning, match="registration"):
        t = trace(Branches().to("meta"), (3, 16, 16))
    assert t.route == "registration" and len(t.notes) == 3
    # registration order, every registered leaf once, no functional ops
    assert t.tokens() == ["Linear", "Conv2d", "Conv2d", "ReLU", "Conv2d", "Conv2d"]
    assert t.graph.number_of_edges() == len(t) - 1


# ------------------------------------------------------------------------- errors
def test_unknown_model_name_lists_closest_names():
    with pytest.raises(UnknownModelError, match="resnet50"):
        trace("resnt50")
    with pytest.raises(UnknownModelError, match="trace_many"):
        trace("resnet*")


def test_empty_model_is_an_error():
    with pytest.raises(TraceError, match="empty"):
        trace(nn.Sequential())


def test_bad_arguments():
    t = Trace("m", "meta", [])
    with pytest.raises(ValueError, match="'type', 'shape', 'full'"):
        t.tokens("kernel")
    with pytest.raises(ValueError, match="route"):
        trace(Net(), routes=("magic",))
    with pytest.raises(ValueError, match="batch"):
        trace(Net(), input_size=(0, 16))
    with pytest.raises(TypeError, match="nn.Module"):
        trace(42)


# ------------------------------------------------------------------------- JSON
def test_json_round_trip_and_schema_check(net_trace, tmp_path):
    path = tmp_path / "net.json"
    net_trace.save(path)
    back = Trace.load(path)
    assert back.calls == net_trace.calls
    assert back.tokens("full") == net_trace.tokens("full")
    assert back.input_size == (3, 16, 16) and back.route == "meta"
    d = json.loads(path.read_text())
    d["schema"] = 0
    with pytest.raises(ValueError, match="schema version"):
        Trace.from_dict(d)


def test_tokens_are_stable_strings():
    # Pinned strings: a change here changes every cache and every similarity matrix.
    t = trace("efficientnet_b0")
    assert t.tokens("full")[:3] == [
        "Conv2d(in=3,out=32,k=3,s=2,p=1,d=1,g=1,bias=False)",
        "BatchNorm2d(c=32,eps=1e-05,affine=True)",
        "SiLU",
    ]
    assert t.tokens("shape")[3] == "Conv2d(k=3,s=1,g=dw)"
    assert "mean(dim=2x3,keepdim=True)" in t.tokens("full")
