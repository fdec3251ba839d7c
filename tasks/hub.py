"""Whether the dataset hub can be reached, found out once per process in about a second.

Without a network, ``datasets`` retries each request before giving up, about 24 s per task. Asked
here first, an unreachable hub turns on the Hugging Face libraries' offline mode: cached datasets
still load, the rest fall back to the fixtures (``data: auto``) or fail (``data: hub``) at once.
The answer is written to the environment, so processes started afterwards (a sweep's trial
workers) inherit it instead of asking again.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")  # what huggingface_hub and datasets read
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 1.0


def offline_by_setting() -> bool:
    """Whether the environment already says offline (the libraries' own truthy spellings)."""
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in OFFLINE_VARIABLES)


@functools.cache
def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """True when a TCP connection to the hub (or the HTTPS proxy in between) opens within
    ``timeout`` seconds, name lookup included; else offline mode is turned on. Asked once per process."""
    if offline_by_setting():
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlsplit(proxy or os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT))
    port = url.port or (443 if url.scheme == "https" else 80)
    start = time.monotonic()
    reachable = _connects(url.hostname or "", port, timeout)
    if not reachable:
        log.warning("the hub (%s:%s) did not answer within %.1f s: offline from now on, "
                    "cached models and datasets only", url.hostname, port, timeout)
        go_offline()
    log.debug("hub probe took %.2f s", time.monotonic() - start)
    return reachable


def _connects(host: str, port: int, timeout: float) -> bool:
    """A connection within ``timeout``; the name lookup runs in a thread because ``getaddrinfo``
    takes no timeout (without a network it can wait for the resolver's own, many seconds)."""
    deadline = time.monotonic() + timeout
    found: list = []
    lookup = threading.Thread(target=lambda: found.append(_addresses(host, port)), daemon=True)
    lookup.start()
    lookup.join(timeout)
    for family, kind, proto, _, address in (found[0] if found else []):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(address)
                return True
        except OSError:
            continue
    return False


def _addresses(host: str, port: int) -> list:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []


def go_offline() -> None:
    """Offline mode for this process (the libraries read the variables when imported, so those
    already imported are told too) and for the processes it starts."""
    for variable in OFFLINE_VARIABLES:
        os.environ[variable] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True
        sys.modules["datasets"].config.HF_DATASETS_OFFLINE = True
