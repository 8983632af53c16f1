#!/usr/bin/env bash
# Every issue-6 benchmark on a GPU machine, in one command (from the repository root):
#     bash experiments/gpu_bench.sh            # ~20-30 min on one H100, most of it data generation
# Results are appended, with date, machine, GPU and commit, to benchmarks/results/{pipeline,train,inference}.md.
set -euo pipefail
make install TORCH=torch EXTRAS=gpu,dev
PY=.venv/bin/python
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this script is for the GPU machine'; print(torch.cuda.get_device_name())"
make data                                                     # default splits (one per core, resumable)
"$PY" experiments/bench_pipeline.py                           # per core, and with 1..16 worker processes
"$PY" experiments/bench_train.py --batch 1024 --steps 30      # bf16, fused AdamW; eager and torch.compile
"$PY" experiments/bench_inference.py                          # onnxruntime CPU (+ CUDA provider if installed)
