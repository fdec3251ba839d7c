"""Where the adapter family sits in a T5 sublayer: ``h + dropout(F + U(GeLU(D(F))))``, F the sublayer's
output, as in the original code: the adapter reads F undropped and the dropout takes the adapter's sum."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peftbench.methods import apply_method, method_names
from peftbench.methods.adapter import AfterSublayer

from testkit.models import tiny_model

ADAPTER_FAMILY = ["adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "phm-adapter", "compacter",
                  "compacter++", "hyperformer", "hyperformer++", "vl-hyperformer"]
TINY_OPTIONS = {"adapterdrop": {"dropped_layers": 1}, "phm-adapter": {"phm_dim": 4},
                "prompt-tuning-r": {"prompt_length": 3}, "prompt-tuning-t": {"prompt_length": 3},
                "intrinsic-said": {"said_dim": 300}}


class DoublingDropout(nn.Module):
    """A deterministic stand-in for dropout (×2, as if every unit were kept at p = 0.5) that records
    its input, so an adapter inside or outside it is told apart."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return 2 * x


def record_outputs(module: nn.Module, store: list) -> None:
    """Keep each output of ``module`` (the first element when it returns a tuple, as attention does)."""
    def hook(_, inputs, output):
        store.append((inputs[0].detach().clone() if inputs else None,
                      (output[0] if isinstance(output, tuple) else output).detach().clone()))
    module.register_forward_hook(hook)


def test_exactly_the_adapter_family_wraps_sublayer_dropouts():
    wrapping = set()
    for name in method_names():
        model = tiny_model(dropout=0.1)
        apply_method(model, name, TINY_OPTIONS.get(name, {}))
        if any(isinstance(m, AfterSublayer) for m in model.modules()):
            wrapping.add(name)
    assert wrapping == set(ADAPTER_FAMILY)


@pytest.mark.parametrize("name", ADAPTER_FAMILY)
def test_adapter_reads_the_raw_sublayer_output_and_the_dropout_takes_the_sum(name):
    model = tiny_model(dropout=0.1)
    apply_method(model, name, TINY_OPTIONS.get(name, {}))
    checked = 0
    for sublayer in [m for m in model.modules() if isinstance(getattr(m, "dropout", None), AfterSublayer)]:
        wrapper = sublayer.dropout
        wrapper.dropout = DoublingDropout()
        with torch.no_grad():  # weights large enough that the adapter's share is plain to see
            for p in wrapper.adapter.parameters():
                p.normal_(0, 0.5)
        inner = next(getattr(sublayer, a) for a in ("SelfAttention", "EncDecAttention", "DenseReluDense")
                     if hasattr(sublayer, a))
        raw, adapted, whole = [], [], []
        record_outputs(inner, raw)
        record_outputs(wrapper.adapter, adapted)
        record_outputs(sublayer, whole)
        model(input_ids=torch.tensor([[5, 6, 7, 1]]), decoder_input_ids=torch.tensor([[0, 9, 10]]))

        (_, F), (adapter_in, adapter_out), (h, out) = raw[0], adapted[0], whole[0]
        assert torch.equal(adapter_in, F)  # before the dropout: the adapter sees F, not 2F
        assert torch.equal(wrapper.dropout.seen[0], adapter_out)  # F + U(GeLU(D(F))) is what is dropped
        assert not torch.allclose(adapter_out, F)  # the adapter did contribute
        assert torch.allclose(out, h + 2 * adapter_out)  # and the residual adds the dropped sum
        checked += 1
    assert checked > 0
