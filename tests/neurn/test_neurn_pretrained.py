"""Pretrained backbones: weights files made here (hubs are unreachable), loaded through timm,
recorded, refused in one line when they cannot be had."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from neurn import build_model
from neurn.cli import main
from neurn.fronts import FRONT_STATS
from neurn.models import plan_model
from neurn.models.pretrained import load_pretrained, tensors_sha256

MODEL = "test_resnet"  # timm's small test net; its pretrained input size is 160 px


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A seeded test_resnet saved as .safetensors and .pth, and its state dict."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(123)
    state = timm.create_model(MODEL).state_dict()
    save_file(state, folder / f"{MODEL}.safetensors")
    torch.save(state, folder / "other_name.pth")
    return folder, state


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Two generated 3-class folder domains of 16 px images (a class is a bright band)."""
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    for domain, tint in (("a", (1.0, 0.4, 0.4)), ("b", (0.4, 0.4, 1.0))):
        for k, cls in enumerate("xyz"):
            (root / domain / cls).mkdir(parents=True)
            for i in range(8):
                img = rng.random((16, 16, 3)) * 0.3
                img[:, 5 * k:5 * k + 5] += 0.6
                img = np.clip(img * np.asarray(tint), 0, 1)
                Image.fromarray((img * 255).astype(np.uint8)).save(root / domain / cls / f"{i}.png")
    return root


def _file_sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_file_loads_every_backbone_tensor_and_a_fresh_head(weights):
    folder, state = weights
    pretrained = load_pretrained(MODEL, num_classes=3, weights=folder / f"{MODEL}.safetensors")
    assert set(state) - set(pretrained.state) == {"fc.weight", "fc.bias"}
    plan = plan_model(MODEL, img_size=16, num_classes=3, pretrained_size=pretrained.input_size)
    assert plan.input_size == 160 and "pretrained" in plan.adaptation
    torch.manual_seed(7)
    model, _ = build_model(MODEL, num_classes=3, img_size=16, plan=plan, pretrained=pretrained)
    torch.manual_seed(7)
    scratch, _ = build_model(MODEL, num_classes=3, img_size=16, plan=plan)
    loaded = model.backbone.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], value), key
    # the head is the run's seeded initialisation, as from scratch, not the file's 1000-way one
    assert loaded["fc.weight"].shape == (3, state["fc.weight"].shape[1])
    assert torch.equal(loaded["fc.weight"], scratch.backbone.state_dict()["fc.weight"])
    assert not torch.equal(loaded["layer1.0.conv1.weight"],
                           scratch.backbone.state_dict()["layer1.0.conv1.weight"])


def test_the_digest_is_the_files_and_the_tensors(weights):
    folder, state = weights
    st = load_pretrained(MODEL, num_classes=3, weights=folder)  # a folder: <model>.safetensors
    pth = load_pretrained(MODEL, num_classes=3, weights=folder / "other_name.pth")
    assert st.init.file.endswith(f"{MODEL}.safetensors")
    assert st.init.file_sha256 == _file_sha256(folder / f"{MODEL}.safetensors")
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    # the tensor digest does not depend on the file format
    assert st.init.weights_sha256 == pth.init.weights_sha256 == tensors_sha256(backbone)
    assert st.init.file_sha256 != pth.init.file_sha256


def test_a_pretrained_backbone_gets_the_input_its_weights_expect(weights):
    folder, _ = weights
    pretrained = load_pretrained(MODEL, num_classes=3, weights=folder)
    cfg = timm.models.get_pretrained_cfg(MODEL)
    plan = plan_model(MODEL, img_size=16, num_classes=3, pretrained_size=160)
    x = torch.rand(2, 3, 16, 16)
    for variant, (mean, std) in (("baseline", (cfg.mean, cfg.std)),
                                 ("neurn", FRONT_STATS["neurn"])):
        model, _ = build_model(MODEL, variant=variant, num_classes=3, img_size=16, plan=plan,
                               pretrained=pretrained)
        seen = {}
        model.backbone.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
        model.eval()(x)
        front = model.front(x) if model.front is not None else x
        channel = (1, -1, 1, 1)
        expected = (front - torch.tensor(mean).view(channel)) / torch.tensor(std).view(channel)
        expected = torch.nn.functional.interpolate(expected, size=(160, 160), mode="bilinear",
                                                   align_corners=False)
        torch.testing.assert_close(seen["x"], expected)


