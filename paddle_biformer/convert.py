"""Official PyTorch checkpoints of any zoo family -> Paddle, without PyTorch.

    python -m paddle_biformer.convert biformer_tiny_best.pth biformer_tiny.pdparams
    python -m paddle_biformer.convert rcvit_xs.pth casvit_xs.pdparams --arch casvit_xs --ema

The architecture is recognised from the weights (``--arch`` checks it instead). The weights are
converted and loaded into that model before anything is written; the output is written
atomically, so a failed conversion leaves no file.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["convert_checkpoint", "main"]


def convert_checkpoint(src: str, dst: str | None = None, arch: str | None = None, ema: bool = False) -> dict:
    """Read the official checkpoint ``src``, map it to our names and layouts, check it against
    the registered model (``arch``, else the one recognised), and save it to ``dst``
    (.pdparams) if given. Returns {'arch', 'state', 'num_classes', 'checked'}."""
    import paddle

    from . import registry
    from .checkpoint import CheckpointMismatchError, atomic_write, read_weights
    from .factory import create_model, describe_checkpoint, guess_model, load_pretrained, official_to_ours

    weights = read_weights(src, ema=ema)
    if arch:
        arch = registry.resolve_name(arch)
        family = registry.get_family(arch)
        if not family.owns_state(weights):
            raise CheckpointMismatchError(f"{src} is not a {family.name} checkpoint: it looks like "
                                          f"{describe_checkpoint(weights, weights.layout)}; leave --arch out "
                                          "to convert it as what it is")
    else:
        owners = [f for f in registry.families() if f.owns_state(weights)]
        if not owners:
            raise CheckpointMismatchError(
                f"{src} is not a checkpoint of a registered family ({', '.join(registry.list_families())}); "
                f"its first names: {', '.join(list(weights)[:4])}")
        family = owners[0]
        arch = guess_model(weights, weights.layout)
    state = official_to_ours(weights, family)
    head = next((state[k] for k in state if k.startswith(family.classifier_prefixes[0]) and k.endswith("weight")), None)
    num_classes = 0 if head is None else int(head.shape[-1])
    checked = False
    if arch:
        overrides = family.model_overrides(state) if family.model_overrides else {}
        model = create_model(arch, num_classes=num_classes, **overrides)
        load_pretrained(model, state, source=src)  # raises if it does not fit
        checked = True
    if dst:
        atomic_write(dst, lambda tmp: paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, tmp))
    return {"arch": arch or family.name, "state": state, "num_classes": num_classes, "checked": checked}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paddle_biformer.convert",
        description="Convert an official PyTorch checkpoint (.pth) of BiFormer, CAS-ViT or "
                    "CrossFormer to Paddle (.pdparams). PyTorch is not needed.")
    parser.add_argument("src", help="official checkpoint, e.g. biformer_tiny_best.pth")
    parser.add_argument("dst", help="output .pdparams file")
    parser.add_argument("--arch", help="the model the weights are for (default: recognised from the weights)")
    parser.add_argument("--ema", action="store_true", help="convert the EMA weights ('model_ema') of a training checkpoint")
    args = parser.parse_args(argv)
    from .checkpoint import CheckpointError, CheckpointMismatchError

    try:
        result = convert_checkpoint(args.src, args.dst, args.arch, args.ema)
    except (FileNotFoundError, CheckpointError, CheckpointMismatchError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state = result["state"]
    n_params = sum(v.size for k, v in state.items() if not k.endswith(("_mean", "_variance")))
    print(f"wrote {args.dst}: {len(state)} tensors, {n_params / 1e6:.2f}M values, "
          f"{result['num_classes']} classes")
    if result["checked"]:
        print(f"checked: the weights load into {result['arch']}")
    else:
        print(f"note: no registered {result['arch']} configuration has these shapes; converted "
              "without a check (load it with create_model(name, **overrides) for its configuration)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
