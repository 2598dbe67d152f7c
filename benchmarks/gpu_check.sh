#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests on the hardware, then the GPU
# benchmark against PyTorch's cuDNN. Needs numba, numpy, scipy, xarray, pandas,
# pytest and a CUDA build of torch; runs from the repository root, no install.
#
#   bash benchmarks/gpu_check.sh [output folder, default benchmarks/results]
set -uo pipefail
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import numba, numpy, xarray; print('numba', numba.__version__, '| numpy', numpy.__version__, '| xarray', xarray.__version__)"
python3 -c "import numba_cuda; print('numba-cuda', numba_cuda.__version__)" 2>/dev/null || echo "numba-cuda: not installed"
status=0
timeout "${TEST_TIMEOUT:-480}" python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_kernels.py tests/test_cuda_gru.py tests/test_cuda_masks.py \
    tests/test_cuda_training.py tests/test_cuda_gru_training.py tests/test_cuda_features.py tests/test_runtime.py 2>&1 | tee "$out/gpu-tests.log" || status=1
timeout "${BENCH_TIMEOUT:-240}" python3 benchmarks/bench_gpu.py --repeats "${REPEATS:-7}" \
    --output "$out/gpu.txt" 2>&1 | tee "$out/gpu-bench.log" || status=1
exit $status
