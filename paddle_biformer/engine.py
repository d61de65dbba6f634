"""Training and evaluation engine shared by train.py, eval.py and the notebook, for every model
of the zoo.

    from paddle_biformer.engine import TrainConfig, fit
    fit(TrainConfig(arch="casvit_xs", img_size=32, epochs=2, data_path="cifar10/"))

Outputs in ``config.output`` (see :mod:`paddle_biformer.run_folder`): best/final model and
optimizer files (the seed notebook's names), ``last.pdckpt`` (everything needed to resume,
written atomically after every epoch and when a run is stopped), ``model_info.json``,
``metrics.jsonl``, learning-curve PNGs and VisualDL logs when visualdl is installed.

A run stops only between two steps: Ctrl-C or SIGTERM finishes the step in progress, saves
``last.pdckpt`` and raises :class:`TrainingStopped`; ``--resume`` then ends with exactly the
weights of an uninterrupted run.
"""
from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import paddle

from ._ext import cpu_kernels
from .checkpoint import atomic_save, portable_optimizer_state, read_paddle_file, restore_optimizer_state
from .config import RECIPES, ConfigError, TrainConfig
from .data import DataError, load_cifar10, load_image_folders, materialize, rng_for, verify_images
from .factory import create_model, load_pretrained
from .inference import read_model_info
from .info import ModelInfo
from .loader import BatchLoader, recipe_for
from .mixup import MixupCutmix, smooth_one_hot, soft_cross_entropy
from .optim import EpochCosine, ModelEMA, WarmupCosine, build_optimizer
from .progress import RunClock, format_duration, interactive, progress
from .registry import get_family
from .run_folder import LAST, MODEL_INFO, RunFolder
from .runtime import configure_cpu
from .signals import StopRequests

__all__ = ["TrainConfig", "RECIPES", "ConfigError", "fit", "evaluate", "load_data", "build_model_for",
           "model_info_for", "TrainingError", "TrainingStopped", "MODEL_INFO", "LAST"]

# Paddle warns at every BatchNorm forward in training mode that it tracks running statistics
warnings.filterwarnings("ignore", message="When training, we now always track global mean")

# settings that may change when resuming; any other difference is refused
RESUMABLE_CHANGES = {"output", "resume", "workers", "pretrained", "log_every", "overwrite", "extend"}
CPU_LONG_RUN = 3600.0  # seconds: beyond this on a CPU, suggest the fast 32x32 recipe
ESTIMATE_AFTER_STEPS = 3  # timed steps before the whole run's time is estimated


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


