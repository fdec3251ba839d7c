"""Where tensors go and in what arithmetic: models built whole on a device, precision set and recorded."""

import pytest
import torch

from peftbench.engine.batches import batches, random_batch
from peftbench.engine.build import build_model
from peftbench.engine.devices import set_precision
from peftbench.engine.step import Engine, Optimization
from peftbench.methods import method_names
from peftbench.models.load import tiny_t5_config


@pytest.mark.parametrize("method", method_names())
def test_every_module_of_a_method_is_built_on_the_models_device(method):
    # adapters, PHM and Compacter layers were made on the CPU beside a CUDA model (issue 19, bug 2)
    model = build_model("t5-base", method, device="meta")  # the paper's model: every default option fits it
    elsewhere = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type != "meta"]
    assert elsewhere == []


def test_precision_is_set_through_torchs_switches_and_reported():
    try:
        assert set_precision("fp32", tf32=True) == {"precision": "fp32", "matmul_fp32": "tf32", "conv_fp32": "tf32"}
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert set_precision("bf16", tf32=False)["matmul_fp32"] == "ieee"
        with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
            set_precision("fp16", tf32=False)
    finally:
        set_precision("fp32", tf32=False)


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_bf16_autocasts_the_forward_and_keeps_weights_and_updates_fp32(precision, dtype):
    model = build_model("tiny-t5", "adapter")
    seen = []
    model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    engine = Engine(model, Optimization(learning_rate=1e-2), precision=precision)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    engine.micro_step(random_batch(tiny_t5_config().vocab_size, batch_size=2, source_len=8, target_len=3))
    after = [p for p in model.parameters() if p.requires_grad]
    assert seen == [dtype]
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_a_last_batch_smaller_than_the_workers_is_left_out():
    rows = [{"input_ids": [5, 1], "labels": [1]} for _ in range(9)]
    sizes = [len(b["input_ids"]) for b in batches(rows, 4, 0, min_rows=2)]
    assert sizes == [4, 4]  # the ninth row alone would leave a worker without one
    assert [len(b["input_ids"]) for b in batches(rows, 4, 0)] == [4, 4, 1]
