"""Faults that used to crash or hang without a message (issue 25, class 5): a full disk
under the memory-mapped ``--blocks-dir`` (SIGBUS), a ``--scheduler`` port that is not a
Dask scheduler (a hang), and crafted ONNX files (tracebacks). Each must be one line.

The full-disk cases run in a subprocess, where a SIGBUS shows as exit status -7 instead
of killing pytest.
"""
from __future__ import annotations
import contextlib
import copy
import os
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import archalign
from archalign.utils import dask as _dask
from archalign.cli import main
from archalign.tracing.calls import TraceError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def _fill(folder) -> None:
    """Use up every byte of the file system ``folder`` is on."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)


# -------------------------------------------------------- --blocks-dir on a full disk
BLOCKS = """
import errno, os, sys
import numpy as np
from archalign.alignment.blocked import blocked_pairwise
if sys.argv[2] == "no-fallocate":  # the fallback for file systems without fallocate
    del os.posix_fallocate
rng = np.random.default_rng(0)
seqs = [rng.integers(0, 6, 12) for _ in range(int(sys.argv[3]))]
try:
    blocked_pairwise(seqs, block=16, out=sys.argv[1], progress=False)
except OSError as e:
    print(e.errno == errno.ENOSPC, e.filename, e.strerror, sep="|")
    sys.exit(3)
print("done")
"""


@pytest.mark.parametrize("how", ["fallocate", "no-fallocate"])
def test_a_matrix_larger_than_the_disk_is_enospc_not_sigbus(small_disk, how):
    # 120 x 120 float64 is 113 KiB, on a 64 KiB disk
    done = _python(BLOCKS, str(small_disk / "blocks"), how, "120")
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    enospc, filename, strerror = done.stdout.strip().split("|")
    assert enospc == "True" and filename == str(small_disk / "blocks" / "scores.npy")
    assert "120 x 120 score matrix needs 0.1 MiB" in strerror
    assert os.listdir(small_disk / "blocks") == []  # neither a partial matrix nor a temp file


def test_the_fallback_allocation_computes_the_same_matrix(tmp_path):
    done = _python(BLOCKS, str(tmp_path), "no-fallocate", "40")
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
    rng = np.random.default_rng(0)
    expected = archalign.pairwise([rng.integers(0, 6, 12) for _ in range(40)])
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), expected)


def test_matrix_blocks_dir_on_a_full_disk_is_one_line(small_disk, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    paths = []
    for name, model in (("a.onnx", _cnn()), ("b.onnx", _op_zoo())):
        paths.append(str(tmp_path / name))
        onnx.save(model, paths[-1])
    _fill(small_disk)
    done = subprocess.run(
        [sys.executable, "-m", "archalign.cli", "matrix", *paths, "--blocks-dir",
         str(small_disk / "blocks"), "--out", str(tmp_path / "sim.npz")],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "scores.npy" in lines[0] and "No space left" in lines[0]
    assert "free some space" in lines[0]
    assert sorted(os.listdir(small_disk)) == ["blocks", "filler"]
    assert os.listdir(small_disk / "blocks") == []
    assert not (tmp_path / "sim.npz").exists()


# ------------------------------------------------------- a --scheduler that is not one
@contextlib.contextmanager
def _fake_scheduler(reply: bytes | None):
    """A TCP server on a free local port: it accepts, then says ``reply`` (None: stays
    silent, holding the connection open)."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                if reply is not None:
                    conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


PEERS = {"silent": None,
         "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
         "garbage": bytes(range(256)) * 64}


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_port_that_is_no_scheduler_fails_within_the_deadline(peer):
    pytest.importorskip("dask.distributed", reason="the dask extra is not installed")
    with _fake_scheduler(PEERS[peer]) as address:
        start = time.monotonic()
        with pytest.raises(ValueError) as info:
            _dask.connect(address, timeout=0.5)
        assert time.monotonic() - start < 2.0
    message = str(info.value)
    assert "\n" not in message and address in message and "within 0.5 s" in message
    assert "check the address" in message


def test_a_worker_address_is_named_as_a_worker():
    distributed = pytest.importorskip("dask.distributed",
                                      reason="the dask extra is not installed")
    with distributed.LocalCluster(n_workers=1, processes=False, protocol="tcp",
                                      dashboard_address=None) \
            as cluster:
        worker = next(iter(cluster.scheduler_info["workers"]))
        with pytest.raises(ValueError, match=f"{worker} is a Dask worker, not the scheduler"):
            _dask.connect(worker, timeout=2)
        client = _dask.connect(cluster.scheduler_address, timeout=2)
        assert client.submit(sum, [1, 2]).result() == 3
        client.close()