class TrainingStopped(KeyboardInterrupt):
    """The run was stopped by a signal between two steps and saved; ``exit_code`` is the
    shell's (130 for Ctrl-C)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


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
def load_data(config: TrainConfig, verify: bool = True) -> tuple:
    """(train, val) ImageData for the config: image folders if data_path, else CIFAR-10.
    Images decoded later (over 64 px) are checked first (``verify``), so a broken file stops
    the run before training, not hours into it."""
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
    elif verify:
        for split, name in ((train, "train"), (val, "val")):
            if split.paths is not None:
                verify_images(split.paths, f"checking {name} images")
    return train, val


def build_model_for(config: TrainConfig, num_classes: int):
    """The registered model ``config.arch`` for ``config.img_size`` inputs, its drop-path rate
    and constructor overrides applied; a size it cannot take is refused here."""
    model = create_model(config.arch, num_classes=num_classes, img_size=config.img_size,
                         drop_path_rate=config.drop_path, **config.model_kwargs)
    model.check_input_size(config.img_size, config.img_size)
    return model


def model_info_for(config: TrainConfig, classes: list, model) -> ModelInfo:
    """What eval.py, reports and export need to rebuild the model and read its outputs."""
    return ModelInfo(arch=model.arch, family=model.family, img_size=config.img_size, classes=list(classes),
                     crop_pct=config.crop_pct,
                     interpolation="bilinear" if config.interpolation == "random" else config.interpolation,
                     model_kwargs=dict(config.model_kwargs), ema=config.ema,
                     extras=model.info_extras(), recipe=config.recipe)


# ----------------------------------------------------------------------------- evaluation
@paddle.no_grad()
def evaluate(model, loader: BatchLoader, smoothing: float = 0.0, desc: str = "eval",
             show_progress: bool = True, mean=None, std=None, should_stop=None) -> dict | None:
    """Loss (cross-entropy with ``smoothing``), top-1/top-5 accuracy (%), the confusion matrix
    (``confusion[i][j]``: images of class i predicted j) and throughput of ``model`` over the
    loader (summed over data-parallel processes). ``should_stop()`` is asked after each batch:
    True abandons the pass (returns None)."""
    model.eval()
    num_classes = len(loader.data.classes)
    norm = {} if mean is None else {"mean": mean, "std": std}
    loss_sum = n = c1 = c5 = 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    start = time.perf_counter()
    bar = progress(loader.batches(0), total=len(loader), desc=desc, enabled=show_progress)
    for images, labels in bar:
        logits = model(loader.model_input(images, **norm))
        targets = smooth_one_hot(labels, num_classes, smoothing)
        loss_sum += float(soft_cross_entropy(logits, targets)) * labels.shape[0]
        k1, k5 = topk_correct(logits, labels)
        c1, c5, n = c1 + k1, c5 + k5, n + labels.shape[0]
        np.add.at(confusion, (labels.numpy(), logits.argmax(-1).numpy()), 1)
        if should_stop is not None and should_stop():
            return None
    seconds = time.perf_counter() - start
    loss_sum, n, c1, c5, *flat = _all_reduce_sum([loss_sum, n, c1, c5, *confusion.ravel().tolist()])
    confusion = np.asarray(flat, dtype=np.int64).reshape(num_classes, num_classes)
    n = max(n, 1)
    return {"loss": loss_sum / n, "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n,
            "n": int(n), "img_s": n / max(seconds, 1e-9), "seconds": seconds,
            "confusion": confusion.tolist()}


# ----------------------------------------------------------------------------- training
class Trainer:
    """The state of one run (model, optimizer, schedule, EMA, position, history) and its steps.
    Builds everything from the config; writes nothing (see :func:`fit`)."""

    def __init__(self, config: TrainConfig, data: tuple | None = None, mean_std: tuple | None = None):
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
        self.info = model_info_for(config, self.classes, self.model)
        if mean_std is not None:  # from the checkpoint being resumed
            self.info.mean, self.info.std = tuple(mean_std[0]), tuple(mean_std[1])
        elif config.mean_std == "auto":
            self.info.mean, self.info.std = training_mean_std(self.train_data, self.main)
        if config.pretrained:
            self._load_pretrained(config.pretrained)
        transform = train_transform_for(config, self.info.mean, self.info.std)
        self.train_loader = BatchLoader(self.train_data, config.batch_size, config.img_size, True,
                                        config.seed, config.workers, self.rank, self.world,
                                        transform=transform, cutout=0.0 if transform else config.cutout,
                                        repeats=config.repeated_aug)
        self.val_loader = BatchLoader(self.val_data, config.batch_size, config.img_size, False,
                                      config.seed, config.workers, self.rank, self.world,
                                      crop_pct=config.crop_pct, interpolation=config.interpolation)
        if len(self.train_loader) == 0:
            raise DataError(f"{len(self.train_data)} training images make no batch of "
                            f"{config.batch_size} per process; lower --batch-size")
        steps_per_epoch = len(self.train_loader)
        self.lr = scaled_lr(config, self.world)
        if config.schedule == "epoch":
            self.scheduler = EpochCosine(self.lr, steps_per_epoch, config.epochs, config.warmup_epochs,
                                         config.min_lr, config.warmup_lr)
        else:
            # a frozen backbone's epochs train the new classifier at the peak rate; the warmup
            # and the cosine start when the backbone thaws
            self.scheduler = WarmupCosine(self.lr, steps_per_epoch * config.epochs,
                                          int(config.warmup_epochs * steps_per_epoch), config.min_lr,
                                          config.warmup_lr,
                                          hold_steps=int(round(config.freeze_epochs * steps_per_epoch)))
        self.head_prefixes = get_family(self.model.family).classifier_prefixes  # the classifier's names
        self.optimizer = build_optimizer(config.optimizer, self.model, self.scheduler,
                                         config.weight_decay, config.clip_grad, config.no_wd_norm_bias,
                                         self.head_prefixes, config.head_lr_scale)
        self.ema = ModelEMA(self.model, config.ema_decay, config.ema_warmup) if config.ema else None
        self.freeze_steps = int(round(config.freeze_epochs * steps_per_epoch))
        self.lr_used = float(self.scheduler.get_lr())  # the learning rate of the last step taken
        self.frozen = None  # whether the backbone is frozen now (set at each step)
        self.amp = config.amp if config.amp and paddle.is_compiled_with_cuda() and \
            not paddle.device.get_device().startswith("cpu") else None
        if config.amp and not self.amp and self.main:
            print("note: --amp needs a GPU; training in float32")
        self.scaler = paddle.amp.GradScaler() if self.amp == "float16" else None
        self.mixer = MixupCutmix(len(self.classes), config.mixup, config.cutmix, config.mix_prob,
                                 label_smoothing=config.label_smoothing)
        if self.world > 1:  # after the slow set-up: data decoding, kernel compilation
            paddle.distributed.init_parallel_env()
        self.net = paddle.DataParallel(self.model) if self.world > 1 else self.model
        self.epoch = 0          # epochs completed
        self.step_in_epoch = 0  # batches completed in the current epoch
        self.epoch_sums = [0.0, 0.0, 0.0, 0.0]  # loss * n, correct, seen, seconds of this epoch
        self.best = -1.0
        self.history = []
        self.estimate_printed = False

    def _load_pretrained(self, weights: str) -> None:
        """--pretrained: the backbone always; the classifier only where it fits and the weights
        were not trained on other classes (model_info.json beside our own weights says which)."""
        trained_on = read_model_info(weights)
        other_classes = trained_on is not None and list(trained_on.classes) != list(self.classes)
        load_pretrained(self.model, weights, new_classifier=other_classes)
        if other_classes and self.main:
            shown = ", ".join(trained_on.classes[:4]) + (", ..." if len(trained_on.classes) > 4 else "")
            print(f"note: {weights} was trained on other classes ({shown}): its backbone is loaded, "
                  "the classifier starts fresh", flush=True)

    # -- state
    def checkpoint_state(self) -> dict:
        return {"model": self.model.state_dict(),
                "optimizer": portable_optimizer_state(self.optimizer, self.model),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch, "epoch_sums": list(self.epoch_sums),
                "best_top1": self.best, "history": self.history, "config": self.config.to_dict(),
                "classes": self.classes, "info": self.info.to_dict(),
                "ema": self.ema.state_dict() if self.ema else None,
                "scaler": self.scaler.state_dict() if self.scaler else None}

    def eval_weights(self):
        """The weights that are evaluated and saved as best/final: the EMA if kept."""
        return self.ema.state_dict() if self.ema else self.model.state_dict()

    def restore(self, state: dict, path: str) -> None:
        """Continue from a ``last.pdckpt`` (``state``, read from ``path``): the same
        configuration is required, except RESUMABLE_CHANGES and, with ``extend``, more epochs."""
        old, new = state["config"], self.config.to_dict()
        changed = {k: (old.get(k), v) for k, v in new.items()
                   if k not in RESUMABLE_CHANGES and k in old and old.get(k) != v}
        if "epochs" in changed and self.config.extend and new["epochs"] > old["epochs"]:
            changed.pop("epochs")
        elif "epochs" in changed and new["epochs"] > old["epochs"]:
            raise TrainingError(
                f"--resume {path!r} was planned for {old['epochs']} epochs; to train it on to "
                f"{new['epochs']} add --extend (the cosine schedule is then re-planned over "
                f"{new['epochs']} epochs: the learning rate goes back up to where a "
                f"{new['epochs']}-epoch run would be at epoch {state['epoch']} and decays again)")
        if changed:
            lines = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
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
        self.epoch_sums = list(state.get("epoch_sums") or [0.0, 0.0, 0.0, 0.0])
        self.best, self.history = state["best_top1"], list(state["history"])

    # -- steps
    def train_epoch(self, stop: StopRequests, clock: RunClock, log_line) -> dict | None:
        """Train the rest of the current epoch; the metrics, or None if a stop was requested
        (the state is then that after the last completed step)."""
        cfg, epoch = self.config, self.epoch
        self.net.train()
        total = len(self.train_loader)
        start = self.step_in_epoch
        bar = progress(self.train_loader.batches(epoch, start), total=total, initial=start,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", enabled=self.main)
        last_log = time.perf_counter()
        for step, (images, labels) in enumerate(bar, start=start):
            t0 = time.perf_counter()
            clock.start_step()
            self.set_frozen(epoch * total + step < self.freeze_steps)
            paddle.seed(int(rng_for(cfg.seed, epoch, step, self.rank).integers(1 << 31)))  # DropPath
            x = self.train_loader.model_input(images, self.info.mean, self.info.std)
            x, targets = self.mixer(x, labels, rng_for(cfg.seed, epoch, self.rank, step, 4))
            with paddle.amp.auto_cast(enable=self.amp is not None, dtype=self.amp or "float16"):
                logits = self.net(x)
                loss = soft_cross_entropy(logits, targets)
            value = float(loss)
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at epoch {epoch + 1}, batch {step + 1}; training "
                    f"stopped. The last good checkpoint is {os.path.join(cfg.output, LAST)} (epoch "
                    f"{self.epoch}). Lower --lr, add --clip-grad 1.0 or --warmup-epochs, then --resume it.")
            self.lr_used = float(self.scheduler.get_lr())
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
            n = labels.shape[0]
            correct = int((logits.argmax(-1) == labels).astype("int64").sum())
            sums = self.epoch_sums
            self.epoch_sums = [sums[0] + value * n, sums[1] + correct, sums[2] + n,
                               sums[3] + time.perf_counter() - t0]
            self.step_in_epoch = step + 1
            clock.end_step(epoch, step + 1)
            if self.main and not self.estimate_printed and clock.timed_steps >= ESTIMATE_AFTER_STEPS:
                self.estimate_printed = True
                (bar.write if interactive() else log_line)(estimate_line(cfg, clock, total, self.epoch))
            if self.main:
                sums = self.epoch_sums
                loss_avg, acc = sums[0] / max(sums[2], 1), 100 * sums[1] / max(sums[2], 1)
                if interactive():
                    bar.set_postfix_str(f"loss {loss_avg:.3f} acc {acc:.1f}% lr "
                                        f"{self.lr_used:.2e} | {clock.eta_text()}", refresh=False)
                elif time.perf_counter() - last_log >= cfg.log_every or step + 1 == total:
                    last_log = time.perf_counter()
                    log_line(f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{total} "
                             f"(run {100 * clock.fraction_done():.1f}%): loss {loss_avg:.4f} acc {acc:.2f}% "
                             f"lr {self.lr_used:.2e}, {n / max(time.perf_counter() - t0, 1e-9):.1f} img/s; "
                             f"{clock.eta_text()}")
            if stop.requested():
                return None
        sums = _all_reduce_sum(list(self.epoch_sums[:3])) + [self.epoch_sums[3]]
        seen = max(sums[2], 1)
        return {"train_loss": sums[0] / seen, "train_acc": 100.0 * sums[1] / seen,
                "train_img_s": seen / max(sums[3], 1e-9)}

    def set_frozen(self, frozen: bool) -> None:
        """Freeze (or thaw) everything but the classifier: no gradients, BatchNorm statistics kept
        (its layers in eval mode), as a warm start for fine-tuning a new classifier."""
        if frozen == self.frozen and not frozen:
            return
        prefixes = self.head_prefixes
        if frozen != self.frozen:
            for name, p in self.model.named_parameters():
                if not name.endswith(("_mean", "_variance")):
                    p.stop_gradient = frozen and not name.startswith(prefixes)
        if frozen:  # net.train() at each epoch start switched them back
            for name, layer in self.model.named_sublayers():
                if not name.startswith(tuple(p.rstrip(".") for p in prefixes)):
                    layer.eval()
        self.frozen = frozen

    def _share_rank0_buffers(self):
        """BatchNorm statistics differ between data-parallel processes (each normalises its own
        shard); use rank 0's, the ones it saves, everywhere before validating."""
        if self.world > 1:
            for name, buf in self.model.state_dict().items():
                if name.endswith(("_mean", "_variance")):
                    paddle.distributed.broadcast(buf, src=0)

    def validate(self, stop: StopRequests) -> dict | None:
        """Validation metrics of the weights that are saved (the EMA if kept); None if a stop
        was requested during the pass."""
        self._share_rank0_buffers()
        if self.ema:  # evaluate the moving average, restore the live weights after
            live = {k: v.clone() for k, v in self.model.state_dict().items()}
            self.model.set_state_dict(self.ema.state_dict())
        try:
            return evaluate(self.model, self.val_loader, self.config.label_smoothing, desc="validate",
                            show_progress=self.main, mean=self.info.mean, std=self.info.std,
                            should_stop=stop.requested)
        finally:
            if self.ema:
                self.model.set_state_dict(live)


