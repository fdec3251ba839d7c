"""Which methods get the task's name in front of their inputs: the registry's ``task_prefix`` and
``resolve_prefix`` ("auto" follows the original code: every method but the adapter family)."""

import pytest

from peftbench.methods import get_method, method_names, register, resolve_prefix

ADAPTER_FAMILY = {"adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "phm-adapter", "compacter",
                  "compacter++", "hyperformer", "hyperformer++", "vl-hyperformer"}
WITH_PREFIX = {"full", "bitfit", "prompt-tuning-r", "prompt-tuning-t", "intrinsic-said", "peft", "lora", "ia3"}


def test_every_method_declares_the_original_codes_prefix():
    assert ADAPTER_FAMILY | WITH_PREFIX == set(method_names())
    assert {n for n in method_names() if get_method(n).task_prefix} == WITH_PREFIX
    assert {n for n in method_names() if not get_method(n).task_prefix} == ADAPTER_FAMILY


@pytest.mark.parametrize(("setting", "method", "expected"), [
    ("auto", "full", True), ("auto", "prompt-tuning-t", True), ("auto", "compacter++", False),
    ("auto", "adapter", False), ("always", "adapter", True), ("never", "bitfit", False), ("never", "adapter", False),
    ("always", "intrinsic-said", True),
])
def test_resolve_prefix(setting, method, expected):
    assert resolve_prefix(setting, method) is expected
    assert resolve_prefix(setting, get_method(method)) is expected  # a Method works as well as its name


def test_resolve_prefix_rejects_unknown_settings_and_methods():
    with pytest.raises(ValueError, match="one of auto, always, never, got 'yes'"):
        resolve_prefix("yes", "full")
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        resolve_prefix("auto", "nope")


def test_register_needs_an_explicit_boolean_task_prefix():
    with pytest.raises(TypeError):
        register("no-prefix-declared", object, lambda m, c: [])
    with pytest.raises(TypeError, match="task_prefix must be True or False"):
        register("bad-prefix", object, lambda m, c: [], task_prefix="auto")
    assert "no-prefix-declared" not in method_names() and "bad-prefix" not in method_names()
