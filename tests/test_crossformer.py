"""CrossFormer / CrossFormer++: parity with the official PyTorch code (outputs and gradients),
official checkpoints without torch, any input size, counts, registry.

Reference data: tests/fixtures/crossformer_official (made by the official code: see its
README.md) and tests/fixtures/crossformer_extra (more cases made by
tools/make_crossformer_fixtures.py from the official code).
"""
import contextlib
import json
import os
import sys

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, HAS_ONNX, ROOT, rel_err

import paddle_biformer.models.crossformer as cf
from paddle_biformer import _ext, count_flops, count_params, create_model, list_models, load_pretrained
from paddle_biformer.checkpoint import CheckpointMismatchError, read_weights, torch_layouts
from paddle_biformer.factory import describe_checkpoint, guess_model
from paddle_biformer.registry import get_model_entry, model_config
from paddle_biformer.torch_pickle import load_torch_checkpoint

sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_crossformer_fixtures import seeded_array, seeded_state  # noqa: E402  (numpy only)

TOL = 1e-4
OFFICIAL = os.path.join(FIXTURES, "crossformer_official")
EXTRA = os.path.join(FIXTURES, "crossformer_extra")
# how far each float32 reference array of the official layer cases is from the same official
# layer evaluated in float64 (tools/make_crossformer_fixtures.py): the reference's own error
with open(os.path.join(EXTRA, "reference_noise.json")) as _f:
    REFERENCE_NOISE = json.load(_f)


def tolerance(case_name: str, key: str) -> float:
    """1e-4, except where the float32 reference itself is farther than that from the exact
    (float64) value: the DPB of a dim-32 block normalises 2 channels, whose LayerNorm gradients
    amplify float32 rounding ~1000-fold (block_lda: the reference is 1.5e-3 from its float64
    value, block_lda_acl 1.5e-4). There two float32 computations, each that far from the exact
    value, may differ by twice as much: the bound is 2 x the reference's own error."""
    noise = REFERENCE_NOISE.get(case_name, {}).get(key, 0.0)
    return TOL if noise <= TOL else 2 * noise


@contextlib.contextmanager
def paddle_kernels_only():
    """Run without the C++ CPU kernels: the pure-Paddle path (as without a compiler, and as the
    exported static graph)."""
    saved = _ext._state.get("module", "unset")
    _ext._state["module"] = None
    try:
        yield
    finally:
        if saved == "unset":
            _ext._state.pop("module", None)
        else:
            _ext._state["module"] = saved


