"""The fake-tensor estimate against MemTracker on real tensors, its categories and CUDA accounting."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from peftbench.budgets.estimate import CUDA_BLOCK, CudaAttention, estimate_fit, estimating, tracked_peak
from peftbench.budgets.workload import Workload

LARGE = 10**12  # a capacity nothing reaches


def test_fake_estimate_within_5_percent_of_real_tensors_on_cpu():
    # The same steps on real CPU tensors under MemTracker are the measurement to match.
    workload = Workload("tiny-t5", "adapter", source_len=64, target_len=8)
    real = estimate_fit(workload, capacity=LARGE, batch_size=24, accounting="cpu", fake=False)
    fake = estimate_fit(workload, capacity=LARGE, batch_size=24, accounting="cpu")
    assert fake.estimated and real.peak_bytes > 0
    assert fake.peak_bytes == pytest.approx(real.peak_bytes, rel=0.05)
    # and the batch the estimate finds for a capacity is the one real tensors find
    capacity = real.peak_bytes + real.bytes_per_example // 2
    found_fake = estimate_fit(workload, capacity=capacity, accounting="cpu").batch_size
    found_real = estimate_fit(workload, capacity=capacity, accounting="cpu", fake=False).batch_size
    assert found_real == 24
    assert found_fake == pytest.approx(found_real, rel=0.05)


@pytest.mark.parametrize("method", ["full", "adapter"])
def test_categories_follow_adamw(method):
    workload = Workload("tiny-t5", method, source_len=32, target_len=4)
    model = workload.build()
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit = estimate_fit(workload, capacity=LARGE, batch_size=2, accounting="cpu")
    assert fit.categories["parameters"] == 4 * n_params
    assert fit.categories["gradients"] <= 4 * n_trainable
    # AdamW's two moments of every trainable parameter, none of a frozen one, and its step counts
    assert 8 * n_trainable <= fit.categories["optimizer_state"] <= 8 * n_trainable + 4_096
    assert fit.peak_bytes == sum(fit.categories.values())


def test_peak_grows_with_batch_by_activations_only():
    workload = Workload("tiny-t5", "adapter", source_len=32, target_len=4)
    small = estimate_fit(workload, capacity=LARGE, batch_size=64)
    large = estimate_fit(workload, capacity=LARGE, batch_size=128)
    for fixed in ("parameters", "optimizer_state", "buffers"):
        assert small.categories[fixed] == large.categories[fixed]
    assert large.categories["activations"] == pytest.approx(2 * small.categories["activations"], rel=0.02)
    assert large.bytes_per_example == pytest.approx(small.bytes_per_example, rel=0.02)
    assert large.fixed_bytes + 128 * large.bytes_per_example == pytest.approx(large.peak_bytes)


def test_the_line_comes_from_the_probes_not_the_categories():
    # Intrinsic-SAID's projections are activations that do not grow with the batch: the slope
    # between two probes is the memory per example, the activation category is not.
    workload = Workload("tiny-t5", "intrinsic-said", {"said_dim": 5000}, source_len=32, target_len=4)
    small = estimate_fit(workload, capacity=LARGE, batch_size=8)
    large = estimate_fit(workload, capacity=LARGE, batch_size=24)
    slope = (large.peak_bytes - small.peak_bytes) / 16
    assert large.bytes_per_example == pytest.approx(slope, rel=0.02)
    assert large.categories["activations"] / 24 > 1.2 * slope  # what the category split would say
    assert large.fixed_bytes + 24 * large.bytes_per_example == pytest.approx(large.peak_bytes)


def test_accumulation_keeps_gradients_alive():
    workload = Workload("tiny-t5", "full", source_len=64, target_len=8)
    n_params = sum(p.numel() for p in workload.build().parameters())
    alone = estimate_fit(workload, capacity=LARGE, batch_size=256, accounting="cpu")
    accumulating = estimate_fit(workload, capacity=LARGE, batch_size=256, accumulate=True, accounting="cpu")
    assert alone.categories["gradients"] < 4 * n_params  # set to None by the last step, partly rebuilt
    assert accumulating.categories["gradients"] == 4 * n_params  # an earlier micro-batch's, all of them
    assert accumulating.peak_bytes > alone.peak_bytes


def test_cuda_accounting_rounds_to_the_allocator_block():
    one_float = tracked_peak(lambda: torch.ones(1) + 1, block=CUDA_BLOCK)
    assert one_float["total"] == 2 * CUDA_BLOCK  # ones(1) and the sum: 4 bytes each, a block each
    assert tracked_peak(lambda: torch.ones(1) + 1)["total"] == 8


class OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_attention_runs_the_kernel_cuda_runs():
    with estimating(accounting="cuda"), OpNames() as ops:
        q = torch.randn(2, 4, 16, 8, requires_grad=True)
        bias = torch.randn(2, 4, 16, 16)
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=bias, dropout_p=0.1)
    assert out.shape == q.shape
    assert any("efficient_attention" in name for name in ops.names)
    assert not any(name.startswith("_softmax") for name in ops.names)  # no attention matrix kept
    assert isinstance(CudaAttention(), torch.overrides.TorchFunctionMode)


def test_nothing_fits_a_tiny_budget():
    from peftbench.budgets.parse import BudgetError

    with pytest.raises(BudgetError, match="not even a batch of 1 fits"):
        estimate_fit(Workload("tiny-t5", "full", source_len=16, target_len=4), capacity=1_000_000)
