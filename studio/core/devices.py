"""The devices training can use: CUDA GPUs, Apple's MPS and the CPU, each with its memory;
the best of them is the default. Torch is imported only when asked (``studio devices``, a
training job): the GUI reads this through the CLI's JSON."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.core.training.spec import default_threads


@dataclass(frozen=True)
class Device:
    name: str  # what --device takes: "cuda", "cuda:1", "mps", "cpu"
    kind: str  # "cuda", "mps" or "cpu"
    title: str  # the GPU's or CPU's model name
    memory_bytes: int | None  # total memory (the machine's RAM for the CPU and MPS)
    free_bytes: int | None
    detail: str  # cores, compute capability, precision

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meminfo() -> tuple[int | None, int | None]:
    try:
        info = dict(line.split(":", 1) for line in
                    Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        return (int(info["MemTotal"].split()[0]) * 1024,
                int(info["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(total), None
        except (AttributeError, OSError, ValueError):
            return None, None


def _cpu_title() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def detect() -> list[Device]:
    """Every device, the best first (a CUDA GPU, then MPS, then the CPU)."""
    import torch

    found: list[Device] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
            except RuntimeError:
                free, total = None, props.total_memory
            bf16 = props.major >= 8  # native bf16 (Ampere and later), as training asks
            found.append(Device(
                "cuda" if i == 0 else f"cuda:{i}", "cuda", props.name, int(total),
                None if free is None else int(free),
                f"compute {props.major}.{props.minor}, mixed precision "
                f"{'bf16' if bf16 else 'fp16'}"))
    total, free = _meminfo()
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(Device("mps", "mps", "Apple GPU (Metal)", total, free,
                            "memory shared with the CPU"))
    cores = default_threads(leave_one_free=False)
    found.append(Device("cpu", "cpu", _cpu_title(), total, free,
                        f"{cores} core{'s' * (cores != 1)} usable"))
    return found


def describe(name: str) -> str:
    """One line for a run's log: the device with its model and memory. Only that device is
    asked (asking every GPU would open a CUDA context on each, from every process)."""
    from studio.core.printable import human_bytes

    if name.startswith("cuda"):
        import torch

        props = torch.cuda.get_device_properties(int(name.partition(":")[2] or 0))
        return f"{name} ({props.name}, {human_bytes(props.total_memory)})"
    total, _free = _meminfo()
    title = "Apple GPU (Metal)" if name == "mps" else _cpu_title()
    return f"{name} ({title}" + (f", {human_bytes(total)})" if total else ")")
