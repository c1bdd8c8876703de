"""Where Ray trials run: a local Ray started for the run, or an existing cluster; and what
each trial asks of it (CPU and GPU shares).

Everything that can be refused is refused here, before the study is created or loaded, so
a bad ``--address`` or a GPU that the cluster lacks leaves the storage unchanged.

Example:
    >>> plan_resources("cpu", 1, None, {"CPU": 4.0})
    TrialResources(num_cpus=1.0, num_gpus=0.0, slots=4)
    >>> plan_resources("auto", 4, None, {"CPU": 16.0, "GPU": 1.0})
    TrialResources(num_cpus=1.0, num_gpus=0.25, slots=4)
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpo.errors import ConfigError, DeviceError, HPOError

RAY_DEVICES = ("auto", "cpu", "gpu")
# Ray puts sockets at <temp>/session_<date>_<pid>/sockets/plasma_store: AF_UNIX paths stop
# at 107 bytes, which leaves about 45 for the temp dir itself.
_LONGEST_TEMP_DIR = 45
# Lab trials move kilobytes through the object store; Ray's default (30% of RAM) would
# crowd a small machine that several people share.
_OBJECT_STORE_BYTES = 128 * 2**20
_CONNECT_SECONDS = 5.0


class ClusterError(HPOError, RuntimeError):
    """A Ray cluster cannot be reached or cannot give what a study asks of it."""


@dataclass(frozen=True)
class TrialResources:
    """What one trial (one trial actor) asks of Ray, and how many run at once."""

    num_cpus: float
    num_gpus: float
    slots: int

    @property
    def threads(self) -> int:
        """Torch threads for a trial: its whole CPUs, at least one."""
        return max(1, int(self.num_cpus))


def plan_resources(devices: str, trials_per_device: int, workers: int | None,
                   cluster: Mapping[str, float]) -> TrialResources:
    """Per-trial CPU/GPU requests from ``--devices``/``--trials-per-device``/``--workers``.

    On GPUs every trial asks for ``1 / trials_per_device`` of a GPU and the matching share
    of the CPUs (always both: a GPU trial still needs a CPU to feed it). Without GPUs every
    trial takes one CPU, and the cluster runs as many at once as it has CPUs. ``workers``
    lowers the number of trials at once, never above what the cluster holds.

    Raises:
        DeviceError: GPUs were asked for (``--devices gpu``) on a cluster without any.
    """
    check_ray_devices(devices)
    cpus, gpus = float(cluster.get("CPU", 0.0)), float(cluster.get("GPU", 0.0))
    if devices == "gpu" and gpus < 1:
        raise DeviceError(
            "`--devices gpu` asks for GPUs, but the Ray cluster has none "
            f"({cpus:g} CPUs, 0 GPUs); use --devices auto or cpu, or add GPU nodes."
        )
    # More trial actors than the cluster can hold would wait for resources forever.
    if devices == "cpu" or gpus < 1:
        capacity = max(1, int(cpus))
        return TrialResources(num_cpus=1.0, num_gpus=0.0, slots=min(workers or capacity,
                                                                    capacity))
    shares = int(gpus) * trials_per_device
    num_cpus = min(1.0, round(cpus / shares, 2)) if cpus else 0.01
    return TrialResources(num_cpus=max(num_cpus, 0.01), num_gpus=1.0 / trials_per_device,
                          slots=min(workers or shares, shares))


def check_ray_devices(devices: str) -> None:
    """Ray places trials itself: devices are a kind (cpu, gpu), never a GPU's number."""
    if devices.strip() not in RAY_DEVICES:
        raise ConfigError(
            f"`--devices` must be one of {', '.join(RAY_DEVICES)} with --runner ray, but got "
            f"{devices!r}: Ray assigns each trial its GPU; to use only some GPUs, start the "
            "Ray nodes with `ray start --num-gpus N` or set CUDA_VISIBLE_DEVICES."
        )


def connect(address: str | None) -> bool:
    """Start a local Ray, or join the cluster at ``address``; True when this call started
    (or joined) Ray and so must shut it down. An already running session is reused.

    Raises:
        ClusterError: the address cannot be reached, or Ray Client is not installed.
    """
    import ray

    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
              "logging_level": "WARNING", "configure_logging": True}
    if address is None:
        ray.init(num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(),
                 _temp_dir=str(temp_dir()), object_store_memory=_OBJECT_STORE_BYTES, **common)
        return True
    try:
        ray.init(address=address, **common)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise ClusterError(f"Could not join the Ray cluster at {address!r}: "
                           f"{_first_line(error)}") from None
    return True


def temp_dir(working: Path | None = None) -> Path:
    """Ray's files: ``.ray`` in the working folder, or a short folder under the system temp
    dir when that path is too long for Ray's sockets; never the home folder."""
    local = (working or Path.cwd()).resolve() / ".ray"
    if len(str(local)) <= _LONGEST_TEMP_DIR:
        return local
    return Path(tempfile.gettempdir()) / f"hpo-ray-{os.getuid()}"


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes: Ray itself retries an unreachable GCS for a long time."""
    if address == "auto":
        return  # ray.init finds the local cluster or says at once that there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Expected --address auto, host:port or ray://host:port, but got "
                           f"{address!r}.")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_SECONDS).close()
    except OSError as error:
        raise ClusterError(
            f"No Ray cluster answers at {address!r} ({error.strerror or error}); start one "
            "with `ray start --head` there, or check the host and port."
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
