"""Evaluate a trained model, or classify your own images.

    python eval.py --weights work/model/best_model.pdparams                 # CIFAR-10 test set
    python eval.py --weights W --data-path DIR --json report.json           # your val/ or test/ folder
    python eval.py --weights W --images cat.jpg dog.png                     # top-5 classes
    python eval.py --weights biformer_tiny_best.pth --images x.jpg          # official weights
    python eval.py --weights W --lime 8 --out DIR                            # LIME for 8 test images
    python eval.py --weights W --routing 4 --query 3 3 --out DIR             # routing maps (BiFormer)
    python eval.py --weights W --images a.jpg --lime --routing               # ... for your images

Reports loss, top-1, top-5, per-class accuracy and throughput; writes a confusion matrix and a
grid of predictions (PNG) to --out. The model's architecture, input size, class names and
preprocessing come from model_info.json beside our weights (explicit options override them).
Same as the `paddle-biformer-eval` command.
"""
import sys

from paddle_biformer.cli import eval_main

if __name__ == "__main__":
    sys.exit(eval_main())
