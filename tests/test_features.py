"""Feature maps for detection and segmentation heads, for every family of the zoo:
``create_model(name, features_only=True, out_indices=...)`` returns the stage maps (NCHW), and
``feature_info`` gives their channels and strides, at any size the family takes."""
import paddle
import pytest

from paddle_biformer import create_model, list_models
from paddle_biformer.registry import entries, families


def smallest_model(family: str) -> str:
    """The registered model of ``family`` with the fewest parameters (cheap to build)."""
    from paddle_biformer.factory import _registered_shapes

    import math
    return min((e.name for e in entries(family)),
               key=lambda n: sum(math.prod(s) for s in _registered_shapes(n).values()))


@pytest.mark.parametrize("family", sorted(f.name for f in families()))
def test_features_only_returns_the_stage_maps_with_their_info(family):
    name = smallest_model(family)
    model = create_model(name, features_only=True, out_indices=(1, 2, 3), img_size=64)
    model.eval()
    info = model.selected_feature_info()
    reductions = [i["reduction"] for i in info]
    assert reductions[1] == 2 * reductions[0] and reductions[2] == 2 * reductions[1]
    with paddle.no_grad():
        maps = model(paddle.randn([1, 3, 64, 64]))
    assert [m.shape for m in maps] == [[1, i["num_chs"], 64 // i["reduction"], 64 // i["reduction"]] for i in info]
    full = create_model(name, num_classes=0, img_size=224)
    assert len(full.feature_info) == 4 and full.feature_info[0]["reduction"] == 4  # at ImageNet sizes


def test_out_indices_are_checked():
    with pytest.raises(ValueError, match="out_indices \\[4\\]: this model has 4 stages"):
        create_model("biformer_tiny", features_only=True, out_indices=(4,))


def test_every_registered_model_is_listed_by_family():
    names = list_models()
    assert set(names) == {e.name for e in entries()}
    assert list_models("biformer*") == sorted(n for n in names if n.startswith("biformer"))
