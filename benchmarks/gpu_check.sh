#!/usr/bin/env bash
# GPU checks on a machine with an NVIDIA GPU (run from the project root; OUT: a folder for the
# results): the real-GPU tests, a smoke run of benchmarks/gpu.py, then the benchmark.
set -u
OUT=${OUT:-benchmarks/results}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import numpy, numba; print('numpy', numpy.__version__, 'numba', numba.__version__); from nlmeans.backends.cuda import cuda_available; print('cuda usable:', cuda_available())"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee $OUT/tests.log
timeout 120 python3 benchmarks/gpu.py --sizes 512 --repeats 1 --out $OUT/smoke 2>&1 | tail -8
timeout 300 python3 benchmarks/gpu.py --sizes 2048 4096 --repeats 5 --out $OUT 2>&1 | tail -20
