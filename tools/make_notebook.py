"""Writes notebooks/biformer_cifar10.ipynb (without outputs) from the cells below: run from the
repository root, `python tools/make_notebook.py`, after editing a cell here."""
import json

cells = []
def md(text): cells.append({"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")})
def code(text, tags=None):
    cells.append({"cell_type": "code", "execution_count": None, "metadata": {"tags": tags} if tags else {},
                  "outputs": [], "source": text.strip("\n")})

md("""
# 视觉 Transformer 图像分类实战 · Image classification with BiFormer, CAS-ViT and CrossFormer

paddle-biformer brings [BiFormer](https://github.com/rayleizhu/BiFormer) (CVPR 2023, Bi-Level
Routing Attention), [CAS-ViT](https://github.com/Tianfang-Zhang/CAS-ViT) and
[CrossFormer(++)](https://github.com/cheerss/CrossFormer) to PaddlePaddle, exact to the official code.
Every step below calls the library, the same code as `train.py` and `eval.py`.
每一步都调用 `paddle_biformer` 库, 与命令行工具相同。

1. 参数 Parameters · 2. 安装 Install · 3. 数据 Data · 4. 模型 Model · 5. 训练 Training ·
6. 学习曲线 Learning curves · 7. 评估 Evaluation · 8. LIME 可解释性 · 9. 路由可视化 Routing maps ·
10. 导出部署 Export
""")
md("""
## 1. 参数 Parameters

Change these. On AI Studio the CIFAR-10 data set `data/data152754/cifar-10-python.tar.gz` is
found by itself (`DATA_FILE = None`); set `DATA_PATH` to use your own images instead
(`DATA_PATH/train/<class>/*.jpg` and `DATA_PATH/val/<class>/*.jpg`). `ARCH` takes any model of
the zoo (`pb.list_models()` lists them). `IMG_SIZE = 32` trains CIFAR-10 at its native size,
much faster on a CPU. 修改下面的参数即可。
""")
code("""
DATA_FILE = None          # cifar-10-python.tar.gz; None: AI Studio's data/data152754/, Paddle's cache, download
DATA_PATH = None          # or a folder of class folders (train/ and val/)
RECIPE = "seed"           # "seed": the original notebook's recipe; "cifar-fast": 32x32 in minutes
ARCH = "biformer_tiny"    # any registered model: biformer_tiny, casvit_xs, crossformer_tiny, ...
IMG_SIZE = 224            # 32 trains CIFAR-10 at its native size
EPOCHS = 50
BATCH_SIZE = 32
SUBSET = None             # train on N images for a quick look
MODEL_KWARGS = {}         # constructor overrides with the official names, e.g. {"drop_path_rate": 0.1}
PRETRAINED = None         # official .pth or our .pdparams to start from
OUTPUT = "work/model"     # run folder, relative to this notebook (git ignores notebooks/work/)
RESUME = "auto"           # "auto": a rerun of the notebook continues (or reuses) the run in OUTPUT
OVERWRITE = False         # True: start over; the old run is moved to OUTPUT/replaced-<time>/
LIME_IMAGES = 4           # test images explained with LIME
LIME_SAMPLES = None       # LIME perturbations per image (None: fast defaults)
EXPORT_DIR = "work/export"  # the exported model (Paddle Inference, and ONNX if paddle2onnx is installed)
INSTALL = True            # install the dependencies first (keeps an installed paddlepaddle-gpu)
LIBRARY = None            # where to get paddle-biformer when it is neither installed nor beside this
                          # notebook: a git URL ("git+https://github.com/<you>/paddle-biformer"), an
                          # uploaded wheel (.whl) or a folder holding the repository
""", tags=["parameters"])
md("""
## 2. 安装 Install

Finds the library (installed, in the repository around this notebook, in `~/paddle-biformer` or
`~/work/paddle-biformer`, or from `LIBRARY`) and installs its dependencies quietly; PaddlePaddle
itself only if none is installed (AI Studio's `paddlepaddle-gpu` is kept).
找到或安装 paddle-biformer 库及其依赖 (已安装的 paddlepaddle-gpu 不会被替换)。
""")
code("""
import importlib.util, os, subprocess, sys

def find_repository():
    here = os.getcwd()
    for folder in (here, os.path.dirname(here), os.path.expanduser("~/paddle-biformer"),
                   os.path.expanduser("~/work/paddle-biformer"), LIBRARY if LIBRARY and os.path.isdir(LIBRARY) else None):
        if folder and os.path.isfile(os.path.join(folder, "paddle_biformer", "install.py")):
            return folder
    return None

REPO = find_repository()
if REPO:                                   # a clone or an uploaded copy of the repository
    sys.path.insert(0, REPO)
    if INSTALL:
        subprocess.check_call([sys.executable, os.path.join(REPO, "install.py"), "--quiet"])
elif importlib.util.find_spec("paddle_biformer") is None:
    if not LIBRARY:
        raise RuntimeError(
            "paddle-biformer is not installed and not beside this notebook. Upload the repository "
            "folder (or a wheel made with `pip wheel . -w dist` in it) next to this notebook, or set "
            "LIBRARY in the parameters cell to its git URL or the uploaded file, then run again.")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", LIBRARY])
    importlib.invalidate_caches()
if not REPO and INSTALL:                   # the library is installed: add Paddle (if missing) and the extras
    subprocess.check_call([sys.executable, "-m", "paddle_biformer.install", "--quiet"])

import paddle
from IPython.display import Image, display

import paddle_biformer as pb
from paddle_biformer.engine import TrainConfig, build_model_for, fit, load_data
from paddle_biformer.inference import load_trained
from paddle_biformer.reports import dataset_report, lime_report, routing_report, sample_images

print("PaddlePaddle", paddle.__version__, "on", paddle.device.get_device(), "| paddle-biformer", pb.__version__,
      "from", os.path.dirname(pb.__file__))
""")
md("""
## 3. 数据 Data
""")
code("""
config = TrainConfig.from_recipe(RECIPE, arch=ARCH, img_size=IMG_SIZE, epochs=EPOCHS,
                                 batch_size=BATCH_SIZE, data_file=DATA_FILE, data_path=DATA_PATH,
                                 subset=SUBSET, model_kwargs=MODEL_KWARGS, pretrained=PRETRAINED,
                                 output=OUTPUT, resume=RESUME, overwrite=OVERWRITE)
train_data, val_data = load_data(config)
classes = train_data.classes
print(f"{len(train_data)} training / {len(val_data)} validation images, {len(classes)} classes: {classes}")
""")
md("""
## 4. 模型 Model

`paddle.summary` lists every layer; parameters and FLOPs are counted as in the paper (fvcore).
""")
code("""
model = build_model_for(config, len(classes))
paddle.summary(model, (1, 3, IMG_SIZE, IMG_SIZE))
print(f"{pb.count_params(model) / 1e6:.2f}M parameters, "
      f"{pb.count_flops(model, (1, 3, IMG_SIZE, IMG_SIZE)) / 1e9:.3f} GFLOPs at {IMG_SIZE}x{IMG_SIZE}")
""")
md("""
## 5. 训练 Training

Checkpoints, `metrics.jsonl` and the learning curves are written to `OUTPUT` after every epoch.
Interrupt the kernel to stop: the step in progress finishes and `last.pdckpt` is saved; running
this cell again (RESUME = "auto") continues exactly where it stopped, and a finished run is not
trained again. 中断后再次运行本单元即可从断点继续训练。
""")
code("""
from paddle_biformer.engine import TrainingStopped
try:
    last = fit(config, data=(train_data, val_data))
except TrainingStopped as stopped:  # the kernel was interrupted: the run was saved between two steps
    print(stopped)
""")
md("""
## 6. 学习曲线 Learning curves
""")
code("""
display(Image(os.path.join(OUTPUT, "loss_curve.png")))
display(Image(os.path.join(OUTPUT, "acc_curve.png")))
""")
md("""
## 7. 评估 Evaluation

Loss, top-1, top-5, per-class accuracy and throughput of the best checkpoint, its confusion
matrix and predictions on validation images (the seed's `show_images`).
""")
code("""
model, info = load_trained(os.path.join(OUTPUT, "best_model.pdparams"))
report = dataset_report(model, info, val_data, OUTPUT)
display(Image(os.path.join(OUTPUT, "confusion_matrix.png")))
display(Image(os.path.join(OUTPUT, "predictions.png")))
""")
md("""
## 8. LIME 可解释性 · Which pixels made the model decide

LIME (interpretdl's `LIMECVInterpreter`, as in the seed notebook) perturbs superpixels and fits a
linear model to the predicted probability: green superpixels speak for the predicted class.
""")
code("""
samples = sample_images(info, val_data, count=LIME_IMAGES)
for row in lime_report(model, info, samples, OUTPUT, num_samples=LIME_SAMPLES)["lime"]:
    display(Image(row["png"]))
""")
md("""
## 9. 路由可视化 · Where Bi-Level Routing looks (BiFormer)

In every Bi-Level Routing Attention stage the image is split into n_win x n_win regions; each
region attends only to its top-k most related regions. Left: the regions the centre region is
routed to (numbered by rank). Right: how often each region is chosen by all regions. Models
without Bi-Level Routing Attention (CAS-ViT, CrossFormer) say so and skip this section.
""")
code("""
from paddle_biformer.interpret import routing_layers
try:
    routing_layers(model)
except ValueError as no_routing:  # CAS-ViT, CrossFormer: no Bi-Level Routing Attention
    print(no_routing)
else:
    for row in routing_report(model, info, samples[:2], OUTPUT)["routing"]:
        display(Image(row["png"]))
""")
md("""
## 10. 导出部署 · Export for deployment

A static model for Paddle Inference / FastDeploy / Paddle Lite, and ONNX when paddle2onnx and
onnxruntime are installed (`python install.py --export`). Each exported model is run by its
runtime and compared with the model above; a difference beyond 1e-4 raises an error.
导出静态图模型 (Paddle Inference) 与 ONNX 模型, 并自动校验输出。
""")
code("""
import importlib.util
from paddle_biformer.export import export_model
with_onnx = all(importlib.util.find_spec(m) for m in ("paddle2onnx", "onnxruntime"))
export_report = export_model(model, EXPORT_DIR, info.img_size, onnx=with_onnx, info=info)
for key in ("paddle_inference", "onnxruntime"):
    if key in export_report:
        print(f"{key}: max |logit difference| {export_report[key]['max_abs_diff']:.2e}")
print("\\n".join(export_report["files"]))
""")

nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
      "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
for i, c in enumerate(nb["cells"]):
    c["id"] = f"cell-{i:02d}"
    c["source"] = [line + "\n" for line in c["source"].split("\n")]
    c["source"][-1] = c["source"][-1].rstrip("\n")
with open("notebooks/biformer_cifar10.ipynb", "w") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
