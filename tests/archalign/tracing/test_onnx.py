"""ONNX graphs as traces (archalign.tracing.onnx_trace) and the as-exported reading
(archalign.tokens.folding).

Graphs are built here with ``onnx.helper`` (known token sequences) or exported from
small timm models with ``torch.onnx.export`` (the export and the torch trace must give
the same tokens once both are read as exported).
"""
from __future__ import annotations
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed "
                                          "(pip install 'archalign[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import archalign  # noqa: E402
from archalign.cli import main  # noqa: E402
from archalign.tokens.folding import as_exported
from archalign.tracing.onnx_trace import is_onnx_spec, trace_onnx


def _init(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def _model(nodes, inits, inputs, outputs, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _image_input(c=3, hw=16):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])


def small_cnn():
    """Conv-BN-ReLU, MaxPool, a residual Add, GAP, exporter-style shape arithmetic,
    Flatten, Gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s", "o", "m", "v"], ["n1"],
                         epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], group=8,
                         pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a1"]),
        helper.make_node("MaxPool", ["a1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Mul", ["p1", "half"], ["p2"]),  # a constant scale: dropped
        helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
        # shape arithmetic (static), then the Reshape it feeds
        helper.make_node("Shape", ["g"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1d"]),
        helper.make_node("Concat", ["n1d", "minus_one"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["g", "newshape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    inits = [_init("w1", 8, 3, 3, 3), _init("b1", 8), _init("s", 8), _init("o", 8),
             _init("m", 8), _init("v", 8), _init("w2", 8, 1, 3, 3), _init("fc_w", 10, 8),
             _init("fc_b", 10),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "zero_axes"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    return _model(nodes, inits, [_image_input()], [out])


def test_a_cnn_graph_reads_as_its_torch_tokens(tmp_path):
    trace = archalign.trace(_save(tmp_path, small_cnn()))
    assert trace.route == "onnx" and trace.model == "m.onnx"
    assert trace.tokens("shape") == [
        "Conv2d(k=3,s=2,g=1)", "BatchNorm2d", "ReLU", "Conv2d(k=3,s=1,g=dw)", "add",
        "MaxPool2d(k=2,s=2)", "AdaptiveAvgPool2d(out_size=1)", "reshape", "Linear"]
    conv = trace[0].params
    assert conv == {"in": 3, "out": 8, "k": [3, 3], "s": [2, 2], "p": [1, 1],
                    "d": [1, 1], "g": 1, "bias": True}
    assert trace[2].inputs == (1,) and set(trace[4].inputs) == {2, 3}
    assert trace[-1].params == {"in": 8, "out": 10, "bias": True}
    assert trace.input_size == (3, 16, 16)
    assert any("dropped" in note for note in trace.notes)
    assert as_exported(trace.tokens("shape"))[:2] == ["Conv2d(k=3,s=2,g=1)", "ReLU"]


def attention_graph():
    """softmax(q k^T * scale) v, with the exporter's transpose of k, plus SiLU, ReLU6 and
    the Erf form of GELU."""
    def vi(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("MatMul", ["x", "wv"], ["v"]),
        helper.make_node("Reshape", ["q", "heads_shape"], ["q4"]),
        helper.make_node("Reshape", ["k", "heads_shape"], ["k4"]),
        helper.make_node("Reshape", ["v", "heads_shape"], ["v4"]),
        helper.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k4"], ["kh"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kh"], ["scores"]),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "vh"], ["o"]),
        helper.make_node("Sigmoid", ["o"], ["sig"]),
        helper.make_node("Mul", ["o", "sig"], ["silu"]),
        helper.make_node("Clip", ["silu", "zero", "six"], ["r6"]),
        helper.make_node("Div", ["r6", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["r6", "e1"], ["g0"]),
        helper.make_node("Mul", ["g0", "half"], ["y"]),
    ]
    scalars = {"scale": 0.125, "zero": 0.0, "six": 6.0, "sqrt2": 2 ** 0.5, "one": 1.0,
               "half": 0.5}
    inits = [_init("wq", 32, 32), _init("wk", 32, 32), _init("wv", 32, 32),
             numpy_helper.from_array(np.array([1, 5, 4, 8], np.int64), "heads_shape"),
             *[numpy_helper.from_array(np.array(v, np.float32), k) for k, v in scalars.items()]]
    return _model(nodes, inits, [vi("x", [1, 5, 32])], [vi("y", [1, 4, 5, 8])])


def test_attention_activations_and_gelu_patterns(tmp_path):
    trace = trace_onnx(_save(tmp_path, attention_graph()))
    # q, k and v each have their own views, as a torch model with separate projections
    # records them, so none of k's is the exporter's (dynamo's extra views of k are
    # checked on a real export below); k's perm moves 3 axes: a permute
    assert trace.tokens("type") == [
        "Linear", "Linear", "Linear", "reshape", "reshape", "reshape", "transpose",
        "permute", "transpose", "scaled_dot_product_attention", "SiLU", "ReLU6", "GELU"]
    sdpa = trace[9]
    assert sdpa.params == {"heads": 4, "head_dim": 8, "causal": False, "mask": False}
    assert sdpa.inputs == (6, 7, 8)


def test_subgraphs_are_one_call_with_a_note(tmp_path):
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("ReduceSum", ["r"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)]
    model = _model(nodes, [numpy_helper.from_array(np.array(0, np.float32), "zero")],
                   [_image_input()], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    trace = trace_onnx(_save(tmp_path, model))
    assert trace.tokens("type") == ["ReLU", "ReduceSum", "If"]
    assert any("subgraphs not traced" in n for n in trace.notes)


def test_weights_are_never_read(tmp_path):
    path = tmp_path / "big.onnx"
    onnx.save(small_cnn(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="big.data", size_threshold=0)
    (tmp_path / "big.data").unlink()  # a 10 GB weight file would cost nothing either
    assert len(trace_onnx(f"onnx:{path}")) == 9


@pytest.mark.parametrize("content,message", [
    (b"not an onnx file at all \x00\xff", "not a readable ONNX model"),
    (b"", "not a readable ONNX model")])
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        trace_onnx(path)
    assert str(path) in str(info.value)


def test_a_truncated_file_and_a_missing_one(tmp_path, capsys):
    good = _save(tmp_path, small_cnn(), "good.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="cut.onnx"):
        trace_onnx(cut)
    # read before resnet18 is traced (an empty cache: nothing else reaches stderr)
    assert main(["matrix", str(cut), "resnet18", "--out", str(tmp_path / "s.npz"),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cut.onnx" in err
    with pytest.raises(FileNotFoundError, match="nowhere.onnx"):
        trace_onnx(tmp_path / "nowhere.onnx")


def test_specs_and_globs(tmp_path):
    assert is_onnx_spec("onnx:model") and is_onnx_spec("a/b.ONNX")
    assert not is_onnx_spec("resnet18") and not is_onnx_spec("torchvision:resnet18")
    for name in ("a.onnx", "b.onnx"):
        _save(tmp_path, small_cnn(), name)
    specs = archalign.tracing.specs.expand_specs([f"onnx:{tmp_path}/*.onnx"])
    assert specs == [f"onnx:{tmp_path}/a.onnx", f"onnx:{tmp_path}/b.onnx"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """test_resnet and test_vit exported by torch.onnx.export (needs onnxscript)."""
    pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript "
                                             "(pip install 'archalign[onnx]')")
    import timm
    import torch

    folder = tmp_path_factory.mktemp("exported")
    paths = {}
    for name in ("test_resnet", "test_vit"):
        model = timm.create_model(name, pretrained=False).eval()
        size = model.pretrained_cfg["input_size"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, *size),), str(folder / f"{name}.onnx"),
                              dynamo=True, verbose=False)
        paths[name] = folder / f"{name}.onnx"
    return paths


def test_an_export_and_its_torch_trace_give_the_same_tokens(exported):
    for name, path in exported.items():
        onnx_tokens = as_exported(trace_onnx(path).tokens("shape"))
        torch_tokens = as_exported(archalign.trace(name).tokens("shape"))
        assert onnx_tokens == torch_tokens, name
    # without the as-exported reading, the folded BatchNorms are missing
    assert archalign.trace("test_resnet").tokens("shape") != \
        trace_onnx(exported["test_resnet"]).tokens("shape")


def test_a_mixed_panel_pairs_each_export_with_its_model(exported, tmp_path):
    specs = ["test_resnet", "test_vit", "test_efficientnet",
             *(f"onnx:{p}" for p in exported.values())]
    sm = archalign.similarity_matrix(specs, progress=False, n_jobs=1,
                                     cache_dir=tmp_path / "cache")
    assert sm.settings["as_exported"] is True
    values = np.asarray(sm.values)
    for name, path in exported.items():
        i, j = sm.labels.index(name), sm.labels.index(f"onnx:{path}")
        assert values[i, j] >= 0.99
        others = [k for k in range(len(specs)) if k not in (i, j)]
        assert values[i, j] > values[i, others].max() and values[j, i] > values[j, others].max()
    plain = archalign.similarity_matrix(specs[:3], progress=False, n_jobs=1,
                                        cache_dir=tmp_path / "cache")
    assert plain.settings["as_exported"] is False  # no ONNX model: torch tokens as they are