def scaled_lr(config: TrainConfig, world: int) -> float:
    """--lr, scaled linearly to the global batch when --lr-base-batch is set (the official
    ``lr * batch_size * world_size / 512``)."""
    if not config.lr_base_batch:
        return config.lr
    return config.lr * config.batch_size * world / config.lr_base_batch


def train_transform_for(config: TrainConfig, mean, std):
    """The per-image training transform of ``config.augment`` (None: the default pipelines of
    :class:`~paddle_biformer.loader.BatchLoader`)."""
    if config.augment != "timm":
        return None
    from .augment import build_train_transform

    return build_train_transform(
        {"interpolation": config.interpolation, "auto_augment": config.auto_augment,
         "color_jitter": config.color_jitter or None, "re_prob": config.reprob, "re_mode": config.remode,
         "re_count": 1, "cutout": {"p": config.cutout} if config.cutout else None},
        config.img_size, mean, std)


def training_mean_std(data, show_progress: bool = True) -> tuple:
    """Per-channel mean and std (of RGB in [0, 1]) over every training image, for --mean-std auto."""
    from .augment import compute_mean_std

    source = data.images if data.images is not None else data.paths
    mean, std = compute_mean_std(source, desc="mean/std of the training images", progress_bar=show_progress)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def estimate_line(config: TrainConfig, clock: RunClock, steps_per_epoch: int, epochs_done: int) -> str:
    """One line with the whole run's estimated time once a few steps were timed; on a CPU, when
    it exceeds an hour, the fast 32x32 recipe is suggested (the defaults stay the seed's)."""
    _, run_left = clock.remaining()
    line = (f"estimated time for the rest of the run: {format_duration(run_left)} "
            f"({clock.seconds_per_step:.2f} s per batch of {config.batch_size}, "
            f"{steps_per_epoch} batches per epoch, {config.epochs - epochs_done} epochs to go)")
    on_cpu = paddle.device.get_device().startswith("cpu")
    if on_cpu and run_left > CPU_LONG_RUN:
        line += (f"\nnote: on this CPU that is long. For CIFAR-10 in minutes try `--recipe cifar-fast "
                 f"--img-size 32 --epochs 6` (about 73% test top-1 in ~20 min on 2 cores for biformer_tiny); "
                 f"the {config.img_size}px defaults are the seed notebook's, meant for a GPU")
    return line


