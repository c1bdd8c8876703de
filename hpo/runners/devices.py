"""Which device each worker process trains on, and how many CPU threads it may use.

Example:
    >>> [slot.device for slot in plan_workers(["cuda:0", "cuda:1"], workers=3)]
    ['cuda:0', 'cuda:1', 'cuda:0']
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from hpo.errors import DeviceError


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: the device it is pinned to and its torch CPU threads."""

    device: str
    threads: int


def resolve_devices(spec: str = "auto") -> list[str]:
    """``auto``: every GPU, else the CPU; ``cpu``; or a list such as ``cuda:0,cuda:1``.

    Raises:
        DeviceError: a named device does not exist on this machine.
    """
    spec = spec.strip()
    if spec == "auto":
        count = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(count)] if count else ["cpu"]
    devices = [part.strip() for part in spec.split(",") if part.strip()]
    if not devices:
        raise DeviceError(f"Expected devices such as auto, cpu or cuda:0,cuda:1, but got {spec!r}.")
    for device in devices:
        _check_device(device)
    return devices


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    count = torch.cuda.device_count()
    index = device.removeprefix("cuda:") if device.startswith("cuda:") else None
    if index is None or not index.isdigit():
        raise DeviceError(
            f"Expected a device named cpu or cuda:N, but got {device!r}; "
            "use --devices auto, cpu or cuda:0,cuda:1."
        )
    if int(index) >= count:
        raise DeviceError(
            f"Device {device!r} does not exist: this machine has {count} CUDA device(s); "
            "use --devices auto to take every GPU there is, or cpu."
        )


def plan_workers(
    devices: list[str], trials_per_device: int = 1, workers: int | None = None,
    threads: int = 1,
) -> list[WorkerSlot]:
    """Spread worker processes over the devices, round-robin, each with ``threads`` torch
    threads (counts checked by ``hpo.runners.options.RunOptions``).

    By default every GPU runs ``trials_per_device`` trials at once; without a GPU there is
    one worker per core.
    """
    cores = os.cpu_count() or 1
    default = cores if devices == ["cpu"] else len(devices) * trials_per_device
    count = workers if workers is not None else default
    return [WorkerSlot(devices[i % len(devices)], threads) for i in range(count)]
