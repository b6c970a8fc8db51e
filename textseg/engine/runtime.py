"""Where and how a run executes: the device, the process group (DDP), seeds and RNG state, and mixed precision.

bf16 autocast pays off on CUDA and on CPUs that multiply bf16 in hardware (AMX, AVX512-BF16), where training runs
several times faster than in float32 (benchmarks/RESULTS.md); elsewhere CPU bf16 is emulated and slower.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


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


def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """torch.device for "auto" | "cpu" | "cuda" | "cuda:N"; clear errors for unknown names or missing CUDA."""
    name = str(name).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here (torch {torch.__version__}); use --device cpu or auto")
    index = int(name[5:]) if ":" in name else (local_rank or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run created the process group (and destroys it at the end)

    @property
    def main(self) -> bool:
        """True on the rank that writes files and logs."""
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; init the process group (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    info = Dist(int(os.environ["RANK"]), world, local_rank, owns_group=not dist.is_initialized())
    if info.owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def all_sum(values: list[float], info: Dist, device: torch.device) -> list[float]:
    """Sum a list of numbers over ranks (identity in a single process)."""
    if info.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ---- reproducibility --------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and primitive containers (safe for weights_only loading)."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by rng_state()."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
