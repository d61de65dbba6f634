"""Training and evaluation engine shared by train.py, eval.py and the notebook.

    from paddle_biformer.engine import TrainConfig, fit
    fit(TrainConfig(arch="biformer_tiny", img_size=32, epochs=2, data_path="cifar10/"))

Outputs in ``config.output``: best/final model and optimizer files (the seed notebook's names),
``last.pdckpt`` (everything needed to resume, written atomically every epoch and on Ctrl-C),
``model_info.json`` (architecture, input size, class names, normalisation), ``metrics.jsonl``
(one line per epoch), learning-curve PNGs, and VisualDL logs when visualdl is installed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import paddle

from .checkpoint import atomic_save, load_pretrained, portable_optimizer_state, restore_optimizer_state
from .convert import atomic_write
from .data import (IMAGENET_MEAN, IMAGENET_STD, DataError, load_cifar10,
                   load_image_folders, materialize, rng_for)
from .loader import BatchLoader, recipe_for, to_model_input
from .mixup import MixupCutmix, smooth_one_hot, soft_cross_entropy
from .progress import progress
from .registry import create_model
from ._ext import cpu_kernels
from .runtime import configure_cpu

__all__ = ["TrainConfig", "RECIPES", "fit", "evaluate", "load_data", "build_model_for", "ModelEMA",
           "WarmupCosine", "TrainingError", "MODEL_INFO", "LAST"]

# Paddle warns at every BatchNorm forward in training mode that it tracks running statistics
warnings.filterwarnings("ignore", message="When training, we now always track global mean")

MODEL_INFO = "model_info.json"
LAST = "last.pdckpt"
# settings that may change when resuming; any other difference is refused
RESUMABLE_CHANGES = {"output", "resume", "workers", "pretrained", "log_every"}


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults reproduce the seed notebook's recipe: BiFormer-T
    at 224x224, batch 32, 50 epochs, Adam (lr 1e-4, weight decay 1e-5), cosine decay stepped
    every iteration, label smoothing 0.1, RandomResizedCrop/ColorJitter/flip/rotation and mixup."""

    arch: str = "biformer_tiny"
    img_size: int = 224
    model_kwargs: dict = field(default_factory=dict)  # BiFormer overrides, e.g. {"depth": [1, 1, 2, 1]}
    epochs: int = 50
    batch_size: int = 32
    optimizer: str = "adam"            # adam | adamw
    lr: float = 1e-4
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    mixup: float = 0.2                 # Beta(alpha, alpha) of Mixup; 0 disables
    cutmix: float = 0.0                # Beta(alpha, alpha) of CutMix; 0 disables
    mix_prob: float = 1.0
    clip_grad: float | None = None     # global-norm gradient clipping
    drop_path: float = 0.0
    amp: str | None = None             # None | float16 | bfloat16 (GPU)
    ema: bool = False
    ema_decay: float = 0.9998
    seed: int = 42
    data_path: str | None = None       # image folders; default: CIFAR-10
    data_file: str | None = None       # cifar-10-python.tar.gz
    val_split: float | None = None
    subset: int | None = None
    workers: int = 2
    pretrained: str | None = None
    output: str = os.path.join("work", "model")
    resume: str | None = None          # a last.pdckpt, or "auto"
    log_every: int = 10

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_recipe(cls, recipe: str = "seed", **overrides) -> "TrainConfig":
        """A config from a named recipe (:data:`RECIPES`) with ``overrides`` (None values are
        ignored, so command-line options that were not given keep the recipe's values)."""
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(sorted(RECIPES))}")
        values = dict(RECIPES[recipe])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# Named recipes: the option values that differ from TrainConfig's defaults (the seed's recipe).
RECIPES = {
    "seed": {},
    # CIFAR-10 at 32x32 in little time: AdamW with a high peak rate after a short warmup, cosine
    # to 1e-5, random crop + flip, label smoothing, no Mixup (it slows short schedules down)
    "cifar-fast": dict(img_size=32, batch_size=128, optimizer="adamw", lr=2e-3, min_lr=1e-5,
                       warmup_epochs=0.5, weight_decay=0.05, mixup=0.0, label_smoothing=0.1),
}