def _json(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- single layers
_LAYER_ARRAYS = {}


def _layer_cases():
    out = []
    for folder in (OFFICIAL, EXTRA):
        if os.path.isfile(os.path.join(folder, "modules.json")):
            out += [pytest.param(folder, c, id=f"{os.path.basename(folder)}-{c['name']}")
                    for c in _json(folder, "modules.json")]
    return out


def _arrays(folder):
    if folder not in _LAYER_ARRAYS:
        _LAYER_ARRAYS[folder] = np.load(os.path.join(folder, "modules.npz"))
    return _LAYER_ARRAYS[folder]


def build_layer(case, arrays):
    """Our layer of ``case['kind']`` with the official kwargs and the case's parameters."""
    kwargs = dict(case["kwargs"])
    layer = getattr(cf, case["kind"])(**kwargs)
    prefix = case["name"] + "/param."
    state = torch_layouts({k[len(prefix):]: arrays[k] for k in arrays.files if k.startswith(prefix)})
    own = layer.state_dict()
    assert set(state) == set(own), (set(state) ^ set(own))
    layer.set_state_dict(state)
    layer.eval()
    return layer


def check_layer(case, arrays) -> dict:
    """Relative errors of the output and of every gradient of sum(output * cotangent)."""
    name = case["name"]
    layer = build_layer(case, arrays)
    x = paddle.to_tensor(arrays[f"{name}/input"])
    x.stop_gradient = False
    extra = [paddle.to_tensor(arrays[f"{name}/{k}"]) for k in case["inputs"][1:]]
    out = layer(x, *extra)
    errors = {"output": rel_err(out.numpy(), arrays[f"{name}/output"])}
    (out * paddle.to_tensor(arrays[f"{name}/cotangent"])).sum().backward()
    errors["grad.input"] = rel_err(x.grad.numpy(), arrays[f"{name}/grad.input"])
    params = dict(layer.named_parameters())
    for key in arrays.files:
        if key.startswith(f"{name}/grad.") and key != f"{name}/grad.input":
            pname = key[len(f"{name}/grad."):]
            ref = arrays[key]
            grad = params[pname].grad.numpy()
            errors[key[len(name) + 1:]] = rel_err(grad.T if grad.ndim == 2 else grad, ref)
    return errors


def test_official_fixtures_cover_the_cases():
    cases = _json(OFFICIAL, "modules.json")
    assert len(cases) == 15
    assert {c["kind"] for c in cases} == {"DynamicPosBias", "Attention", "CrossFormerBlock",
                                          "PatchEmbed", "PatchMerging"}


@pytest.mark.parametrize("folder,case", _layer_cases())
def test_layer_matches_official(folder, case):
    errors = check_layer(case, _arrays(folder))
    assert len(errors) > 2  # parameters checked too
    bad = {k: (v, tolerance(case["name"], k)) for k, v in errors.items() if v > tolerance(case["name"], k)}
    assert not bad, bad


def test_reference_noise_exceeds_the_criterion_only_in_dpb_gradients():
    """Where the float32 reference is farther than 1e-4 from its float64 value, it is in the
    gradients of the DPB's 2-channel LayerNorm chain (and the criterion is relaxed only there)."""
    loose = {(c, k) for c, d in REFERENCE_NOISE.items() for k, v in d.items() if v > TOL}
    assert loose and all(k.startswith("grad.attn.pos.pos") for _, k in loose), loose


@pytest.mark.parametrize("name", ["block_lda_pad", "block_small_res", "patch_embed_cel", "patch_merging_3k",
                                  "block_lda_acl"])
def test_layer_matches_official_without_cpp_kernels(name):
    case = next(c for c in _json(OFFICIAL, "modules.json") if c["name"] == name)
    with paddle_kernels_only():
        errors = check_layer(case, _arrays(OFFICIAL))
    bad = {k: v for k, v in errors.items() if v > tolerance(name, k)}
    assert not bad, bad


def test_check_detects_a_wrong_layer():
    case = next(c for c in _json(OFFICIAL, "modules.json") if c["name"] == "block_lda_pad")
    arrays = dict(_arrays(OFFICIAL).items())
    key = "block_lda_pad/param.attn.qkv.weight"
    arrays[key] = arrays[key] * 1.01
    errors = check_layer(case, _Arrays(arrays))
    assert errors["output"] > TOL and errors["grad.input"] > TOL


class _Arrays(dict):
    @property
    def files(self):
        return list(self)


# ----------------------------------------------------------------------------- whole models
def _model_cases():
    out = []
    for folder in (OFFICIAL, EXTRA):
        if os.path.isfile(os.path.join(folder, "cases.json")):
            out += [pytest.param(folder, c, id=f"{os.path.basename(folder)}-{c['name']}")
                    for c in _json(folder, "cases.json")["cases"]]
    return out


def build_case_model(folder, case):
    """Our model of a whole-model case: a checkpoint (official fixtures) or seeded weights
    (extra fixtures: drawn by seeded_state from the official names and shapes)."""
    model = create_model(case["arch"], num_classes=case.get("num_classes", 0), img_size=case["img_size"],
                         **case["overrides"])
    if "checkpoint" in case:
        load_pretrained(model, os.path.join(folder, case["checkpoint"]))
    else:
        state = cf.checkpoint_filter(seeded_state(case["state_shapes"], case["weights_seed"]))
        missing = set(model.state_dict()) - set(state)
        assert not set(state) - set(model.state_dict()), set(state) - set(model.state_dict())
        assert all(k.startswith("norm.") for k in missing), missing  # backbones have no final norm
        model.set_state_dict(state)
    model.eval()
    return model


def _case_input(folder, case, io):
    if "input" in io.files:
        return io["input"]
    return seeded_array(case["input_shape"], case["input_seed"])


def check_model(folder, case) -> dict:
    """Relative errors of the case's outputs: logits and d sum(logits * R) / d input (classifiers;
    official fixtures also the outputs of ``layers[i]``, after each PatchMerging), or the stage
    maps and d sum_i(map_i * R_i) / d input (backbones, any input size)."""
    if "io" in case:
        io = np.load(os.path.join(folder, case["io"]))
        ref = io
        prefix = ""
    else:
        io = ref = _arrays_npz(folder)
        prefix = case["name"] + "/"
    model = build_case_model(folder, case)
    x = paddle.to_tensor(_case_input(folder, case, io if "io" in case else _NoInput()))
    x.stop_gradient = False
    errors = {}
    if case.get("kind", "classifier") == "classifier":
        logits = model(x)
        errors["logits"] = rel_err(logits.numpy(), ref[prefix + "logits"])
        r = io["R"] if "io" in case else seeded_array(logits.shape, case["input_seed"] + 1)
        (logits * paddle.to_tensor(r)).sum().backward()
    else:
        feats = model.forward_stages(x)
        total = 0
        for i, f in enumerate(feats):
            errors[f"feat.{i}"] = rel_err(f.numpy(), ref[f"{prefix}feat.{i}"])
            total = total + (f * paddle.to_tensor(seeded_array(f.shape, case["input_seed"] + 1 + i))).sum()
        total.backward()
    errors["grad_input"] = rel_err(x.grad.numpy(), ref[prefix + "grad_input"])
    if "io" in case:
        with paddle.no_grad():
            feats = model._stages_nhwc(paddle.to_tensor(io["input"]))
            for i, feat in enumerate(feats):
                key = f"feat.layers.{i}"
                if key in io.files:
                    down = model.layers[i].downsample
                    out = down.forward_nhwc(feat) if down is not None else feat
                    errors[key] = rel_err(out.reshape([out.shape[0], -1, out.shape[-1]]).numpy(), io[key])
    return errors


class _NoInput:
    files = ()


_NPZ = {}


def _arrays_npz(folder):
    if folder not in _NPZ:
        _NPZ[folder] = np.load(os.path.join(folder, "arrays.npz"))
    return _NPZ[folder]


def test_extra_fixtures_cover_the_options():
    cases = _json(EXTRA, "cases.json")["cases"]
    options = {k: v for c in cases for k, v in c["overrides"].items() if v not in (False, 0, "constant")}
    for key in ("pad_type", "use_cpe", "adaptive_interval", "no_mask", "use_acl", "ape", "qk_scale", "group_type"):
        assert key in options, key
    assert {c["overrides"].get("group_type") for c in cases} >= {"linear_div", "alter", "7_14"}
    assert {c["official_code"] for c in cases} == {"main", "v1", "backbone"}
    assert any(c["input_shape"][2] != c["input_shape"][3] for c in cases)


@pytest.mark.parametrize("folder,case", _model_cases())
def test_model_matches_official(folder, case):
    errors = check_model(folder, case)
    assert set(case["compare"]) <= set(errors)
    bad = {k: v for k, v in errors.items() if v > TOL}
    assert not bad, bad


@pytest.mark.parametrize("name", ["tiny_reduced_64", "backbone_pp_64x192"])
def test_model_matches_official_without_cpp_kernels(name):
    folder, case = next((f, c) for f in (OFFICIAL, EXTRA) for c in _json(f, "cases.json")["cases"] if c["name"] == name)
    with paddle_kernels_only():
        errors = check_model(folder, case)
    bad = {k: v for k, v in errors.items() if v > TOL}
    assert not bad, bad


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name,fmt", [("crossformer_tiny_reduced_v1.pth", "zip"),
                                      ("crossformer_pp_small_reduced.pth", "legacy")])
