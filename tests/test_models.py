"""Model construction, the registry, input sizes, FLOPs/params and training-time behaviour."""
import numpy as np
import paddle
import pytest

from paddle_biformer import (BiFormer, BiLevelRoutingAttention, Block, DropPath, count_flops,
                             count_params, create_model, list_models)
from paddle_biformer.models.biformer import window_layout
from paddle_biformer.registry import model_config

# Official figures: parameters (PyTorch count) and FLOPs (fvcore) at 224x224, 1000 classes.
OFFICIAL = {"biformer_tiny": (13_142_760, 2_228_044_160),
            "biformer_small": (25_536_232, 4_487_312_640),
            "biformer_base": (56_804_968, 9_794_514_816)}


def test_registry_lists_the_released_models():
    assert set(OFFICIAL) <= set(list_models())
    assert list_models("biformer*tiny*") == ["biformer_tiny"]  # other families have tiny models too
    assert create_model("tiny", num_classes=0).num_classes == 0  # short names work


def test_unknown_model_suggests_names():
    with pytest.raises(ValueError, match="Did you mean biformer_tiny"):
        create_model("biformer_tinny")


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_params_and_flops_equal_official(name):
    model = create_model(name)
    params, flops = OFFICIAL[name]
    assert count_params(model) == params
    assert count_flops(model, (1, 3, 224, 224)) == flops


def test_paddle_summary_works():
    info = paddle.summary(create_model("biformer_tiny"), (1, 3, 224, 224))
    assert info["trainable_params"] == OFFICIAL["biformer_tiny"][0]


def test_native_32px_layout_trains_forward_and_backward():
    model = create_model("biformer_tiny", num_classes=10, img_size=32)
    assert model.n_win == 2 and model.topks == [1, 2, 4, -2]
    x = paddle.randn([4, 3, 32, 32])
    loss = model(x).mean()
    loss.backward()
    assert model.head.weight.grad is not None and model.stages[0][0].attn.qkv.qkv.weight.grad is not None


def test_window_layout_rules():
    assert window_layout(224, [1, 4, 16, -2]) == {"n_win": 7, "topks": [1, 4, 16, -2]}
    assert window_layout(384, [1, 4, 16, -2])["n_win"] == 12
    assert window_layout(64, [1, 4, 16, -2]) == {"n_win": 2, "topks": [1, 4, 4, -2]}
    with pytest.raises(ValueError, match="multiple of 32"):
        window_layout(100, [1, 4, 16, -2])
    assert model_config("biformer_tiny", img_size=32, n_win=4)["n_win"] == 4  # overrides win


def test_size_the_model_cannot_take_is_explained():
    model = create_model("biformer_tiny", num_classes=10)
    with pytest.raises(ValueError, match=r"100x100.*n_win=7.*multiples of 112 \(e.g. 112x112\).*img_size=S.*e.g. 96.*auto_pad=True"):
        model(paddle.randn([1, 3, 100, 100]))


@pytest.mark.parametrize("size", [(100, 100), (33, 47)])
def test_auto_pad_takes_any_size(size):
    model = create_model("biformer_tiny", num_classes=10, auto_pad=True, depth=[1, 1, 1, 1])
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([2, 3, *size])).shape == [2, 10]


def test_bra_without_auto_pad_names_the_fix():
    bra = BiLevelRoutingAttention(dim=16, num_heads=2, n_win=7, topk=2)
    with pytest.raises(ValueError, match="15x14.*n_win=7.*auto_pad=True"):
        bra(paddle.randn([1, 15, 14, 16]))


def test_bra_returns_routing_like_official():
    bra = BiLevelRoutingAttention(dim=32, num_heads=4, n_win=4, topk=3)
    out, r_weight, r_idx, attn = bra(paddle.randn([2, 16, 16, 32]), ret_attn_mask=True)
    assert out.shape == [2, 16, 16, 32]
    assert r_weight.shape == [2, 16, 3] and r_idx.shape == [2, 16, 3]
    np.testing.assert_allclose(r_weight.sum(-1).numpy(), 1.0, rtol=1e-5)
    assert attn.shape == [2 * 16, 4, 16, 3 * 16]


def test_invalid_options_are_rejected_with_reasons():
    with pytest.raises(ValueError, match="topk=-3"):
        Block(dim=16, topk=-3)
    with pytest.raises(ValueError, match="kv_downsample_mode"):
        BiLevelRoutingAttention(dim=16, num_heads=2, kv_downsample_mode="fracpool")
    with pytest.raises(ValueError, match="divisible"):
        BiLevelRoutingAttention(dim=30, num_heads=4)
    with pytest.raises(NotImplementedError, match="soft_routing"):
        BiLevelRoutingAttention(dim=16, num_heads=2, diff_routing=True)


def test_drop_path_drops_whole_samples_in_training_only():
    layer = DropPath(0.5)
    x = paddle.ones([400, 3, 2])
    layer.train()
    y = layer(x).numpy()
    per_sample = y.reshape(400, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped as a whole
    assert 120 < (per_sample[:, 0] == 0).sum() < 280
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())


def test_recompute_stages_give_the_same_gradients():
    kwargs = dict(depth=[1, 1, 2, 1], embed_dim=[16, 32, 64, 128], qk_dims=[16, 32, 64, 128],
                  head_dim=16, n_win=2, topks=[1, 2, 4, -2], kv_downsample_mode="identity",
                  kv_per_wins=[-1] * 4, mlp_ratios=[3] * 4, num_classes=5)
    paddle.seed(1)
    plain = BiFormer(**kwargs)
    ckpt = BiFormer(use_checkpoint_stages=[0, 1, 2, 3], **kwargs)
    ckpt.set_state_dict(plain.state_dict())
    x = paddle.randn([2, 3, 32, 32])
    for m in (plain, ckpt):
        m.train()
        m(x).square().sum().backward()
    for (k, p), (_, q) in zip(plain.named_parameters(), ckpt.named_parameters()):
        if p.grad is not None:
            np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def test_reset_classifier_and_feature_extraction():
    model = create_model("biformer_tiny", num_classes=10, img_size=32)
    model.reset_classifier(7)
    model.eval()
    x = paddle.randn([2, 3, 32, 32])
    assert model(x).shape == [2, 7]
    feats = model.forward_stages(x)
    assert [f.shape for f in feats] == [[2, 64, 8, 8], [2, 128, 4, 4], [2, 256, 2, 2], [2, 512, 1, 1]]
    model.reset_classifier(0)
    assert model(x).shape == [2, 512]


@pytest.mark.parametrize("arch", ["biformer_tiny", "biformer_stl", "casvit_xs", "crossformer_tiny", "resnet18_bra"])
def test_reset_classifier_of_every_family_is_fresh_and_timm_initialised(arch):
    """One rule for all: a new Linear for the new class count, trunc_normal(0.02) weights and
    zero bias (timm's), and no classifier for 0 classes."""
    model = create_model(arch, num_classes=5, img_size=64)
    old = model.get_classifier()
    model.reset_classifier(300)
    head = model.get_classifier()
    assert head is not old and model.num_classes == 300
    w, b = head.weight.numpy(), head.bias.numpy()
    assert w.shape[1] == 300 and 0.017 < w.std() < 0.023 and np.abs(w).max() <= 2.0
    assert not b.any()
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), paddle.nn.Identity) and model.num_classes == 0
