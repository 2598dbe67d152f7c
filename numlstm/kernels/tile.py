"""The matrix-product loop of the CPU kernels, written as LLVM IR with explicit vectors.

``Z[r, t_out] += S[r, t_src] @ M`` for the rows ``r0:r1`` of a tile, or, where
``b`` (N,) is not empty, ``Z[r, t_out] = b + S[r, t_src] @ M`` (a layer's bias
and input projection in one pass, the output written once): every
product of the package (input and recurrent projections, their transposes
in the backward pass, the weight gradients, the dense head) goes through it.

Numba has no SIMD types, and LLVM's loop vectorizer, given plain loops, keeps
the output rows in memory and, on Intel CPUs with AVX-512, uses 256-bit
vectors only (it prefers them there). This module emits the loop itself, as
an intrinsic, the way a BLAS micro-kernel is written:

- a block of ``MR`` output rows by ``NV`` vectors of columns is held in
  registers (``MR * NV`` accumulators) while ``k`` runs over the inner
  dimension; each step loads ``NV`` vectors of a row of ``M``, broadcasts
  one element of ``S`` per row and does ``MR * NV`` fused multiply-adds, so
  the output is loaded and stored once per block of ``k``, not once per ``k``;
- the vectors are as wide as the CPU's registers (:func:`geometry`): 512-bit
  on AVX-512 (explicit vector types are kept at their width whatever LLVM
  prefers for the loops it vectorizes itself; the function is also marked
  ``min-legal-vector-width`` 512, so that a caller marked narrower cannot
  split them), 256-bit on AVX/AVX2, 128-bit elsewhere; ``NV`` is 4 where there are 32 vector
  registers (AVX-512) and 2 where there are 16, so that the accumulators, the
  row of ``M`` and a broadcast factor all stay in registers;
- ``k`` goes in blocks of ``KC`` so that the block of ``M`` a column block
  uses stays in cache while every row block of the tile passes over it,
  and the columns in panels of ``PANEL`` blocks, each row block running
  over a panel's column blocks while its rows of ``S`` are in L1;
- the last column block, where ``N`` is not a multiple of the block, uses
  masked loads and stores (``llvm.masked.load``/``store``): nothing outside
  the arrays is read or written;
- rows go in blocks of at most ``MR``, the blocks of a range as even as
  possible (8 rows: two of 4, not 6 and 2).

Accumulation order: for each output element, the products are added one
``k`` at a time, in order (a fused multiply-add each where the CPU has FMA),
onto the value already in ``Z``: the result does not depend on the tiling of
rows or columns, and is the same run to run. (The loop before this one added
four or eight products as a tree first, so results differ from it in the
last bits.)

The product's arrays must be C-contiguous (the loads take whole vectors
along the last axis), of one float dtype, and ``Z`` writable; anything else
is a typing error. ``Z`` must not overlap ``S`` or ``M`` (no caller's does).

The module also emits :func:`prefetch_rows`, with which the backward passes
ask for the next step's stored rows ahead of their use (see PREFETCH in
:mod:`numlstm.kernels.cpu`).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from numlstm import _vectors

MR = 6  # rows of a register block
# Column blocks per panel: k's blocks and the rows run inside a panel of this many column blocks,
# so that a register block's rows of S, loaded into L1 for the first column block, serve the
# panel's others too (the weights' panel, KC x 4 x 64 floats, 256 KB, stays in L2). One block a
# panel, as before 2026-12-06, read S once per column block: the weight-gradient products, whose
# S (the inputs' and states' columns of a tile of rows) is a few MB, ran 9-11% slower (GRU dU
# (257, 1600, 768) 106-109 GFLOP/s against 114-118; LSTM (273, 1600, 1024) 93-95 against 102-103;
# one thread, best of 5, two runs, Intel Xeon); the recurrent products level or up to 11% faster.
PANEL = 4
KC = 256  # k per block: M's block (KC x NV vectors) stays in L1/L2 while the rows pass


def geometry(features=None, requested=None):
    """``(vector_bytes, NV)`` for a CPU feature string (Numba's, by default).

    64-byte (512-bit) vectors and four of them per row where the CPU has
    AVX-512F, unless ``NUMLSTM_VECTOR_WIDTH=256`` asks for at most 256-bit ones;
    32 bytes and two per row on AVX; 16 and two elsewhere.
    """
    features = (_vectors.effective_features() if features is None else features).split(",")
    requested = _vectors.requested() if requested is None else requested
    if "+avx512f" in features and requested != "256":
        return 64, 4
    if "+avx" in features:
        return 32, 2
    return 16, 2


def _splat(builder, vector_type, value):
    lanes = vector_type.count
    undef = ir.Constant(vector_type, ir.Undefined)
    one = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, undef, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _mark_width(builder, vector_bytes, prefer):
    """Mark the function being emitted as needing vectors wider than 256 bits (LLVM's
    ``min-legal-vector-width``) and, with ``prefer``, as preferring them for the loops LLVM
    vectorizes itself (``prefer-vector-width``); nothing for 256 bits or less. (llvmlite
    checks attribute names against a fixed list, so these string attributes go in directly.)"""
    if vector_bytes > 32:
        attributes = builder.function.attributes
        set.add(attributes, f'"min-legal-vector-width"="{vector_bytes * 8}"')
        if prefer:
            set.add(attributes, f'"prefer-vector-width"="{vector_bytes * 8}"')


def _emit_add_tile(vector_bytes, nv, panel, context, builder, signature, args):
    z_type, _, s_type, _, m_type, _, _, b_type = signature.args
    Z, t_out, S, t_src, M, r0, r1, b = args
    i64, i32 = ir.IntType(64), ir.IntType(32)

    def const(value):
        return ir.Constant(i64, value)

    def smin(a, b):
        return builder.select(builder.icmp_signed("<", a, b), a, b)

    z_arr = context.make_array(z_type)(context, builder, Z)
    s_arr = context.make_array(s_type)(context, builder, S)
    m_arr = context.make_array(m_type)(context, builder, M)
    b_arr = context.make_array(b_type)(context, builder, b)
    has_initial = builder.icmp_signed(">", cgutils.unpack_tuple(builder, b_arr.shape)[0], const(0))
    z_strides = cgutils.unpack_tuple(builder, z_arr.strides)
    s_strides = cgutils.unpack_tuple(builder, s_arr.strides)
    m_row_stride = cgutils.unpack_tuple(builder, m_arr.strides)[0]
    K, N = cgutils.unpack_tuple(builder, m_arr.shape)

    element = context.get_value_type(z_type.dtype)
    size = z_type.dtype.bitwidth // 8
    lanes = vector_bytes // size
    vec = ir.VectorType(element, lanes)
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    block_cols = nv * lanes
    # Explicit <16 x float> vectors are kept in zmm registers anyway; this keeps them there if the
    # function ever lands in a caller marked narrower (LLVM's inliner takes the larger value).
    _mark_width(builder, vector_bytes, prefer=False)

    module = builder.module
    suffix = f"v{lanes}f{size * 8}"
    # fmuladd, not fma: a fused multiply-add where the CPU has one, a multiply and an add where it has
    # not (llvm.fma would become a libm call per lane there)
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fmuladd.{suffix}")
    masked_load = cgutils.get_or_insert_function(
        module, ir.FunctionType(vec, [vec.as_pointer(), i32, mask_type, vec]), f"llvm.masked.load.{suffix}.p0")
    masked_store = cgutils.get_or_insert_function(
        module, ir.FunctionType(ir.VoidType(), [vec, vec.as_pointer(), i32, mask_type]),
        f"llvm.masked.store.{suffix}.p0")
    align = ir.Constant(i32, size)
    zero = ir.Constant(vec, None)

    byte_ptr = ir.IntType(8).as_pointer()
    z_base = builder.bitcast(z_arr.data, byte_ptr)
    s_base = builder.bitcast(s_arr.data, byte_ptr)
    m_base = builder.bitcast(m_arr.data, byte_ptr)
    b_base = builder.bitcast(b_arr.data, byte_ptr)
    z_time = builder.mul(t_out, z_strides[1])
    s_time = builder.mul(t_src, s_strides[1])

    accumulators = [[cgutils.alloca_once(builder, vec) for _ in range(nv)] for _ in range(MR)]
    row = cgutils.alloca_once(builder, i64)

    def vector_at(base, offset):
        return builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())

    def load(pointer, mask):
        if mask is None:
            return builder.load(pointer, align=size)
        return builder.call(masked_load, [pointer, align, mask, zero])

    def store(value, pointer, mask):
        if mask is None:
            builder.store(value, pointer, align=size)
        else:
            builder.call(masked_store, [value, pointer, align, mask])

    def register_block(m, r, col_bytes, k0, k_count, masks):
        """Rows r:r+m, one column block: load Z, run k over k0:k0+k_count, store Z."""
        z_rows = [builder.add(builder.add(builder.mul(builder.add(r, const(i)), z_strides[0]), z_time), col_bytes)
                  for i in range(m)]
        s_rows = [builder.add(builder.mul(builder.add(r, const(i)), s_strides[0]), s_time) for i in range(m)]
        # the first k-block of rows that start from ``b`` loads ``b`` instead of ``Z``
        initial = builder.and_(has_initial, builder.icmp_signed("==", k0, const(0)))
        for i in range(m):
            for v in range(nv):
                offset = const(v * vector_bytes)
                pointer = builder.select(initial, vector_at(b_base, builder.add(col_bytes, offset)),
                                         vector_at(z_base, builder.add(z_rows[i], offset)))
                builder.store(load(pointer, masks[v]), accumulators[i][v])
        with cgutils.for_range(builder, k_count) as loop:
            k = builder.add(loop.index, k0)
            m_row = builder.add(builder.mul(k, m_row_stride), col_bytes)
            factors = [load(vector_at(m_base, builder.add(m_row, const(v * vector_bytes))), masks[v])
                       for v in range(nv)]
            k_bytes = builder.mul(k, const(size))
            for i in range(m):
                s_ptr = builder.bitcast(builder.gep(s_base, [builder.add(s_rows[i], k_bytes)]), element.as_pointer())
                broadcast = _splat(builder, vec, builder.load(s_ptr))
                for v in range(nv):
                    acc = accumulators[i][v]
                    builder.store(builder.call(fma, [broadcast, factors[v], builder.load(acc)]), acc)
        for i in range(m):
            for v in range(nv):
                pointer = vector_at(z_base, builder.add(z_rows[i], const(v * vector_bytes)))
                store(builder.load(accumulators[i][v]), pointer, masks[v])

    # lane numbers as 32-bit integers: 64-bit ones would make the mask arithmetic twice the vector width
    lane_index = ir.Constant(ir.VectorType(i32, lanes), list(range(lanes)))
    full_blocks = builder.sdiv(N, const(block_cols))
    k_blocks = builder.sdiv(builder.add(K, const(KC - 1)), const(KC))
    # rows that start from b are written even where there is no k
    k_blocks = builder.select(builder.and_(has_initial, builder.icmp_signed("==", k_blocks, const(0))), const(1),
                              k_blocks)
    n_col_blocks = builder.sdiv(builder.add(N, const(block_cols - 1)), const(block_cols))
    n_panels = builder.sdiv(builder.add(n_col_blocks, const(panel - 1)), const(panel))

    def column_block(index):
        """(is it full, the tail's masks, its offset in bytes) of column block ``index``."""
        j = builder.mul(index, const(block_cols))
        left_in_block = builder.trunc(smin(builder.sub(N, j), const(block_cols)), i32)
        tail_masks = [builder.icmp_signed("<", lane_index,
                                          _splat(builder, lane_index.type,
                                                 builder.sub(left_in_block, ir.Constant(i32, v * lanes))))
                      for v in range(nv)]
        return builder.icmp_signed("<", index, full_blocks), tail_masks, builder.mul(j, const(size))

    # panels of ``panel`` column blocks; in each, k in blocks of KC, then the rows, then the panel's
    # column blocks (the full ones, then the tail, if any, with masks)
    with cgutils.for_range(builder, n_panels) as panel_loop:
        first_block = builder.mul(panel_loop.index, const(panel))
        blocks = smin(builder.sub(n_col_blocks, first_block), const(panel))
        with cgutils.for_range(builder, k_blocks) as k_loop:
            k0 = builder.mul(k_loop.index, const(KC))
            k_count = smin(builder.sub(K, k0), const(KC))
            builder.store(r0, row)
            test = builder.append_basic_block("rows.test")
            body = builder.append_basic_block("rows.body")
            done = builder.append_basic_block("rows.done")
            builder.branch(test)
            builder.position_at_end(test)
            builder.cbranch(builder.icmp_signed("<", builder.load(row), r1), body, done)
            builder.position_at_end(body)
            r = builder.load(row)
            left = builder.sub(r1, r)
            n_blocks = builder.sdiv(builder.add(left, const(MR - 1)), const(MR))
            m = builder.sdiv(builder.add(left, builder.sub(n_blocks, const(1))), n_blocks)  # even blocks
            next_block = builder.append_basic_block("rows.next")
            switch = builder.switch(m, next_block)
            for rows_in_block in range(1, MR + 1):
                case = builder.append_basic_block(f"rows.{rows_in_block}")
                switch.add_case(const(rows_in_block), case)
                builder.position_at_end(case)
                with cgutils.for_range(builder, blocks) as block_loop:
                    is_full, tail_masks, col_bytes = column_block(builder.add(first_block, block_loop.index))
                    with builder.if_else(is_full) as (full, tail):
                        with full:
                            register_block(rows_in_block, r, col_bytes, k0, k_count, [None] * nv)
                        with tail:
                            register_block(rows_in_block, r, col_bytes, k0, k_count, tail_masks)
                builder.branch(next_block)
            builder.position_at_end(next_block)
            builder.store(builder.add(r, m), row)
            builder.branch(test)
            builder.position_at_end(done)
    return context.get_dummy_value()


def _typed(Z, t_out, S, t_src, M, r0, r1, b):
    arrays = (Z, S, M, b)
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays) or not Z.mutable:
        return None
    if (Z.ndim, S.ndim, M.ndim, b.ndim) != (3, 3, 2, 1) or not isinstance(Z.dtype, types.Float):
        return None
    if not (Z.dtype == S.dtype == M.dtype == b.dtype):
        return None
    if not all(isinstance(i, types.Integer) for i in (t_out, t_src, r0, r1)):
        return None
    # indices as intp (Numba casts other integer types): the offsets are computed in 64 bits
    return types.void(Z, types.intp, S, types.intp, M, types.intp, types.intp, b)


def make_add_tile(vector_bytes, nv, panel=None):
    """The intrinsic ``add_tile(Z, t_out, S, t_src, M, r0, r1, b)`` for one vector geometry
    (tests build each one; the package uses :data:`add_tile`, made for this CPU)."""

    def codegen(context, builder, signature, args):
        return _emit_add_tile(vector_bytes, nv, PANEL if panel is None else panel, context, builder, signature, args)

    @intrinsic
    def add_tile(typingctx, Z, t_out, S, t_src, M, r0, r1, b):
        signature = _typed(Z, t_out, S, t_src, M, r0, r1, b)
        return None if signature is None else (signature, codegen)

    return add_tile


LINE_BYTES = 64  # a cache line on the CPUs numlstm runs on (x86-64, AArch64)


def _emit_prefetch_rows(context, builder, signature, args):
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    t, r0, r1 = args[1:]
    i64, i32, i8p = ir.IntType(64), ir.IntType(32), ir.IntType(8).as_pointer()
    strides = cgutils.unpack_tuple(builder, array.strides)
    row_bytes = builder.mul(cgutils.unpack_tuple(builder, array.shape)[2], strides[2])
    function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                              "llvm.prefetch.p0")
    # one request a cache line of each row, from its first byte to its last (a row need not start
    # on a line), and nothing for an empty row
    lines = builder.sdiv(builder.add(row_bytes, ir.Constant(i64, LINE_BYTES - 1)), ir.Constant(i64, LINE_BYTES))
    requests = builder.select(builder.icmp_signed(">", row_bytes, ir.Constant(i64, 0)),
                              builder.add(lines, ir.Constant(i64, 1)), ir.Constant(i64, 0))
    base = builder.gep(builder.bitcast(array.data, i8p), [builder.mul(t, strides[1])])
    with cgutils.for_range(builder, builder.sub(r1, r0)) as rows:
        row = builder.gep(base, [builder.mul(builder.add(r0, rows.index), strides[0])])
        with cgutils.for_range(builder, requests) as line:
            offset = builder.mul(line.index, ir.Constant(i64, LINE_BYTES))
            offset = builder.select(builder.icmp_signed("<", offset, row_bytes), offset,
                                    builder.sub(row_bytes, ir.Constant(i64, 1)))
            # (read, locality 2: into L2 and the caches below it, data)
            builder.call(function, [builder.gep(row, [offset]), ir.Constant(i32, 0), ir.Constant(i32, 2),
                                    ir.Constant(i32, 1)])
    return context.get_dummy_value()


