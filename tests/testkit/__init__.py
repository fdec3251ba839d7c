"""Helpers the tests share, in one place: tiny models, synthetic records, a simulated CUDA device,
bit-for-bit comparison of states.

A module, not fixtures, because these are called with arguments, at import time (parametrize lists)
and inside spawned worker processes, which import a function by its module's name. pyproject.toml puts
``tests/`` on pytest's path, so every test imports them the same way: ``from testkit.models import …``.
"""
