"""transformers architectures as traces (archalign.tracing.transformers_trace), offline.

Default configs on the meta device for the quick ones; small local config.json files
for the rest (the eager fallback, a config path), so the file runs in seconds.
"""
from __future__ import annotations
import json

import pytest

transformers = pytest.importorskip("transformers", reason="the transformers extra is not "
                                   "installed (pip install 'archalign[transformers]')")

import archalign  # noqa: E402
from archalign.cli import main  # noqa: E402
from archalign.tracing.calls import UnknownModelError
from archalign.tracing.transformers_trace import BuildError, trace_transformers
from archalign.tracing.zoo import trace_many
from archalign.tracing.zoo_cache import cache_path


def test_text_model_from_its_default_config():
    t = trace_transformers("transformers:bert")
    assert t.route == "meta" and t.model == "transformers:bert" and t.input_size == (16,)
    tokens = t.tokens("type")
    assert tokens[:2] == ["Embedding", "Embedding"]
    # 12 layers of 3 attention projections + output + 2 MLP Linears, and the pooler
    assert tokens.count("Linear") == 12 * 6 + 1
    assert tokens.count("LayerNorm") == 1 + 12 * 2
    assert t.num_params > 100_000_000 and t.versions["model_type"] == "bert"


def test_vision_model_gets_pixel_values():
    t = trace_transformers("transformers:vit")
    assert t.input_size == (3, 224, 224)
    assert t.tokens("shape")[0] == "Conv2d(k=16,s=16,g=1)"


def test_class_prefix_is_stripped_so_llama_and_qwen2_meet():
    llama, qwen2 = (archalign.trace(f"transformers:{t}") for t in ("llama", "qwen2"))
    assert "RMSNorm" in llama.tokens("type") and "LlamaRMSNorm" not in llama.tokens("type")
    assert set(llama.tokens("type")) == set(qwen2.tokens("type"))


def test_gpt2_conv1d_reads_as_linear():
    t = trace_transformers("transformers:gpt2")
    assert "Conv1D" not in t.tokens("type")
    first = next(c for c in t if c.op == "Linear")
    assert first.params == {"in": 768, "out": 2304, "bias": True}  # the fused qkv


def _config_file(tmp_path, config):
    folder = tmp_path / config.model_type
    config.save_pretrained(folder)
    return folder / "config.json"


def test_a_local_config_and_the_eager_fallback(tmp_path):
    # BART's forward calls Tensor.item() on its inputs: meta fails, a real run does not
    config = transformers.BartConfig(d_model=32, encoder_layers=1, decoder_layers=1,
                                     encoder_attention_heads=2, decoder_attention_heads=2,
                                     encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100)
    path = _config_file(tmp_path, config)
    t = archalign.trace(f"transformers:{path}")
    assert t.route == "eager" and any(n.startswith("meta (float32") for n in t.notes)
    # encoder and decoder each embed their tokens (BartScaledWordEmbedding: prefix gone)
    assert sum(tok == "ScaledWordEmbedding" for tok in t.tokens("type")) == 2
    small = trace_transformers(f"transformers:{path.parent}")  # a folder works too
    assert small.tokens() == t.tokens()


def test_too_big_to_build_for_real_is_traced_at_reduced_depth(tmp_path, monkeypatch):
    from archalign.tracing import transformers_trace

    config = transformers.BartConfig(d_model=32, encoder_layers=6, decoder_layers=6,
                                     encoder_attention_heads=2, decoder_attention_heads=2,
                                     encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100)
    path = _config_file(tmp_path, config)
    full = trace_transformers(f"transformers:{path}")
    monkeypatch.setattr(transformers_trace, "EAGER_MAX_PARAMS", full.num_params - 1)
    reduced = trace_transformers(f"transformers:{path}")
    assert reduced.route == "reduced" and reduced.num_params == full.num_params
    assert any("at most 2 layers" in n for n in reduced.notes)
    assert len(reduced) < len(full)
    # the design survives: rolled, the two read the same
    assert reduced.tokens("shape", rolled=True) == full.tokens("shape", rolled=True)
    smaller = transformers_trace.reduced_depth(config)
    assert (smaller.encoder_layers, smaller.decoder_layers) == (2, 2)
    assert config.encoder_layers == 6  # a copy
    assert transformers_trace.reduced_depth(smaller) is None


