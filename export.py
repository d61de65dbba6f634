"""Export a trained BiFormer for deployment, checked against the dynamic-graph model.

    python export.py --weights work/model/best_model.pdparams --output export/             # Paddle Inference
    python export.py --weights work/model/best_model.pdparams --output export/ --onnx      # ... and ONNX
    python export.py --arch tiny --weights biformer_tiny_best.pth --output export/ --img-size 224
    python export.py --weights W --output export/ --batch-size 8                          # fixed batch

Writes model.json (Paddle 3; model.pdmodel with Paddle 2.6) + model.pdiparams, model.onnx with
--onnx, model_info.json (input, classes, normalisation) and export_report.json (differences).
Same as `python -m paddle_biformer.export`.
"""
import sys

from paddle_biformer.export import main

if __name__ == "__main__":
    sys.exit(main())