def test_matrix_scheduler_on_a_silent_port_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("dask.distributed", reason="the dask extra is not installed")
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    paths = [str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")]
    onnx.save(_cnn(), paths[0])
    onnx.save(_op_zoo(), paths[1])
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", 0.5)
    with _fake_scheduler(None) as address:
        start = time.monotonic()
        assert main(["matrix", *paths, "--scheduler", address,
                     "--out", str(tmp_path / "sim.npz")]) == 2
        assert time.monotonic() - start < 4.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and address in err and "check the address" in err
    assert not (tmp_path / "sim.npz").exists()


# ------------------------------------------------------------------ crafted ONNX files
def _onnx():
    return pytest.importorskip("onnx", reason="the onnx extra is not installed")


def _cnn():
    """Conv-BN-ReLU, a grouped conv, a residual Add, MaxPool, GAP, Flatten, Gemm."""
    from onnx import TensorProto, helper, numpy_helper

    def w(name, *shape):
        return numpy_helper.from_array(np.zeros(shape, np.float32), name)

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
        helper.make_node("GlobalAveragePool", ["p1"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    inits = [w("w1", 8, 3, 3, 3), w("b1", 8), w("s", 8), w("o", 8), w("m", 8), w("v", 8),
             w("w2", 8, 1, 3, 3), w("fc_w", 10, 8), w("fc_b", 10)]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _op_zoo():
    """One node of most handlers (opset 18: ReduceMean's axes are an input)."""
    from onnx import TensorProto, helper, numpy_helper

    def t(name, value, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(value, dtype), name)

    n = helper.make_node
    nodes = [
        n("ConvTranspose", ["x", "wt"], ["u"], kernel_shape=[2, 2], strides=[2, 2]),
        n("InstanceNormalization", ["u", "c4", "c4"], ["i"], epsilon=1e-5),
        n("LeakyRelu", ["i"], ["l"], alpha=0.2),
        n("Clip", ["l", "zero", "six"], ["c"]),
        n("AveragePool", ["c"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Resize", ["ap", "", "scales"], ["rs"], mode="linear"),
        n("ReduceMean", ["rs", "axis3"], ["rm"], keepdims=1),
        n("Transpose", ["rm"], ["tr"], perm=[0, 2, 1, 3]),
        n("Softmax", ["tr"], ["sm"], axis=-1),
        n("Concat", ["sm", "sm"], ["cat"], axis=1),
        n("Reshape", ["cat", "flat"], ["r2"]),
        n("MatMul", ["r2", "wm"], ["mm"]),
        n("LayerNormalization", ["mm", "g6", "g6"], ["ln"], axis=-1, epsilon=1e-5),
        n("Gelu", ["ln"], ["ge"], approximate="tanh", domain=""),
        n("Einsum", ["ge", "ge"], ["y"], equation="bi, bj -> bij"),
    ]
    inits = [t("wt", np.zeros((3, 4, 2, 2))), t("c4", np.ones(4)), t("zero", 0.0), t("six", 6.0),
             t("scales", [1, 1, 2, 2]), t("axis3", [3], np.int64),
             t("flat", [1, -1], np.int64), t("wm", np.zeros((64, 6))), t("g6", np.ones(6))]
    graph = helper.make_graph(
        nodes, "zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_the_fuzz_bases_read(tmp_path):
    onnx = _onnx()
    onnx.save(_op_zoo(), str(tmp_path / "zoo.onnx"))
    trace = archalign.trace(str(tmp_path / "zoo.onnx"))
    assert trace.tokens("type") == [
        "ConvTranspose2d", "InstanceNorm2d", "LeakyReLU", "ReLU6", "AvgPool2d", "Upsample",
        "mean", "transpose", "Softmax", "cat", "reshape", "Linear", "LayerNorm", "GELU",
        "einsum"]
    # a one-element axes tensor is read as the list it is
    assert trace[6].params == {"dim": [3], "keepdim": True}
    assert trace[13].params == {"approx": "tanh"} and trace[14].params == {"eq": "bi,bj->bij"}


def _with_bytes(model, field_setter, bad: bytes) -> bytes:
    """``model`` serialized with a marker string overwritten by ``bad`` and the rest of
    the marker, so that every length prefix holds (protobuf refuses to write bytes that
    are not UTF-8 into a string field; a crafted file has them)."""
    marker = "MARKER-7f3a"
    m = copy.deepcopy(model)
    field_setter(m, marker)
    return m.SerializeToString().replace(marker.encode(), bad + marker.encode()[len(bad):])


def _crafted():
    """Named crafted files: ``(name, serialized bytes)``; each must be refused."""
    from onnx import AttributeProto, TensorProto, helper

    def edit(change):
        m = copy.deepcopy(_cnn())
        change(m)
        return m.SerializeToString()

    def float_kernel(m):
        a = m.graph.node[0].attribute[0]  # kernel_shape
        a.type, a.f = AttributeProto.FLOAT, 3.0
        del a.ints[:]

    def conv_weight_rank(m):
        del m.graph.initializer[0].dims[:]
        m.graph.initializer[0].dims.extend([216])

    def negative_dim(m):
        m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = -16

    def undefined_type(m):
        small = helper.make_tensor("k", TensorProto.FLOAT, [2], [1.0, 2.0])
        small.data_type = 0
        m.graph.initializer.append(small)

    def gemm_one_input(m):
        del m.graph.node[-1].input[1:]

    def no_output(m):
        del m.graph.node[2].output[:]

    def empty(m):
        del m.graph.node[:]

    def int_epsilon(m):
        a = m.graph.node[1].attribute[0]
        a.type, a.i = AttributeProto.INT, 1

    def three_operand_add(m):
        m.graph.node[4].input.append("r1")

    def only_constants(m):
        del m.graph.node[:]
        m.graph.node.append(helper.make_node("Constant", [], ["y"], value=helper.make_tensor(
            "v", TensorProto.FLOAT, [1], [1.0])))

    def bad_data(m):  # one value, in a tensor of three
        m.graph.initializer.append(helper.make_tensor("k", TensorProto.FLOAT, [1], [1.0]))
        m.graph.initializer[-1].dims[0] = 3

    cases = {f.__name__: edit(f) for f in (
        float_kernel, conv_weight_rank, negative_dim, undefined_type, gemm_one_input,
        no_output, empty, int_epsilon, three_operand_add, only_constants, bad_data)}
    cases["op_type_not_utf8"] = _with_bytes(
        _cnn(), lambda m, s: setattr(m.graph.node[2], "op_type", s), b"Re\xff\xfe")
    cases["name_not_utf8"] = _with_bytes(
        _cnn(), lambda m, s: setattr(m.graph.node[0], "name", s), b"\xc3\x28conv")
    cases["mode_not_utf8"] = _with_bytes(
        _op_zoo(), lambda m, s: setattr(m.graph.node[5].attribute[0], "s", s.encode()),
        b"lin\xffear")
    cases["truncated"] = _cnn().SerializeToString()[:150]
    return cases


CRAFTED = ["float_kernel", "conv_weight_rank", "negative_dim", "undefined_type",
           "gemm_one_input", "no_output", "empty", "int_epsilon", "three_operand_add",
           "only_constants", "bad_data", "op_type_not_utf8", "name_not_utf8",
           "mode_not_utf8", "truncated"]


def _refused(path) -> str:
    """The one-line message ``archalign.trace`` refuses ``path`` with."""
    with pytest.raises((ValueError, TraceError)) as info:
        archalign.trace(str(path))
    assert isinstance(info.value, ValueError) and isinstance(info.value, TraceError)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.parametrize("name", CRAFTED)
def test_a_crafted_file_is_one_line(tmp_path, name):
    _onnx()
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(_crafted()[name])
    message = _refused(path)
    expected = {"float_kernel": "attribute kernel_shape is FLOAT, not INTS",
                "conv_weight_rank": "has shape [216]", "negative_dim": "negative dimension",
                "undefined_type": "tensor 'k' is damaged", "gemm_one_input": "takes 2 to 3 inputs, not 1",
                "no_output": "has no output", "int_epsilon": "epsilon is INT, not FLOAT",
                "three_operand_add": "takes 2 inputs, not 3", "op_type_not_utf8": "not UTF-8",
                "name_not_utf8": "not UTF-8", "mode_not_utf8": "mode is not UTF-8",
                "bad_data": "tensor 'k' is damaged"}
    assert expected.get(name, "") in message


def test_cycles_and_huge_dims_read(tmp_path):
    onnx = _onnx()
    m = _cnn()
    m.graph.node[2].input.append("a1")  # Relu also reads the Add after it: a cycle
    m.graph.initializer[6].dims[0] = 2 ** 40  # a weight of 2**40 filters: only a shape
    onnx.save(m, str(tmp_path / "odd.onnx"))
    trace = archalign.trace(str(tmp_path / "odd.onnx"))
    assert trace[3].params["out"] == 2 ** 40 and trace.num_params > 2 ** 40


def test_a_crafted_file_through_the_command_line(tmp_path):
    _onnx()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(_crafted()["op_type_not_utf8"])
    good = tmp_path / "good.onnx"
    good.write_bytes(_cnn().SerializeToString())
    done = subprocess.run([sys.executable, "-m", "archalign.cli", "matrix", str(good), str(bad),
                           "--out", str(tmp_path / "sim.npz")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert done.stderr.startswith("archalign: error: ") and str(bad) in done.stderr


# --------------------------------------------------------------------- the fuzz test
def _mutate(model, rng: random.Random) -> bytes:
    """``model`` after one seeded mutation of what a crafted file can change, serialized."""
    from onnx import AttributeProto, TensorProto, helper

    m = copy.deepcopy(model)
    g = m.graph
    node = rng.choice(g.node)
    kind = rng.randrange(12)
    if kind == 0 and node.attribute:  # an attribute declared with another type
        a = rng.choice(node.attribute)
        a.type = rng.choice([AttributeProto.FLOAT, AttributeProto.INT, AttributeProto.STRING,
                             AttributeProto.INTS, AttributeProto.FLOATS, AttributeProto.GRAPH,
                             AttributeProto.UNDEFINED])
        a.f = 1.5
    elif kind == 1:  # a handler's attribute with a value of any kind
        node.attribute.append(helper.make_attribute(
            rng.choice(["kernel_shape", "strides", "pads", "group", "axis", "perm", "axes",
                        "transB", "epsilon", "mode", "approximate", "equation", "alpha"]),
            rng.choice([1.5, [1.5, 2.5], "x", [b"a"], 3, [-1, 2 ** 62], 0, -7])))
    elif kind == 2 and g.initializer:  # a weight of another rank, negative or huge dims
        t = rng.choice(g.initializer)
        del t.dims[:]
        t.dims.extend(rng.choice([[], [0], [-3, 4], [2 ** 40, 2 ** 40], [5], [1] * 6, [8, 3]]))
    elif kind == 3:  # an input's type and dims
        tt = rng.choice(g.input).type.tensor_type
        tt.elem_type = rng.choice([0, 16, TensorProto.STRING])
        for d in tt.shape.dim:
            d.dim_value = rng.choice([-5, 0, 2 ** 62, 100000, d.dim_value])
    elif kind == 4:  # inputs dropped
        del node.input[rng.randrange(len(node.input) + 1):]
    elif kind == 5:  # inputs duplicated, blank or unknown
        names = list(node.input)
        names = names + names[:1] if rng.random() < 0.3 else \
            [rng.choice(["", "nowhere", i]) for i in names]
        del node.input[:]
        node.input.extend(names)
    elif kind == 6:  # a cycle: a node reads a later node's output
        later = rng.choice(g.node)
        node.input.append(later.output[0] if later.output else "z")
    elif kind == 7:  # nodes removed, down to an empty graph
        cut = rng.randrange(len(g.node) + 1)
        del g.node[:cut]
    elif kind == 8:  # another op type, in another domain
        node.op_type = rng.choice(["Conv", "Gemm", "MatMul", "BatchNormalization", "Clip",
                                   "Concat", "ReduceMean", "Softmax", "Flatten", "Transpose",
                                   "Resize", "Einsum", "Gelu", "LayerNormalization", "Add",
                                   "If", "", "Reshape", "ConvTranspose", "Erf", "Sigmoid"])
        node.domain = rng.choice(["", "com.microsoft"])
    elif kind == 9 and g.initializer:  # an element type that is not defined
        t = rng.choice(g.initializer)
        t.data_type = rng.choice([0, TensorProto.STRING, TensorProto.BFLOAT16])
    elif kind == 10:  # a string that is not UTF-8
        field = rng.choice(["op_type", "name"])
        return _with_bytes(m, lambda mm, s: setattr(mm.graph.node[list(g.node).index(node)],
                                                    field, s), b"\xff" + bytes([rng.randrange(256)]))
    else:  # bytes of the file flipped or cut
        raw = bytearray(m.SerializeToString())
        for _ in range(rng.randrange(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw[:rng.randrange(len(raw) // 2, len(raw) + 1)])
    return m.SerializeToString()


def test_seeded_mutations_read_or_refuse_in_one_line(tmp_path):
    _onnx()
    rng = random.Random(25)
    outcomes = {"read": 0, "refused": 0}
    for i in range(400):
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(_mutate(rng.choice([_cnn(), _op_zoo()]), rng))
        try:
            trace = archalign.trace(str(path))
        except (ValueError, TraceError) as e:
            assert "\n" not in str(e) and str(path) in str(e), (i, str(e))
            outcomes["refused"] += 1
        else:
            assert len(trace) > 0
            outcomes["read"] += 1
    assert min(outcomes.values()) > 50, outcomes  # both outcomes are exercised


def test_seeded_mutations_through_the_command_line(tmp_path, capsys):
    onnx = _onnx()
    good = tmp_path / "good.onnx"
    onnx.save(_cnn(), str(good))
    rng = random.Random(26)
    status = []
    for i in range(40):
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(_mutate(rng.choice([_cnn(), _op_zoo()]), rng))
        status.append(main(["matrix", str(good), str(path), "--out", str(tmp_path / "s.npz")]))
        err = capsys.readouterr().err
        assert (status[-1], err.count("\n")) in ((0, 0), (2, 1)), (i, status[-1], err)
    assert set(status) == {0, 2}