@intrinsic
def prefetch_rows(typingctx, array, t, r0, r1):
    """``prefetch_rows(array, t, r0, r1)``: ask the CPU to bring ``array[r0:r1, t]`` (a 3-D
    C-contiguous array) into its L2 cache, a cache line at a time, without waiting for it
    (x86's ``prefetcht1``; nothing where the CPU has no such instruction). Never faults,
    changes no value."""
    if not (isinstance(array, types.Array) and array.ndim == 3 and array.layout == "C"
            and all(isinstance(i, types.Integer) for i in (t, r0, r1))):
        return None
    return types.void(array, types.intp, types.intp, types.intp), _emit_prefetch_rows


def make_full_width(vector_bytes):
    """The intrinsic ``full_width()`` for one vector width: see :data:`full_width`."""

    def codegen(context, builder, signature, args):
        _mark_width(builder, vector_bytes, prefer=True)
        return context.get_dummy_value()

    @intrinsic
    def full_width(typingctx):
        return types.void(), codegen

    return full_width


VECTOR_BYTES, NV = geometry()
add_tile = make_add_tile(VECTOR_BYTES, NV)
full_width = make_full_width(VECTOR_BYTES)
"""``full_width()``, called first in a CPU kernel, lets LLVM vectorize that function's own
loops with the CPU's full vector width where it would otherwise prefer half (AVX-512 CPUs,
unless ``NUMLSTM_VECTOR_WIDTH=256``); it emits no code. The LSTM cell's loops run 23%
(forward) and 32% (backward) faster per element with 512-bit vectors on an Intel Xeon
with AVX-512. A function LLVM inlines into a caller without it takes the caller's width,
so the kernels that call the cell's row functions call it too."""