def _run(tree, out, *extra):
    return main(["run", MODEL, "--source", str(tree / "a"), "--targets", str(tree / "b"),
                 "--steps", "2", "--evals", "1", "-b", "4", "--device", "cpu", "--threads", "1",
                 "--no-progress", "--no-weights", "--out", str(out), *extra])


def test_a_study_records_its_weights_and_differs_from_scratch(weights, tree, tmp_path, capsys):
    folder, _ = weights
    file = folder / f"{MODEL}.safetensors"
    assert _run(tree, tmp_path / "pre", "--weights", str(file)) == 0
    assert _run(tree, tmp_path / "scratch") == 0
    capsys.readouterr()
    pre = json.loads(next((tmp_path / "pre" / "runs").glob("*baseline*/result.json")).read_text())
    scratch = json.loads(next((tmp_path / "scratch" / "runs").glob(
        "*baseline*/result.json")).read_text())
    assert pre["init"]["file_sha256"] == _file_sha256(file)
    assert pre["settings"]["init"] == pre["init"] and "init" not in scratch["settings"]
    assert scratch["init"] == {"kind": "scratch"}
    # fine-tuning defaults, recorded; from scratch the study's usual ones
    assert (pre["settings"]["lr"], pre["settings"]["weight_decay"]) == (5e-5, 0.0)
    assert (scratch["settings"]["lr"], scratch["settings"]["weight_decay"]) == (1e-3, 0.05)
    # images at the pretrained input size by default; from scratch the images' own size
    assert (pre["img_size"], pre["plan"]["input_size"]) == (160, 160)
    assert (scratch["img_size"], scratch["plan"]["input_size"]) == (16, 16)
    assert _run(tree, tmp_path / "small", "--weights", str(file), "--img-size", "16") == 0
    small = json.loads(next((tmp_path / "small" / "runs").glob("*/result.json")).read_text())
    assert (small["img_size"], small["plan"]["input_size"]) == (16, 16)  # asked for: kept
    assert pre["history"][0]["train_loss"] != scratch["history"][0]["train_loss"]
    study = json.loads((tmp_path / "pre" / "study.json").read_text())
    assert study["init"][MODEL]["weights_sha256"] == pre["init"]["weights_sha256"]
    summary = (tmp_path / "pre" / "summary.md").read_text()
    assert f"Initialisation: pretrained, file {file} (sha256 {_file_sha256(file)[:12]})" in summary
    assert "Initialisation: from scratch." in (tmp_path / "scratch" / "summary.md").read_text()


def _refused(capsys, out, rc) -> str:
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and not out.exists(), err
    return err


def test_weights_that_cannot_be_had_are_one_line_before_anything_is_written(
        weights, tree, tmp_path, capsys, monkeypatch):
    folder, _ = weights
    out = tmp_path / "out"
    other = tmp_path / "resnet18.safetensors"
    save_file(timm.create_model("resnet18").state_dict(), other)
    err = _refused(capsys, out, _run(tree, out, "--weights", str(other)))
    assert f"{MODEL}: cannot load the weights file {other}" in err and "architecture" in err
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((folder / f"{MODEL}.safetensors").read_bytes()[:4000])
    err = _refused(capsys, out, _run(tree, out, "--weights", str(truncated)))
    assert str(truncated) in err
    err = _refused(capsys, out, _run(tree, out, "--weights", str(tmp_path / "none.pth")))
    assert "no such weights file" in err
    err = _refused(capsys, out, _run(tree, out, "--weights", str(tmp_path)))
    assert f"no weights for {MODEL} in this folder" in err
    # offline, nothing in the Hugging Face cache
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    err = _refused(capsys, out, _run(tree, out, "--pretrained"))
    assert "cannot load timm's pretrained weights" in err and "--weights FILE" in err
    # a tag without --pretrained would silently train from scratch
    rc = main(["run", f"{MODEL}.r160_in1k", "--steps", "1", "--out", str(out)])
    err = _refused(capsys, out, rc)
    assert "names pretrained weights (r160_in1k)" in err and "--pretrained" in err
    rc = main(["run", "convnet", "--pretrained", "--steps", "1", "--out", str(out)])
    assert "built-in model without published weights" in _refused(capsys, out, rc)