def fit(config: TrainConfig, data: tuple | None = None) -> dict:
    """Train (or continue with ``config.resume``) and return the last epoch's metrics.
    ``data``: (train, val) ImageData already loaded with :func:`load_data` (else loaded here).

    Raises :class:`TrainingStopped` after saving when Ctrl-C/SIGTERM stopped the run,
    :class:`TrainingError` when training cannot go on, FileExistsError when ``output`` holds
    another run (see ``overwrite``), ConfigError for invalid settings."""
    config.validate()
    folder = RunFolder(config.output)
    rank, _ = _dist()
    resume_path = None
    if config.resume:
        resume_path = folder.path(LAST) if config.resume == "auto" else config.resume
        if config.resume == "auto" and not os.path.isfile(resume_path):
            if rank == 0:
                print(f"--resume auto: no {resume_path} yet, starting a new run")
            resume_path = None
        elif not os.path.isfile(resume_path):
            raise FileNotFoundError(f"--resume {config.resume!r}: no such checkpoint (a run's last.pdckpt, "
                                    f"or --resume auto for {folder.path(LAST)})")
    if rank == 0:
        folder.check_writable()
        if resume_path is None:
            moved = folder.check_new_run(config.overwrite)
            if moved:
                print(f"--overwrite: the previous run's files were moved to {moved}")
    state = None
    if resume_path is not None:  # read before the slow set-up: a bad file fails fast
        state = read_paddle_file(resume_path)
        if not isinstance(state, dict) or "config" not in state:
            raise TrainingError(f"--resume {resume_path!r} is not a training checkpoint (last.pdckpt); "
                                "to start from weights use --pretrained")
    if config.recipe == "finetune" and not config.pretrained and rank == 0:
        print("note: --recipe finetune without --pretrained trains from scratch with a fine-tuning schedule"
              + (" (and --freeze-epochs freezes a random backbone)" if config.freeze_epochs else ""))
    saved_info = (state or {}).get("info") or {}
    mean_std = (saved_info["mean"], saved_info["std"]) if "mean" in saved_info else None
    trainer = Trainer(config, data, mean_std)
    main = trainer.main

    def log_line(text):
        if main:
            print(text, flush=True)

    with StopRequests(trainer.world, announce=main) as stop:  # from here on, a Ctrl-C waits for a step boundary
        if state is not None:
            trainer.restore(state, resume_path)
            log_line(f"resumed {resume_path}: {trainer.epoch} epochs done"
                     + (f" + {trainer.step_in_epoch} batches" if trainer.step_in_epoch else ""))
        if main:
            trainer.info.save(folder.path(MODEL_INFO))
            folder.write_metrics(trainer.history)
        log_line(f"{trainer.model.arch} at {config.img_size}x{config.img_size}, {len(trainer.classes)} classes, "
                 f"{len(trainer.train_data)} train / {len(trainer.val_data)} val images, "
                 f"{len(trainer.train_loader)} batches of {config.batch_size} per epoch, {config.epochs} epochs"
                 + (f" x {trainer.world} processes" if trainer.world > 1 else ""))
        vdl = _visualdl(folder) if main else None
        clock = RunClock(config.epochs, len(trainer.train_loader), len(trainer.val_loader),
                         trainer.epoch, trainer.step_in_epoch)
        record = trainer.history[-1] if trainer.history else {}
        if stop.requested():  # a signal during the set-up above: save where we are
            _save_stopped(trainer, folder, stop, log_line)
        while trainer.epoch < config.epochs:
            t0 = time.perf_counter()
            train_metrics = trainer.train_epoch(stop, clock, log_line)
            if train_metrics is None:
                _save_stopped(trainer, folder, stop, log_line)
            v0 = time.perf_counter()
            val = trainer.validate(stop)
            if val is None:
                _save_stopped(trainer, folder, stop, log_line)
            clock.end_validation(time.perf_counter() - v0)
            trainer.epoch, trainer.step_in_epoch = trainer.epoch + 1, 0
            epoch_seconds = trainer.epoch_sums[3] + (time.perf_counter() - v0)
            trainer.epoch_sums = [0.0, 0.0, 0.0, 0.0]
            improved = val["top1"] > trainer.best
            trainer.best = max(trainer.best, val["top1"])
            record = {"epoch": trainer.epoch, "lr": trainer.lr_used, **train_metrics,
                      "val_loss": val["loss"], "val_top1": val["top1"], "val_top5": val["top5"],
                      "val_img_s": val["img_s"], "best_top1": trainer.best,
                      "epoch_seconds": epoch_seconds, "wall_seconds": time.perf_counter() - t0}
            # training + validation time since the run began (set-up excluded; resumes add up)
            record["elapsed_minutes"] = (sum(r.get("wall_seconds", 0.0) for r in trainer.history)
                                         + record["wall_seconds"]) / 60.0
            trainer.history.append(record)
            if main:
                if improved:
                    _save_weights(trainer, folder, "best")
                atomic_save(trainer.checkpoint_state(), folder.path(LAST))
                _log_epoch(record, trainer, folder, vdl)
        if main:  # inside the signal guard: a Ctrl-C now waits for these files (the run is done)
            _save_weights(trainer, folder, "final")
    return record


