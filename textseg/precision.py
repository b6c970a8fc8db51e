"""Mixed precision: which autocast dtype a device gets, and the autocast context itself.

bf16 autocast pays off on CUDA and on CPUs that multiply bf16 in hardware (AMX, AVX512-BF16): measured on
this project's 2-core Xeon with AMX (benchmarks/RESULTS.md, 2026-12-02), the encoders' cache fill and an
uncached epoch run 3.2x and a cached refine epoch 2.6x faster than in float32. Elsewhere CPU bf16 is
emulated and slower.
"""

from __future__ import annotations

import contextlib

import torch


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16); elsewhere bf16 is slower than float32."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """Mixed-precision dtype: on CUDA bf16 where supported, else fp16; on a CPU with hardware bf16, bf16; else None."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast at `dtype`, or a no-op context when dtype is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
