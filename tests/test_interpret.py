"""LIME (through interpretdl) and routing maps."""
import os

import numpy as np
import paddle
from PIL import Image

from paddle_biformer import create_model
from paddle_biformer.info import ModelInfo
from paddle_biformer.interpret import TrainedNormalization, explain_lime, import_interpretdl, routing_of
from paddle_biformer.plots import plot_lime, plot_routing

SMALL = dict(depth=[1, 1, 2, 1], embed_dim=[16, 32, 64, 128], qk_dims=[16, 32, 64, 128], head_dim=16)
INFO = ModelInfo(arch="biformer_tiny", img_size=32, classes=[f"c{i}" for i in range(4)],
                 mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


def small_model():
    paddle.seed(0)
    model = create_model("biformer_tiny", num_classes=4, img_size=32, **SMALL)
    model.eval()
    return model


def image(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_model_sees_its_training_normalisation_whatever_interpretdl_feeds():
    model = small_model()
    pixels = image()[None].astype(np.float32) / 255.0
    ours = (pixels - np.array(INFO.mean)) / np.array(INFO.std)  # what training fed
    fed = (pixels - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # interpretdl
    wrapped = TrainedNormalization(model, INFO.mean, INFO.std)
    with paddle.no_grad():
        a = model(paddle.to_tensor(ours.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
        b = wrapped(paddle.to_tensor(fed.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_interpretdl_imports_on_current_ipython_and_scikit_learn():
    it = import_interpretdl()
    import interpretdl.interpreter._lime_base as lime_base
    lime_base.Ridge(alpha=0, fit_intercept=True, normalize=True)  # the call interpretdl makes
    assert hasattr(it, "LIMECVInterpreter")


def test_lime_explains_the_predicted_class_and_draws_it(tmp_path):
    model = small_model()
    img = image(1)
    exp = explain_lime(model, INFO, img, num_samples=60, batch_size=20)
    assert exp["segments"].shape == (32, 32) and exp["label"] == exp["pred"]
    assert set(exp["weights"]) == set(np.unique(exp["segments"]).tolist())
    np.testing.assert_allclose(exp["probs"].sum(), 1.0, rtol=1e-5)
    path = plot_lime(img, exp["segments"], exp["weights"], INFO.classes, exp["pred"],
                     exp["probs"][exp["pred"]], str(tmp_path / "lime.png"), true_label=0)
    assert Image.open(path).size[0] > 500


def test_routing_maps_follow_every_routing_block(tmp_path):
    model = small_model()
    routes = routing_of(model, INFO, image(2))
    assert [(r["stage"], r["block"]) for r in routes] == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert [r["r_idx"].shape for r in routes] == [(4, 1), (4, 2), (4, 4), (4, 4)]
    assert all(sorted(r["r_idx"][0]) == [0, 1, 2, 3] for r in routes if r["stage"] == 2)  # all 4
    assert all(b.attn.last_routing is None and not b.attn.keep_routing
               for s in model.stages[:3] for b in s)  # nothing left switched on
    path = plot_routing(image(2), routes, (1, 0), str(tmp_path / "routing.png"))
    assert os.path.getsize(path) > 1000