def _save_weights(trainer: Trainer, folder: RunFolder, prefix: str) -> None:
    atomic_save(trainer.eval_weights(), folder.path(f"{prefix}_model.pdparams"))
    atomic_save(trainer.optimizer.state_dict(), folder.path(f"{prefix}_optimizer.pdopt"))


def _save_stopped(trainer: Trainer, folder: RunFolder, stop: StopRequests, log_line):
    """Save last.pdckpt at the current step boundary and raise TrainingStopped."""
    if trainer.main:
        atomic_save(trainer.checkpoint_state(), folder.path(LAST))
    message = (f"stopped: saved {folder.path(LAST)} ({trainer.epoch} epochs + {trainer.step_in_epoch} "
               "batches); continue with --resume auto")
    log_line(message)
    raise TrainingStopped(message, stop.exit_code)


def _visualdl(folder: RunFolder):
    try:
        from visualdl import LogWriter
    except ImportError:
        return None
    return LogWriter(logdir=folder.path("vdl"))


def _log_epoch(record: dict, trainer: Trainer, folder: RunFolder, vdl) -> None:
    from .plots import plot_learning_curves

    folder.append_metrics(record)
    if vdl:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k != "epoch":
                vdl.add_scalar(tag=k, value=v, step=record["epoch"])
    plot_learning_curves(trainer.history, folder.root)
    cfg = trainer.config
    print(f"epoch {record['epoch']}/{cfg.epochs}: train loss {record['train_loss']:.4f} "
          f"acc {record['train_acc']:.2f}% | val loss {record['val_loss']:.4f} "
          f"top-1 {record['val_top1']:.2f}% top-5 {record['val_top5']:.2f}% | "
          f"{record['train_img_s']:.0f} img/s | best {trainer.best:.2f}%", flush=True)
