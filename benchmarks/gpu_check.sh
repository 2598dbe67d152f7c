#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU benchmark against PyTorch's cuDNN (with
# its full-size kernel checks and bitwise-repeat checks), then the CUDA tests on the
# hardware. Needs numba (+ numba-cuda), numpy, scipy, xarray, pandas, pytest and a
# CUDA build of torch; runs from the repository root, no install.
#
#   bash benchmarks/gpu_check.sh [output folder, default $OUT or benchmarks/results]
#
# BENCH_TIMEOUT, TEST_TIMEOUT (seconds), REPEATS and ROWS (extra FAST_ROWS to time)
# size it to the time a GPU machine is lent for; PYTEST_ARGS adds pytest options
# (e.g. "-n 8" with pytest-xdist: the tests' time is mostly the CPU compiling).
set -uo pipefail
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
    python3 -c "import sys, numba, numpy; print('python', sys.version.split()[0], '| numba', numba.__version__, '| numpy', numpy.__version__)"
    python3 -c "import numba_cuda; print('numba-cuda', numba_cuda.__version__)" 2>/dev/null || echo "numba-cuda: not installed"
    python3 -c "import torch; print('torch', torch.__version__, '| cuDNN', torch.backends.cudnn.version())"
} 2>&1 | tee "$out/gpu-env.txt"
status=0
timeout "${BENCH_TIMEOUT:-240}" python3 benchmarks/bench_gpu.py --repeats "${REPEATS:-7}" --rows ${ROWS:-} \
    --output "$out/gpu.txt" 2>&1 | tee "$out/gpu-bench.log" || status=1
timeout "${TEST_TIMEOUT:-480}" python3 -m pytest -q -p no:cacheprovider -rs --durations=5 ${PYTEST_ARGS:-} \
    tests/test_cuda_fast.py tests/test_cuda_kernels.py tests/test_cuda_gru.py tests/test_cuda_masks.py \
    tests/test_cuda_training.py tests/test_cuda_gru_training.py tests/test_cuda_features.py tests/test_runtime.py \
    2>&1 | tee "$out/gpu-tests.log" || status=1
exit $status
