"""NUMLSTM_VECTOR_WIDTH: the vector width the CPU kernels are compiled for.

Each case compiles, in a fresh process for a named Intel AVX-512 CPU
(``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``), without running them (this
machine need not have AVX-512), numlstm's matrix-product loop
(``kernels.cpu.add_tile``, whose vectors numlstm chooses: ``kernels.tile``) and
the LSTM cell over a row (a loop LLVM vectorizes, in a kernel that asks for
the full width: ``tile.full_width``) and a loop LLVM vectorizes as it prefers
(the sum of per-thread gradients), and reads the widest vector register in
their assembly.
"""

import json
import os
import subprocess
import sys

import pytest

import numlstm
from numlstm import _vectors

AVX512 = "+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx2,+fma,+avx,+sse4.2,+sse4.1,+ssse3,+sse3,+sse2"

COMPILE_ONLY = """
import json, numba, numlstm
from numlstm import _vectors
from numlstm.kernels import cpu
f32 = numba.float32
sig = (f32[:, :, ::1], numba.int64, f32[:, :, ::1], numba.int64, f32[:, ::1], numba.int64, numba.int64,
       f32[::1])
cpu.add_tile.compile(sig)
a3 = f32[:, :, ::1]
row = (a3, numba.int64, a3, numba.int64, a3, numba.int64, a3, numba.int64, numba.int64)
cpu._cell_forward_row.compile(row)
parts = (f32[:, ::1], f32[::1])
cpu.sum_parts.compile(parts)
print(json.dumps({"widest": _vectors.widest_register(cpu.add_tile.inspect_asm(sig)), "state": _vectors.state(),
                  "cell": _vectors.widest_register(cpu._cell_forward_row.inspect_asm(row)),
                  "llvm": _vectors.widest_register(cpu.sum_parts.inspect_asm(parts))}))
"""


def compile_for(cpu_name, features, width=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_"))}
    env.update(NUMBA_CPU_NAME=cpu_name, NUMBA_CPU_FEATURES=features, NUMLSTM_CACHE="0",
               PYTHONPATH=os.path.dirname(os.path.dirname(numlstm.__file__)))
    if width is not None:
        env["NUMLSTM_VECTOR_WIDTH"] = width
    proc = subprocess.run([sys.executable, "-c", COMPILE_ONLY], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="x86 vector registers")
def test_numlstm_kernels_are_full_width_on_avx512_cpus_and_other_loops_llvm_choice():
    default = compile_for("sapphirerapids", AVX512)
    assert default["widest"] == "zmm" and default["cell"] == "zmm"  # numlstm's own choice
    assert default["llvm"] == "ymm" and not default["state"]["applied"]  # LLVM's preference on these CPUs
    wide = compile_for("sapphirerapids", AVX512, width="512")
    assert (wide["widest"], wide["cell"], wide["llvm"]) == ("zmm", "zmm", "zmm"), wide
    assert wide["state"] == {"requested": "512", "applied": True, "why": "512-bit vectors preferred"}
    narrow = compile_for("sapphirerapids", AVX512, width="256")
    assert (narrow["widest"], narrow["cell"], narrow["llvm"]) == ("ymm", "ymm", "ymm"), narrow
    no_avx512 = compile_for("haswell", "+avx2,+fma,+avx,+sse4.2", width="512")
    assert (no_avx512["widest"], no_avx512["cell"], no_avx512["llvm"]) == ("ymm", "ymm", "ymm"), no_avx512
    assert no_avx512["state"]["why"] == "no effect: this CPU has no AVX-512F"


def test_a_bad_setting_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("NUMLSTM_VECTOR_WIDTH", "1024")
    with pytest.raises(ValueError, match="NUMLSTM_VECTOR_WIDTH='1024' is not one of auto, 512, 256"):
        _vectors.requested()


def test_too_late_to_apply_is_said_not_done(monkeypatch):
    monkeypatch.setenv("NUMLSTM_VECTOR_WIDTH", "256")  # this process compiled code long ago
    saved = _vectors.state()
    try:
        result = _vectors.apply()
        assert result["applied"] is False and result["why"].startswith("not applied: Numba had compiled code")
    finally:
        _vectors._state.update(saved)


def test_widest_register_reads_att_and_intel_syntax():
    assert _vectors.widest_register("vfmadd231ps %zmm1, %zmm2, %zmm0") == "zmm"
    assert _vectors.widest_register("vfmadd231ps ymm0, ymm1, ymm2\n vmovss xmm0, xmm1") == "ymm"
    assert _vectors.widest_register("fmla v0.4s, v1.4s, v2.4s") is None


def test_the_vector_geometry_follows_the_features_numba_compiles_for():
    # NUMBA_ENABLE_AVX=0 turns Numba's AVX features off, AVX-512F among them, whatever the host has:
    # the matrix-product loop must then take 16-byte vectors.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_"))}
    env.update(NUMBA_ENABLE_AVX="0", NUMLSTM_CACHE="0", PYTHONPATH=os.path.dirname(os.path.dirname(numlstm.__file__)))
    code = ("import json, numlstm\nfrom numlstm import _vectors\nfrom numlstm.kernels import cpu\n"
            "print(json.dumps({'avx': [f for f in _vectors.effective_features().split(',') if f.startswith('+avx')],"
            " 'geometry': [cpu._tile.VECTOR_BYTES, cpu._tile.NV]}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"avx": [], "geometry": [16, 2]}
