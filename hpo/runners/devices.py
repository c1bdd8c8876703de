"""Which device each worker process trains on, and how many CPU threads it may use."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from hpo.errors import ConfigError, DeviceError
from search_spaces.values import is_int


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: the device it is pinned to and its share of the CPU cores."""

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
    devices: list[str], trials_per_device: int = 1, workers: int | None = None
) -> list[WorkerSlot]:
    """Spread worker processes over the devices, round-robin, sharing out the CPU cores.

    By default every GPU runs ``trials_per_device`` trials at once; without a GPU there is
    one worker per core, each with one thread: the course's networks are too small for
    intra-op threads to pay (measured: the lab trial takes 0.26 s on one thread, 0.28 s
    on two), and threads of several workers fighting over the cores cost far more.
    """
    if not is_int(trials_per_device) or trials_per_device < 1:
        raise ConfigError(
            f"`--trials-per-device` must be a positive integer, but got {trials_per_device!r}."
        )
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ConfigError(f"`--workers` must be a positive integer, but got {workers!r}.")
    cores = os.cpu_count() or 1
    default = cores if devices == ["cpu"] else len(devices) * trials_per_device
    count = workers if workers is not None else default
    threads = max(1, cores // count)
    return [WorkerSlot(devices[i % len(devices)], threads) for i in range(count)]
