"""Launch sizes and tuning switches of every CUDA kernel, in one place.

The kernels' Python launchers read them here, as ``sizes.NAME``, at launch time
(and the kernel factories when they first build a kernel), so a test or a
benchmark sets one of them on this module alone: the tests set them small so
that even tiny inputs run several blocks, partial tiles and the multi-block
paths on the CUDA simulator (``small_cuda_launches`` in ``tests/conftest.py``).
Plain Python numbers, no import of Numba: this module is safe to read anywhere.
"""

# --- every recurrent layer (numlstm.kernels.cuda, numlstm.kernels.gru_cuda) -----------------------
THREADS = 256  # threads per block
ROWS_PER_BLOCK = 4  # batch rows a block carries through time
PAIRS_PER_BLOCK = 256  # (row, step) pairs per block of partial weight gradients
SHARED_LIMIT = 48 * 1024  # dynamic shared memory a launch may use without opting in, in bytes

# --- the LSTM's weight-gradient product (numlstm.kernels.cuda.weight_grads) -----------------------
GEMM_TY = 8  # thread rows of a weight-gradient block; the tile is 4 * GEMM_TY rows
GEMM_TX = 32  # thread columns; the tile is 4 * GEMM_TX gate columns
GEMM_K = 32  # pairs staged in shared memory at a time
GEMM_BLOCKS = 528  # blocks to aim for (4 per multiprocessor of an H100/H200)

# --- the LSTM's register-resident kernels (numlstm.kernels.cuda_fast) -----------------------------
FAST_HIDDEN = 64  # largest hidden size of the register-resident kernels
FAST_ROWS = 4  # batch rows per block of the forward kernel (a multiple of 4; 8 was slower on an H200)
FAST_BACKWARD_ROWS = 4  # and of the backward kernel (at 8 it needs too many registers for 2 blocks an SM)
FAST_FUSED_GRADS = True  # the backward kernel sums the weight gradients itself (no split-K product)
FAST_SHARED = 48 * 1024  # static shared memory a kernel may declare, in bytes
# A register cap for the forward kernel (None: the compiler's choice, about 155-165): at 128
# two blocks share an SM, at the cost of a few spilled registers (40-92 bytes); on an H200
# this was faster at every size measured (benchmarks/results/gpu-h200-issue17-run2.txt).
FAST_MAX_REGISTERS = 128

# --- the LSTM's one-launch-per-step kernels (numlstm.kernels.cuda_fast) ---------------------------
STEP_ROWS = 32  # batch rows of a step tile (even)
STEP_UNITS = 16  # hidden units of a forward step tile; the backward tile has 2 * STEP_UNITS
STEP_K = 32  # entries of the inner dimension staged at a time
STEP_GRID = True  # one cooperative launch for all steps where the device takes one

# --- the GPU engine's small kernels (numlstm.core.gpu, numlstm.core.gpu_kernels) ------------------
ENGINE_THREADS = 256  # threads per block
NORM_BLOCKS = 64  # partial sums of squares for the global gradient norm
