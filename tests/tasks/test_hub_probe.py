"""The hub probe: offline found out once per process, within about a second, before any retry."""

from __future__ import annotations

import os
import socket
import threading

import datasets
import huggingface_hub
import pytest

from peftbench.tasks import get_task, hub
from peftbench.tasks.hub import OFFLINE_VARIABLES, hub_reachable


@pytest.fixture
def online_settings(monkeypatch):
    """No offline setting, and the libraries' offline flags restored afterwards."""
    for variable in OFFLINE_VARIABLES + ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub_reachable.cache_clear()
    yield monkeypatch
    hub_reachable.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_an_offline_setting_is_believed_without_a_connection(online_settings):
    online_settings.setenv("HF_DATASETS_OFFLINE", "yes")
    online_settings.setattr(hub, "_connects", lambda *a: pytest.fail("probed although told offline"))
    assert hub_reachable() is False


def test_an_unreachable_hub_turns_offline_mode_on_for_this_process_and_its_children(online_settings):
    online_settings.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert hub_reachable() is False
    assert all(os.environ[v] == "1" for v in OFFLINE_VARIABLES)
    assert datasets.config.HF_HUB_OFFLINE is True and huggingface_hub.constants.HF_HUB_OFFLINE is True


def test_a_listening_hub_is_reachable_and_changes_nothing(online_settings):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        online_settings.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub_reachable() is True
    assert not any(v in os.environ for v in OFFLINE_VARIABLES) and datasets.config.HF_HUB_OFFLINE is False


def test_a_name_lookup_that_hangs_costs_the_timeout_not_the_resolvers(online_settings):
    release, started = threading.Event(), threading.Event()
    online_settings.setattr(hub, "_addresses", lambda host, port: started.set() or release.wait(60) or [])
    try:
        assert hub_reachable(0.3) is False
        # the answer came while the lookup still hung: the probe did not wait for the resolver
        assert started.is_set() and not release.is_set()
    finally:
        release.set()


def test_loading_tasks_probes_once_per_process_and_falls_back_without_retries(online_settings):
    calls = []
    online_settings.setattr(hub, "_connects", lambda *a: calls.append(a) or False)
    online_settings.setattr(get_task("cb").__class__, "load_hub", lambda self: _offline_load())
    for name in ("cb", "rte", "cb"):
        assert get_task(name).load_with_source("auto").source == "fixtures"
    assert len(calls) == 1 and calls[0][0] == "huggingface.co"


def _offline_load():
    # what datasets does in offline mode for an uncached dataset: refuse at once
    assert datasets.config.HF_HUB_OFFLINE is True, "the hub was asked although it is out of reach"
    raise ConnectionError("offline mode is enabled")
