"""Where a result came from: package versions, git commit, python, device, host."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path

PACKAGES = ("peftbench", "torch", "transformers", "datasets", "deepspeed", "ray", "pandas")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()})"


def ray_node() -> str | None:
    """The Ray node this process runs on, when it runs under Ray."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def gpu_share() -> float | None:
    """The share of a GPU Ray gave this trial (below 1: other trials may have shared its card, and its
    times ran under their load), or None outside Ray or without a GPU."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        return ray.get_runtime_context().get_assigned_resources().get("GPU")
    except AssertionError:  # the driver (a record it writes for a lost trial) holds no trial's resources
        return None


def provenance() -> dict:
    return {
        "ray_node": ray_node(),
        "gpu_share": gpu_share(),
        "versions": {p: _version(p) for p in PACKAGES},
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "device": device_name(),
        "host": socket.gethostname(),
    }