def test_config_values_are_found_in_sub_configs():
    from archalign.tracing.transformers_inputs import config_value

    config = transformers.CLIPConfig()  # image_size lives in vision_config only
    assert not hasattr(config, "image_size")
    assert config_value(config, "image_size") == config.vision_config.image_size == 224
    assert config_value(config, "no_such_key", default=7) == 7
    config.image_size = 96  # the top level wins over sub-configs
    assert config_value(config, "image_size") == 96


def test_a_patch_sequence_vision_tower_gets_grid_thw(tmp_path):
    # Qwen2-VL-style towers take flattened patches and their (t, h, w) grid, not images;
    # the grid's values drive the forward, so it runs for real
    from archalign.tracing.transformers_inputs import GRID

    config = transformers.Qwen2_5_VLConfig().vision_config.__class__(
        depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32)
    t = trace_transformers(f"transformers:{_config_file(tmp_path, config)}")
    assert t.route == "eager"
    patch = config.in_channels * config.temporal_patch_size * config.patch_size ** 2
    assert t.input_size == (patch,)
    conv = next(c for c in t if c.op == "Conv3d")
    assert conv.params["in"] == config.in_channels and conv.shape[0] == GRID * GRID


def test_time_series_and_frame_stacking_speech_models_get_their_inputs():
    series = trace_transformers("transformers:patchtst")
    config = transformers.AutoConfig.for_model("patchtst")
    assert series.input_size == (config.context_length, config.num_input_channels)
    # w2v-BERT projects stacked frames: its inputs are as wide as its first Linear
    speech = trace_transformers("transformers:wav2vec2-bert")
    width = transformers.AutoConfig.for_model("wav2vec2-bert").feature_projection_input_dim
    assert speech.input_size[-1] == width and speech.route == "meta"


def test_unknown_type_suggests_close_names(capsys):
    with pytest.raises(UnknownModelError, match="closest: bert"):
        trace_transformers("transformers:bret")
    assert main(["matrix", "transformers:bret", "resnet18", "--out", "x.npz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bret" in err and "bert" in err


def test_a_config_its_class_rejects_is_a_build_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 30,
                                                 "num_attention_heads": 4}))
    with pytest.raises(BuildError, match="cannot build bert"):
        trace_transformers(f"transformers:{bad}")


def test_zoo_runner_caches_patterns_and_records_failures(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 30,
                                                 "num_attention_heads": 4}))
    names = ["transformers:electra", f"transformers:{bad}"]
    first = trace_many(names, n_jobs=1, cache_dir=tmp_path / "c", progress=False)
    assert list(first.paths) == ["transformers:electra"]
    assert "cannot build" in first.failures[f"transformers:{bad}"]
    path = cache_path("transformers:electra", cache_dir=tmp_path / "c")
    assert path.is_file() and "transformers-" in path.parent.name
    again = trace_many(["transformers:electr*"], n_jobs=1, cache_dir=tmp_path / "c",
                       progress=False)
    assert again.cached == ["transformers:electra"]


def test_mixed_with_timm_in_one_matrix(tmp_path):
    sm = archalign.similarity_matrix(["transformers:vit", "vit_base_patch16_224", "resnet50"],
                                     progress=False, n_jobs=1, cache_dir=tmp_path)
    values = sm.values
    assert values[0, 1] > values[0, 2] and values[0, 1] > 0.5


def test_cli_trace_writes_summary_and_failures(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["trace", "transformers:electra", "transformers:albert", "-j", "1",
                 "--cache-dir", str(tmp_path / "c"), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["traced"] == 2 and summary["failed"] == 0
    assert (out / "transformers_electra.json").is_file()
    assert main(["trace", "transformers:nosuchtype", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "unknown transformers model type" in capsys.readouterr().err
