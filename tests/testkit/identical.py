"""Bit-for-bit comparison of saved training state (resume tests)."""

import torch


def assert_identical(a, b, where: str = "state") -> None:
    """Equal, tensors bit for bit, through nested dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, f"{where}: shapes differ"
        if not torch.equal(a, b):  # the difference computed only then: an empty tensor has no max
            largest = (a.double() - b.double()).abs().max().item()
            raise AssertionError(f"{where} differs (largest difference {largest:.3g})")
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys differ: {sorted(map(str, set(a) ^ set(b)))}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