# ----------------------------------------------------------------------------- pieces
class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``min_lr`` at
    ``total_steps``; stepped once per iteration. ``state_dict`` makes it resumable."""

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 min_lr: float = 0.0, last_epoch: int = -1):
        self.total_steps, self.warmup_steps, self.min_lr = max(1, total_steps), warmup_steps, min_lr
        super().__init__(learning_rate, last_epoch)

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


class ModelEMA:
    """Exponential moving average of a model's weights (and BatchNorm statistics)."""

    def __init__(self, model, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model, step: int):
        d = min(self.decay, (1 + step) / (10 + step))  # warm up the average early in training
        for k, v in model.state_dict().items():
            if paddle.is_floating_point(v):
                self.shadow[k].set_value(self.shadow[k] * d + v.detach() * (1.0 - d))
            else:
                self.shadow[k].set_value(v)

    def state_dict(self):
        return self.shadow

    def set_state_dict(self, state):
        for k, v in state.items():
            self.shadow[k].set_value(paddle.to_tensor(v) if not isinstance(v, paddle.Tensor) else v)


def _dist():
    """(rank, world_size) of this process."""
    try:
        world = paddle.distributed.get_world_size()
    except Exception:
        world = 1
    return (paddle.distributed.get_rank() if world > 1 else 0), world


def _all_reduce_sum(values: list) -> list:
    """Sum a list of floats over the data-parallel processes."""
    _, world = _dist()
    if world == 1:
        return values
    t = paddle.to_tensor(np.asarray(values, dtype=np.float64))
    paddle.distributed.all_reduce(t)
    return t.numpy().tolist()


def topk_correct(logits, labels, ks=(1, 5)) -> list:
    """Number of samples whose label is among the top-k logits, for each k."""
    kmax = min(max(ks), logits.shape[-1])
    top = paddle.topk(logits, kmax, axis=-1)[1].numpy()
    hit = top == labels.numpy().reshape(-1, 1)
    return [int(hit[:, :min(k, kmax)].any(axis=1).sum()) for k in ks]