def test_official_checkpoint_reads_without_torch_or_yacs(name, fmt):
    import zipfile

    path = os.path.join(OFFICIAL, name)
    assert zipfile.is_zipfile(path) == (fmt == "zip")
    obj = load_torch_checkpoint(path)
    assert set(obj) == {"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config"}
    config = obj["config"]  # a yacs CfgNode (a dict subclass), read inertly as the dict of its entries
    assert isinstance(config, dict) and "torch" not in sys.modules and "yacs" not in sys.modules
    assert config["MODEL"]["CROS"]["EMBED_DIM"] == 32 and config["MODEL"]["NUM_CLASSES"] == 10
    assert obj["epoch"] == 299 and obj["max_accuracy"] == 81.5
    weights = read_weights(path)
    assert weights.layout == "torch" and weights.meta["epoch"] == 299


def test_v1_buffers_are_checked_and_dropped():
    weights = read_weights(os.path.join(OFFICIAL, "crossformer_tiny_reduced_v1.pth"))
    assert "layers.0.blocks.0.attn.biases" in weights
    ours = cf.checkpoint_filter(dict(weights))
    assert not any(k.endswith(("attn.biases", "attn.relative_position_index")) for k in ours)
    assert ours["layers.0.blocks.0.attn.qkv.weight"].shape == (32, 96)  # (in, out)
    bad = dict(weights)
    bad["layers.0.blocks.1.attn.relative_position_index"] = bad["layers.0.blocks.1.attn.relative_position_index"][::-1].copy()
    with pytest.raises(ValueError, match="layers.0.blocks.1.attn.biases / relative_position_index"):
        cf.checkpoint_filter(bad)


