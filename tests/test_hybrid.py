"""BRA in a CNN: Paddle's ResNet-18 with a BRABlock2d after layer3, registered as
resnet18_bra: builds at CIFAR and ImageNet sizes, trains with the engine (the loss falls),
loads plain ResNet weights (the added block keeps its initialisation), shows routing maps and
exports to both runtimes with the self-check."""
import os

import numpy as np
import paddle
import pytest
from datagen import make_image_folders

from paddle_biformer import BRABlock2d, count_params, create_model
from paddle_biformer.engine import TrainConfig, fit
from paddle_biformer.info import ModelInfo
from paddle_biformer.interpret import routing_of


def test_resnet18_bra_is_resnet18_plus_one_block():
    plain = create_model("resnet18", num_classes=10, img_size=32)
    hybrid = create_model("resnet18_bra", num_classes=10, img_size=32)
    assert isinstance(hybrid.bra["2"], BRABlock2d) and len(hybrid.bra) == 1 and len(plain.bra) == 0
    assert count_params(hybrid) - count_params(plain) == count_params(hybrid.bra["2"])
    hybrid.eval()
    with paddle.no_grad():
        maps = hybrid.forward_stages(paddle.randn([2, 3, 32, 32]))
    assert [m.shape[1:] for m in maps] == [[64, 32, 32], [128, 16, 16], [256, 8, 8], [512, 4, 4]]
    big = create_model("resnet18_bra", num_classes=5)  # ImageNet stem at 224: layer3 is 14x14
    big.eval()
    with paddle.no_grad():
        assert big(paddle.randn([1, 3, 224, 224])).shape == [1, 5]
        assert big.forward_stages(paddle.randn([1, 3, 96, 128]))[2].shape == [1, 256, 6, 8]  # any size


def test_plain_resnet_weights_load_into_the_hybrid(tmp_path, caplog):
    plain = paddle.vision.models.resnet18(num_classes=1000)
    path = str(tmp_path / "resnet18.pdparams")
    paddle.save(plain.state_dict(), path)
    with caplog.at_level("WARNING", logger="paddle_biformer"):
        hybrid = create_model("resnet18_bra", num_classes=10, pretrained=path)
    assert "added layers" in caplog.text and "classifier" in caplog.text
    np.testing.assert_array_equal(hybrid.layer3[0].conv1.weight.numpy(), plain.layer3[0].conv1.weight.numpy())


def test_the_hybrid_trains_shows_routing_and_exports(tmp_path):
    folders = make_image_folders(str(tmp_path / "img"), per_class=16)
    cfg = TrainConfig.from_recipe("cifar-fast", arch="resnet18_bra", epochs=3, batch_size=16, data_path=folders,
                                  output=str(tmp_path / "run"), workers=0, lr=1e-3)
    fit(cfg)
    import json

    with open(os.path.join(cfg.output, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    from paddle_biformer.inference import load_trained

    model, info = load_trained(os.path.join(cfg.output, "best_model.pdparams"))
    routes = routing_of(model, info, np.zeros((32, 32, 3), np.uint8))
    assert [(r["stage"], r["n_win"], r["r_idx"].shape) for r in routes] == [(0, 4, (16, 4))]
    from paddle_biformer.export import export_model

    report = export_model(model, str(tmp_path / "export"), 32, onnx=True, info=info)
    assert report["paddle_inference"]["max_abs_diff"] <= 1e-4 and report["onnxruntime"]["max_abs_diff"] <= 1e-4