# ----------------------------------------------------------------------------- data and model
def load_data(config: TrainConfig) -> tuple:
    """(train, val) ImageData for the config: image folders if data_path, else CIFAR-10."""
    if config.data_path:
        train, val = load_image_folders(config.data_path, config.img_size, config.val_split, config.seed)
    else:
        train, val = load_cifar10(config.data_file)
    if config.subset:
        train = train.subset(config.subset, config.seed)
        val = val.subset(max(1, config.subset // 5), config.seed)
    if recipe_for(config.img_size) == "cifar":  # small images live in memory
        train = materialize(train, config.img_size, "decoding train images")
        val = materialize(val, config.img_size, "decoding val images")
    return train, val


def build_model_for(config: TrainConfig, num_classes: int):
    model = create_model(config.arch, num_classes=num_classes, img_size=config.img_size,
                         drop_path_rate=config.drop_path, **config.model_kwargs)
    model.check_input_size(config.img_size, config.img_size)
    return model


def model_info(config: TrainConfig, classes: list, model) -> dict:
    """What eval.py and the notebook need to rebuild the model and read its outputs."""
    return {"arch": config.arch, "img_size": config.img_size, "num_classes": len(classes),
            "classes": list(classes), "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "n_win": model.n_win, "topks": model.topks, "model_kwargs": dict(config.model_kwargs),
            "ema": config.ema}


# ----------------------------------------------------------------------------- evaluation
@paddle.no_grad()
def evaluate(model, loader: BatchLoader, smoothing: float = 0.0, desc: str = "eval",
             show_progress: bool = True) -> dict:
    """Loss (cross-entropy with ``smoothing``), top-1/top-5 accuracy (%), the confusion matrix
    (``confusion[i][j]``: images of class i predicted j) and throughput of ``model`` over the
    loader (summed over data-parallel processes)."""
    model.eval()
    num_classes = len(loader.data.classes)
    loss_sum = n = c1 = c5 = 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    start = time.perf_counter()
    bar = progress(loader.batches(0), total=len(loader), desc=desc, enabled=show_progress)
    for images, labels in bar:
        logits = model(to_model_input(images))
        targets = smooth_one_hot(labels, num_classes, smoothing)
        loss_sum += float(soft_cross_entropy(logits, targets)) * labels.shape[0]
        k1, k5 = topk_correct(logits, labels)
        c1, c5, n = c1 + k1, c5 + k5, n + labels.shape[0]
        np.add.at(confusion, (labels.numpy(), logits.argmax(-1).numpy()), 1)
    seconds = time.perf_counter() - start
    loss_sum, n, c1, c5, *flat = _all_reduce_sum([loss_sum, n, c1, c5, *confusion.ravel().tolist()])
    confusion = np.asarray(flat, dtype=np.int64).reshape(num_classes, num_classes)
    n = max(n, 1)
    return {"loss": loss_sum / n, "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n,
            "n": int(n), "img_s": n / max(seconds, 1e-9), "confusion": confusion.tolist()}


# ----------------------------------------------------------------------------- training
class _Run:
    """One training run: the state that fit() builds, steps and saves."""

    def __init__(self, config: TrainConfig, data: tuple | None = None):
        self.config = config
        self.rank, self.world = _dist()  # known from the launcher's environment before init
        self.main = self.rank == 0
        if paddle.device.get_device().startswith("cpu"):
            configure_cpu()
            cpu_kernels()  # compile/load before the processes synchronise (gloo waits only 30 s)
        paddle.seed(config.seed)
        self.train_data, self.val_data = data if data is not None else load_data(config)
        self.classes = self.train_data.classes
        self.model = build_model_for(config, len(self.classes))
        if config.pretrained:
            load_pretrained(self.model, config.pretrained)
        self.train_loader = BatchLoader(self.train_data, config.batch_size, config.img_size, True,
                                        config.seed, config.workers, self.rank, self.world)
        self.val_loader = BatchLoader(self.val_data, config.batch_size, config.img_size, False,
                                      config.seed, config.workers, self.rank, self.world)
        if len(self.train_loader) == 0:
            raise DataError(f"{len(self.train_data)} training images make no batch of "
                            f"{config.batch_size} per process; lower --batch-size")
        steps = len(self.train_loader) * config.epochs
        self.scheduler = WarmupCosine(config.lr, steps, int(config.warmup_epochs * len(self.train_loader)),
                                      config.min_lr)
        clip = paddle.nn.ClipGradByGlobalNorm(config.clip_grad) if config.clip_grad else None
        make = {"adam": paddle.optimizer.Adam, "adamw": paddle.optimizer.AdamW}.get(config.optimizer)
        if make is None:
            raise ValueError(f"optimizer must be adam or adamw, got {config.optimizer!r}")
        self.optimizer = make(learning_rate=self.scheduler, parameters=self.model.parameters(),
                              weight_decay=config.weight_decay, grad_clip=clip)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema else None
        self.amp = config.amp if config.amp and paddle.is_compiled_with_cuda() and \
            not paddle.device.get_device().startswith("cpu") else None
        if config.amp and not self.amp:
            print("note: --amp needs a GPU; training in float32")
        self.scaler = paddle.amp.GradScaler() if self.amp == "float16" else None
        self.mixer = MixupCutmix(len(self.classes), config.mixup, config.cutmix, config.mix_prob,
                                 label_smoothing=config.label_smoothing)
        if self.world > 1:  # after the slow set-up: data decoding, kernel compilation
            paddle.distributed.init_parallel_env()
        self.net = paddle.DataParallel(self.model) if self.world > 1 else self.model
        self.epoch = 0          # epochs completed
        self.step_in_epoch = 0  # batches completed in the current epoch (after Ctrl-C)
        self.best = -1.0
        self.history = []
        os.makedirs(config.output, exist_ok=True)
        self.vdl = self._visualdl() if self.main else None

    def _visualdl(self):
        try:
            from visualdl import LogWriter
        except ImportError:
            return None
        return LogWriter(logdir=os.path.join(self.config.output, "vdl"))

    # -- checkpoints
    def path(self, name):
        return os.path.join(self.config.output, name)

    def eval_weights(self):
        """The weights that are evaluated and saved as best/final: the EMA if kept."""
        return self.ema.state_dict() if self.ema else self.model.state_dict()

    def save_last(self):
        if not self.main:
            return
        state = {"model": self.model.state_dict(),
                 "optimizer": portable_optimizer_state(self.optimizer, self.model),
                 "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                 "step_in_epoch": self.step_in_epoch, "best_top1": self.best,
                 "history": self.history, "config": self.config.to_dict(), "classes": self.classes,
                 "ema": self.ema.state_dict() if self.ema else None,
                 "scaler": self.scaler.state_dict() if self.scaler else None,
                 "rng": {"numpy": np.random.get_state(), "paddle_seed": self.config.seed}}
        atomic_save(state, self.path(LAST))

    def save_weights(self, prefix: str):
        if self.main:
            atomic_save(self.eval_weights(), self.path(f"{prefix}_model.pdparams"))
            atomic_save(self.optimizer.state_dict(), self.path(f"{prefix}_optimizer.pdopt"))

    def resume(self, path: str):
        if path == "auto":
            path = self.path(LAST)
            if not os.path.isfile(path):
                print(f"--resume auto: no {path} yet, starting a new run")
                return
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--resume {path!r}: no such checkpoint (a run's last.pdckpt, "
                                    f"or --resume auto for {self.path(LAST)})")
        try:
            state = paddle.load(path)
        except Exception as e:
            raise TrainingError(f"--resume {path!r} cannot be read ({type(e).__name__}: {e})") from None
        if not isinstance(state, dict) or "config" not in state:
            raise TrainingError(f"--resume {path!r} is not a training checkpoint (last.pdckpt); to "
                                "start from weights use --pretrained")
        old, new = state["config"], self.config.to_dict()
        changed = {k: (old.get(k), v) for k, v in new.items() if k not in RESUMABLE_CHANGES and old.get(k) != v}
        if changed:
            lines = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in changed.items()))
            raise TrainingError(f"--resume {path!r} was made with another configuration ({lines}); "
                                "resume with the same options, or start a new run in another --output")
        self.model.set_state_dict(state["model"])
        restore_optimizer_state(self.optimizer, self.model, state["optimizer"])
        self.scheduler.set_state_dict(state["scheduler"])
        if self.ema and state.get("ema"):
            self.ema.set_state_dict(state["ema"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = state["epoch"], state.get("step_in_epoch", 0)
        self.best, self.history = state["best_top1"], list(state["history"])
        np.random.set_state(state["rng"]["numpy"])
        if self.main:
            print(f"resumed {path}: {self.epoch} epochs done"
                  + (f" + {self.step_in_epoch} batches" if self.step_in_epoch else ""))

    # -- one epoch
    def train_epoch(self):
        cfg, epoch = self.config, self.epoch
        self.net.train()
        start_step = self.step_in_epoch
        total = len(self.train_loader)
        loss_sum = correct = seen = 0.0
        t0 = time.perf_counter()
        bar = progress(self.train_loader.batches(epoch, start_step), total=total, initial=start_step,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", enabled=self.main)
        for step, (images, labels) in enumerate(bar, start=start_step):
            paddle.seed(int(rng_for(cfg.seed, epoch, step, self.rank).integers(1 << 31)))  # DropPath
            x = to_model_input(images)
            x, targets = self.mixer(x, labels, rng_for(cfg.seed, epoch, self.rank, step, 4))
            with paddle.amp.auto_cast(enable=self.amp is not None, dtype=self.amp or "float16"):
                logits = self.net(x)
                loss = soft_cross_entropy(logits, targets)
            value = float(loss)
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at epoch {epoch + 1}, batch {step + 1}; training "
                    f"stopped. The last good checkpoint is {self.path(LAST)} (epoch {self.epoch}). "
                    "Lower --lr, add --clip-grad 1.0 or --warmup-epochs, then --resume it.")
            if self.scaler:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.clear_grad()
            self.scheduler.step()
            if self.ema:
                self.ema.update(self.model, self.scheduler.last_epoch)
            self.step_in_epoch = step + 1
            n = labels.shape[0]
            loss_sum += value * n
            correct += int((logits.argmax(-1) == labels).astype("int64").sum())
            seen += n
            if self.main and (step % cfg.log_every == 0 or step + 1 == total):
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}",
                                lr=f"{self.scheduler.get_lr():.2e}")
        seconds = time.perf_counter() - t0
        loss_sum, correct, seen = _all_reduce_sum([loss_sum, correct, seen])
        seen = max(seen, 1)
        return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
                "train_img_s": seen / max(seconds, 1e-9)}

    def _share_rank0_buffers(self):
        """BatchNorm statistics differ between data-parallel processes (each normalises its own
        shard); use rank 0's, the ones it saves, everywhere before validating."""
        if self.world > 1:
            for name, buf in self.model.state_dict().items():
                if name.endswith(("_mean", "_variance")):
                    paddle.distributed.broadcast(buf, src=0)

    def evaluate_now(self):
        self._share_rank0_buffers()
        if self.ema:  # evaluate the moving average, restore the live weights after
            live = {k: v.clone() for k, v in self.model.state_dict().items()}
            self.model.set_state_dict(self.ema.state_dict())
        res = evaluate(self.model, self.val_loader, self.config.label_smoothing,
                       desc="validate", show_progress=self.main)
        if self.ema:
            self.model.set_state_dict(live)
        return res

    def log_epoch(self, record):
        self.history.append(record)
        if not self.main:
            return
        with open(self.path("metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.vdl:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.vdl.add_scalar(tag=k, value=v, step=record["epoch"])
        from .plots import plot_learning_curves
        plot_learning_curves(self.history, self.config.output)
        print(f"epoch {record['epoch']}/{self.config.epochs}: train loss {record['train_loss']:.4f} "
              f"acc {record['train_acc']:.2f}% | val loss {record['val_loss']:.4f} "
              f"top-1 {record['val_top1']:.2f}% top-5 {record['val_top5']:.2f}% | "
              f"{record['train_img_s']:.0f} img/s | best {self.best:.2f}%", flush=True)


def fit(config: TrainConfig, data: tuple | None = None) -> dict:
    """Train (or continue with ``config.resume``) and return the last epoch's metrics.
    ``data``: (train, val) ImageData already loaded with :func:`load_data` (else loaded here)."""
    run = _Run(config, data)
    if config.resume:
        run.resume(config.resume)
    if run.main:
        atomic_write(run.path(MODEL_INFO), lambda tmp: open(tmp, "w").write(
            json.dumps(model_info(config, run.classes, run.model), indent=1)))
        print(f"{config.arch} at {config.img_size}x{config.img_size}, {len(run.classes)} classes, "
              f"{len(run.train_data)} train / {len(run.val_data)} val images, "
              f"{len(run.train_loader)} batches of {config.batch_size} per epoch"
              + (f" x {run.world} processes" if run.world > 1 else ""), flush=True)
    record = run.history[-1] if run.history else {}
    try:
        while run.epoch < config.epochs:
            t0 = time.perf_counter()
            train_metrics = run.train_epoch()
            val = run.evaluate_now()
            run.epoch, run.step_in_epoch = run.epoch + 1, 0
            improved = val["top1"] > run.best
            run.best = max(run.best, val["top1"])
            record = {"epoch": run.epoch, "lr": float(run.scheduler.get_lr()), **train_metrics,
                      "val_loss": val["loss"], "val_top1": val["top1"], "val_top5": val["top5"],
                      "val_img_s": val["img_s"], "best_top1": run.best,
                      "epoch_seconds": time.perf_counter() - t0}
            run.log_epoch(record)
            if improved:
                run.save_weights("best")
            run.save_last()
    except KeyboardInterrupt:
        run.save_last()
        if run.main:
            print(f"\ninterrupted: saved {run.path(LAST)} ({run.epoch} epochs + {run.step_in_epoch} "
                  "batches); continue with --resume auto")
        raise
    run.save_weights("final")
    return record