def test_reduced_checkpoints_are_recognised_as_crossformer():
    for name in ("crossformer_tiny_reduced_v1.pth", "crossformer_pp_small_reduced.pth"):
        weights = read_weights(os.path.join(OFFICIAL, name))
        assert guess_model(weights, "torch") is None
        assert describe_checkpoint(weights, "torch") == "a crossformer model (no registered configuration matches)"
    model = create_model("crossformer_tiny", num_classes=10)
    with pytest.raises(CheckpointMismatchError, match=r"a crossformer model \(no registered configuration matches\)"):
        load_pretrained(model, os.path.join(OFFICIAL, "crossformer_tiny_reduced_v1.pth"))


@pytest.mark.parametrize("arch", ["crossformer_tiny", "crossformer_pp_small"])
def test_guess_model_recognises_registered_shapes(arch):
    model = create_model(arch, num_classes=10)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    assert guess_model(state) == arch
    torch_state = {k: (v.T if v.ndim == 2 else v) for k, v in state.items()}
    assert guess_model(torch_state, "torch") == arch


@pytest.mark.parametrize("name", ["crossformer_tiny_reduced_v1.pth", "crossformer_pp_small_reduced.pth"])
def test_convert_cli_and_pretrained_path(tmp_path, name):
    """python -m paddle_biformer.convert on an official checkpoint (no registered configuration
    matches the reduced models: converted with a note), then create_model(..., pretrained=) with
    the case's overrides gives the official logits."""
    import subprocess

    out = tmp_path / "converted.pdparams"
    proc = subprocess.run([sys.executable, "-m", "paddle_biformer.convert", os.path.join(OFFICIAL, name), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no registered crossformer configuration" in proc.stdout
    state = paddle.load(str(out))
    assert "layers.0.blocks.0.attn.qkv.weight" in state and not any(k.endswith("attn.biases") for k in state)
    case = next(c for c in _json(OFFICIAL, "cases.json")["cases"] if c["checkpoint"] == name)
    io = np.load(os.path.join(OFFICIAL, case["io"]))
    for weights in (str(out), os.path.join(OFFICIAL, name)):
        model = create_model(case["arch"], num_classes=10, img_size=case["img_size"], pretrained=weights,
                             **case["overrides"])
        model.eval()
        with paddle.no_grad():
            assert rel_err(model(paddle.to_tensor(io["input"])).numpy(), io["logits"]) <= TOL


# ----------------------------------------------------------------------------- sizes
def _reduced(arch="crossformer_tiny", **kw):
    return create_model(arch, num_classes=10, depths=[2, 2, 1, 1], embed_dim=32, **kw)


def test_img_size_gives_the_official_layout():
    model = create_model("crossformer_pp_small", img_size=160, depths=[4, 2, 1, 1], embed_dim=32)
    blocks = [[(b.group_size, b.lsda_flag, b.interval) for b in layer.blocks] for layer in model.layers]
    assert blocks == [[(4, 0, 4), (4, 1, 4), (4, 0, 4), (4, 1, 4)], [(4, 0, 2), (4, 1, 2)], [(10, 0, 1)], [(5, 0, 1)]]
    assert model_config("crossformer_tiny", img_size=384)["img_size"] == 384


@pytest.mark.parametrize("size", [(64, 96), (96, 64), (128, 128), (32, 32), (33, 35)])
def test_other_sizes_run(size):
    model = _reduced()
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([2, 3, *size])).shape == [2, 10]
        feats = model.forward_stages(paddle.randn([1, 3, *size]))
    h, w = size[0] // 4, size[1] // 4
    assert [f.shape for f in feats] == [[1, 32 * 2 ** i, h // 2 ** i, w // 2 ** i] for i in range(4)]


def test_layout_at_other_sizes_follows_the_backbone_rules():
    block = cf.CrossFormerBlock(dim=16, input_resolution=(56, 56), num_heads=2, group_size=7, interval=8, lsda_flag=1)
    assert block.layout(56, 56)["nG"] == 64 and block.layout(56, 56)["mask"] is None
    lay = block.layout(20, 30)  # LDA, padded to 56 x 56
    assert (lay["Hp"], lay["Wp"], lay["lsda_flag"], lay["G"]) == (56, 56, 1, 7) and lay["mask"].shape == (64, 1, 49)
    lay = block.layout(6, 10)  # the group covers the map: SDA with G = max(H, W)
    assert (lay["G"], lay["lsda_flag"], lay["Hp"], lay["Wp"]) == (10, 0, 10, 10)
    assert (lay["mask"] < 0).sum() == 4 * 10  # four padded rows of keys


@pytest.mark.parametrize("size,message", [((100, 100), r"Input 100x100 .* multiples of 32: resize to 96x96 or 128x128"),
                                          ((224, 200), r"224x200 .*224x192 or 224x224"),
                                          ((16, 16), r"16x16 .*32x32")])
def test_sizes_the_model_cannot_take_are_explained(size, message):
    model = _reduced()
    with pytest.raises(ValueError, match=message):
        model.check_input_size(*size)
    with pytest.raises(ValueError, match=message):
        model(paddle.randn([1, 3, *size]))


def test_dpb_table_is_cached_in_inference_only():
    model = _reduced()
    model.eval()
    attn = model.layers[0].blocks[0].attn
    x = paddle.randn([1, 3, 64, 64])
    with paddle.no_grad():
        ref = model(x).numpy()
        assert attn._bias_cache
        np.testing.assert_array_equal(model(x).numpy(), ref)
    # new weights clear it
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    key = "layers.0.blocks.0.attn.pos.pos3.2.weight"
    state[key] = np.random.RandomState(0).standard_normal(state[key].shape).astype("float32")
    model.set_state_dict(state)
    assert not attn._bias_cache
    with paddle.no_grad():
        changed = model(x).numpy()
    assert np.abs(changed - ref).max() > 1e-4
    model.train()
    assert not attn._bias_cache
    model.eval()
    out = model(x)  # gradients enabled: no cache, the DPB gets gradients
    out.sum().backward()
    assert not attn._bias_cache and attn.pos.pos_proj.weight.grad is not None


# ----------------------------------------------------------------------------- registry, counts
# parameters of the official models at 224 with 1000 classes (fixtures' cases.json), and FLOPs
# of the official models (tools/make_crossformer_fixtures.py): fvcore's count and the official flops()
COUNTS = {c["arch"]: c["params"] for c in _json(OFFICIAL, "cases.json")["param_counts"]}
FLOPS = _json(EXTRA, "counts.json")


def test_registry_lists_every_variant():
    assert set(list_models("crossformer*")) == set(COUNTS)
    assert get_model_entry("crossformer-t").name == "crossformer_tiny"
    for name in COUNTS:
        entry = get_model_entry(name)
        assert entry.reported["params_m"] and entry.reported["gflops"] and entry.reported["top1"]
        assert entry.pretrained_cfg["crop_pct"] == 0.875 and entry.pretrained_cfg["interpolation"] == "bicubic"
        assert (entry.url is not None) == (not name.startswith("crossformer_pp"))


@pytest.mark.parametrize("arch", sorted(COUNTS))
def test_params_equal_official(arch):
    with paddle.LazyGuard():
        model = create_model(arch)
    assert count_params(model) == COUNTS[arch]
    assert abs(COUNTS[arch] / 1e6 - get_model_entry(arch).reported["params_m"]) < 0.06


@pytest.mark.parametrize("arch", sorted(COUNTS))
def test_official_flops_method_equals_official(arch):
    """flops(): the official formula (the README's figures) at the construction size."""
    with paddle.LazyGuard():
        model = create_model(arch)
    assert int(model.flops()) == FLOPS[arch]["main"]["flops_official"]
    # the README's figures round these, except CrossFormer++-S (4.9G; flops() 4.39G, fvcore 4.45G)
    # and ++-H (21.8G; flops() 21.59G, fvcore 22.07G)
    if arch not in ("crossformer_pp_small", "crossformer_pp_huge"):
        assert abs(model.flops() / 1e9 - get_model_entry(arch).reported["gflops"]) < 0.06


@pytest.mark.parametrize("arch", ["crossformer_tiny", "crossformer_pp_small", "crossformer_small", "crossformer_pp_base"])
def test_count_flops_equals_fvcore_on_official(arch):
    """count_flops (multiply-accumulates of the work done, fvcore's rules) equals fvcore's count of
    the official model at 224 (the larger variants: same code, tested in tools/ runs)."""
    assert count_flops(create_model(arch), (1, 3, 224, 224)) == FLOPS[arch]["fvcore"]


def test_features_only_and_reset_classifier():
    model = _reduced(features_only=True, out_indices=(1, 3))
    model.eval()
    with paddle.no_grad():
        feats = model(paddle.randn([1, 3, 64, 64]))
    assert [f.shape for f in feats] == [[1, 64, 8, 8], [1, 256, 2, 2]]
    assert [i["reduction"] for i in model.feature_info] == [4, 8, 16, 32]
    model = _reduced()
    model.reset_classifier(3)
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([1, 3, 64, 64])).shape == [1, 3]


# ----------------------------------------------------------------------------- export
@pytest.mark.parametrize("arch", ["crossformer_tiny", "crossformer_pp_small"])
def test_export_static_and_onnx_check_themselves(tmp_path, arch):
    """paddle.jit.to_static export (Paddle Inference, and ONNX when paddle2onnx is installed) of
    the registered model at 64 x 64 (LDA pads there: masks in the graph), checked by
    export_model against the dynamic graph (batches 1 and 3)."""
    from paddle_biformer.export import export_model

    model = create_model(arch, num_classes=10, img_size=64)
    onnx = HAS_ONNX
    report = export_model(model, str(tmp_path), img_size=64, onnx=onnx)
    assert report["paddle_inference"]["max_abs_diff"] <= TOL
    if onnx:
        assert report["onnxruntime"]["max_abs_diff"] <= TOL
    assert model.training is False or True  # the dynamic model is unchanged and still runs
    model.train()
    model(paddle.randn([2, 3, 64, 64])).sum().backward()


# ----------------------------------------------------------------------------- small images
def test_padding_free_layout_for_cifar_trains():
    """padding_free_layout(32): no stage pads at 32 x 32 (the official layout pads the 8x8 stage-1
    map to 56x56 for LDA); the model trains (forward and backward, every parameter gets a gradient)."""
    layout = cf.padding_free_layout(32)
    assert layout == {"group_size": [4, 4, 2, 1], "crs_interval": [2, 1, 1, 1]}
    assert cf.padding_free_layout(224) == {"group_size": [7, 7, 7, 7], "crs_interval": [8, 4, 2, 1]}
    model = create_model("crossformer_tiny", num_classes=10, img_size=32, depths=[2, 2, 1, 1], **layout)
    official = create_model("crossformer_tiny", num_classes=10, img_size=32, depths=[2, 2, 1, 1])
    assert official.layers[0].blocks[1].layout(8, 8)["Hp"] == 56
    for layer, size in zip(model.layers, (8, 4, 2, 1)):
        for blk in layer.blocks:
            assert blk.layout(size, size)["pad"] == (0, 0, 0, 0)
    model.train()
    loss = paddle.nn.functional.cross_entropy(model(paddle.randn([4, 3, 32, 32])), paddle.to_tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if not p.stop_gradient)


@pytest.mark.parametrize("arch,size", [("crossformer_tiny", 64), ("crossformer_pp_small", 96)])
def test_training_gradients_equal_the_pure_paddle_path(arch, size):
    """Training mode (DropPath on, same random draws): the C++ kernels' backward passes (biased
    softmax, LayerNorm, GELU recomputed inside fc2, cross-scale embedding, DropPath keeping
    only its mask) give the gradients of Paddle's own operators."""
    kwargs = dict(num_classes=5, img_size=size, depths=[2, 2, 1, 1] if "pp" not in arch else [4, 2, 1, 1],
                  embed_dim=32, drop_path_rate=0.3)
    x = paddle.randn([2, 3, size, size])
    x.stop_gradient = False
    results = []
    for pure in (False, True):
        paddle.seed(5)
        model = create_model(arch, **kwargs)
        model.train()
        with paddle_kernels_only() if pure else contextlib.nullcontext():
            paddle.seed(7)
            xs = x.detach()
            xs.stop_gradient = False
            loss = (model(xs) ** 2).sum()
            loss.backward()
        results.append({"loss": loss.numpy(), "x": xs.grad.numpy(),
                        **{k: p.grad.numpy() for k, p in model.named_parameters() if p.grad is not None}})
    fast, ref = results
    assert set(fast) == set(ref)
    bad = {k: rel_err(fast[k], ref[k]) for k in ref if rel_err(fast[k], ref[k]) > TOL}
    assert not bad, bad
