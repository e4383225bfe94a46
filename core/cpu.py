"""What this CPU runs fast, for the choices that hang on it: decoding's int8 steps
(core.incremental) and training's bfloat16 autocast (core.training)."""

from __future__ import annotations

import functools

import torch


@functools.cache
def fast_bfloat16() -> bool:
    """Whether torch dispatches AVX-512 kernels here and the CPU has AVX-512 bfloat16: bfloat16
    matmuls then run well ahead of float32 (a `small` training step 1.3x, the seed preset's
    int8 decoding step 1.8-2.0x); with AVX2 kernels only they run slower than float32.
    ATEN_CPU_CAPABILITY=avx2 turns it off."""
    has_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and bool(has_bf16())
