"""The method matrix: every registered method on tiny T5 and tiny BART."""

from __future__ import annotations

import pytest
import torch

from peftbench.engine.state import load_trainable_state, trainable_state
from peftbench.methods import apply_method, method_names
from peftbench.models.load import tiny_bart_config, tiny_t5_config

from testkit.models import TINY_OPTIONS, tiny_batch, tiny_model


def closed_form_trainable(method: str, options: dict, c) -> int:
    """Trainable parameters by formula from the T5 config alone (independent of the method code)."""
    d, ff, inner, L, V = c.d_model, c.d_ff, c.num_heads * c.d_kv, c.num_layers, c.vocab_size
    assert c.num_decoder_layers == L
    attention = 3 * d * inner + inner * d  # q, k, v, o
    encoder_block = attention + 2 * d * ff + 2 * d  # + two layer norms
    decoder_block = 2 * attention + 2 * d * ff + 3 * d
    total = V * d + L * (encoder_block + decoder_block) + 2 * c.relative_attention_num_buckets * c.num_heads + 2 * d
    layer_norms = (2 * L + 1 + 3 * L + 1) * d  # block norms and the two final ones
    r = d // options.get("reduction_factor", 32)
    n = options.get("phm_dim", 12 if method == "phm-adapter" else 4)
    houlsby = 2 * d * r + r + d
    compacter = 2 * options.get("phm_rank", 1) * (d + r) + r + d  # s and t of down and up, biases
    bitfit = L * (3 * inner + d + ff + d + 2 * d) + L * (2 * (3 * inner + d) + ff + d + 3 * d) + V
    attentions = 3 * L  # encoder self, decoder self and cross
    lora_qv = attentions * 2 * options.get("r", 8) * (d + inner)  # A: r×in, B: out×r on q and v
    ia3 = attentions * 2 * inner + 2 * L * ff  # scales k's and v's outputs, wo's input
    t, h, p = 64, 128, 64  # Hyperformer: task embedding, projector hidden, projected embedding
    generators = (p + 1) * (2 * d * r + r + 3 * d)  # D, U, their biases, γ, β: each a linear map of I
    hyperformer = t + (t * h + h + h * p + p) + 4 * L * generators + layer_norms  # one task, one projector
    stack_hypernet = L * t + 2 * t + (3 * t * h + h + h * p + p) + 2 * p + generators  # embeddings, h'_I, LN
    vt, vp = 512, 64  # VL-Adapter's Hyperformer: 512-d task embedding, projected to 64
    vl_generators = (vp + 1) * (2 * d * r + r + d)  # D, U, their biases: no layer norm
    vl_controller = L * vt + (2 * vt * h + h + h * vp + vp) + 2 * vp  # layer ids, h_I on [z; l], LN
    vl_hyperformer = vt + 2 * vl_controller + (2 + 3) * vl_generators + layer_norms  # cross-attention in the decoder
    return {
        "full": total,
        "adapter": 4 * L * houlsby + layer_norms,
        "pfeiffer-adapter": 2 * L * houlsby + layer_norms,
        "adapterdrop": 4 * (L - options.get("dropped_layers", 5)) * houlsby + layer_norms,
        "adapter-lowrank": 4 * L * (3 * d + 3 * r) + layer_norms,
        "prompt-tuning-r": options.get("prompt_length", 100) * d,
        "prompt-tuning-t": options.get("prompt_length", 100) * d,
        "intrinsic-said": options.get("said_dim", 20000),
        "bitfit": bitfit,
        "phm-adapter": 4 * L * (2 * n**3 + 2 * d * r // n + r + d) + layer_norms,
        "compacter": n**3 + 4 * L * compacter + layer_norms,
        "compacter++": n**3 + 2 * L * compacter + layer_norms,
        "hyperformer": hyperformer,
        "hyperformer++": t + 2 * stack_hypernet + layer_norms,
        "vl-hyperformer": vl_hyperformer,
        "peft": lora_qv,  # LoRA unless told otherwise
        "lora": lora_qv,
        "ia3": ia3,
    }[method]


def test_the_papers_twelve_methods_hyperformer_and_the_peft_bridge_are_registered():
    assert method_names() == [
        "full", "adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "prompt-tuning-r",
        "prompt-tuning-t", "intrinsic-said", "bitfit", "phm-adapter", "compacter", "compacter++",
        "hyperformer", "hyperformer++", "vl-hyperformer", "peft", "lora", "ia3",
    ]


@pytest.fixture(params=method_names())
def applied(request):
    name = request.param
    model = tiny_model()
    options = TINY_OPTIONS.get(name, {})
    _, count = apply_method(model, name, options)
    return name, options, model, count


@pytest.fixture(params=[(m, b) for b in ("tiny-t5", "tiny-bart") for m in method_names()],
                ids=lambda p: f"{p[1]}-{p[0]}")
def applied_both(request):
    """Every method on both architectures (methods/sublayers.py finds their sublayers)."""
    name, backbone = request.param
    model = tiny_model(name=backbone)
    options = TINY_OPTIONS.get(name, {})
    _, count = apply_method(model, name, options)
    return name, options, model, count


def test_loss_is_finite_and_gradients_reach_exactly_the_trainable_parameters(applied_both):
    _, _, model, _ = applied_both
    loss = model(**tiny_batch()).loss
    assert torch.isfinite(loss)
    loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable and with_grad == trainable
    assert sum(p.grad.abs().sum() for p in model.parameters() if p.grad is not None) > 0


def test_trainable_count_matches_the_closed_form(applied):
    name, options, model, count = applied
    config = tiny_t5_config()
    assert count.trainable == closed_form_trainable(name, options, config)
    assert count.total == closed_form_trainable("full", {}, config)
    assert count.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_generate_agrees_with_forward_and_training_moves_the_output(applied_both):
    _, _, model, _ = applied_both
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    start = torch.zeros(3, 1, dtype=torch.long)

    def logits():
        return model(**batch, decoder_input_ids=start).logits[:, -1]

    before, snapshot = logits().detach(), trainable_state(model)
    generated = model.generate(**batch, max_new_tokens=1, do_sample=False, num_beams=1)
    assert torch.equal(generated[:, -1], before.argmax(-1))

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    for _ in range(2):  # twice: a second step must see the first one's update
        model(**tiny_batch()).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        assert not torch.allclose(logits(), before)
        load_trainable_state(model, snapshot)
        assert torch.allclose(logits(), before, atol=1e-6)


@pytest.mark.parametrize("name, options, message", [
    ("phm-adapter", {}, "phm_dim 12 must divide"),
    ("adapterdrop", {"dropped_layers": 2}, "leaves none"),
    ("intrinsic-said", {"said_dim": 10}, "must exceed"),
])
def test_options_that_do_not_fit_tiny_t5_are_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        apply_method(tiny_model(), name, options)


@pytest.mark.parametrize("name, options", [
    ("adapter", {"reduction_factor": 0}), ("compacter", {"phm_rank": 0}), ("compacter", {"rule_init_std": -1.0}),
    ("prompt-tuning-t", {"prompt_length": 0}), ("intrinsic-said", {"said_dim": 1.5}), ("bitfit", {"phm_dim": 4}),
])
def test_bad_options_are_rejected_before_any_change(name, options):
    model = tiny_model()
    with pytest.raises(ValueError):
        apply_method(model, name, options)
    assert all(p.requires_grad for p in model.parameters())




def test_the_names_listed_per_family_are_the_names_registered():
    import importlib

    from peftbench.methods.registry import _REGISTRY, FAMILIES

    for family, names in FAMILIES.items():
        importlib.import_module(f"peftbench.methods.{family}")
        assert set(names) <= set(_REGISTRY), family
    assert set(_REGISTRY) == set(method_names())


def closed_form_bart_adapters(c, reduction_factor: int, cross_attention: bool) -> int:
    """Houlsby adapters on BART by formula: one per encoder self-attention and feed-forward, one per decoder
    self-attention, feed-forward and (``cross_attention``) cross-attention; every nn.LayerNorm of the stacks
    (two per encoder layer, three per decoder layer, the two embedding norms)."""
    d, L = c.d_model, c.encoder_layers
    r = d // reduction_factor
    adapters = L * 2 + L * (3 if cross_attention else 2)
    layer_norms = 2 * d * (2 * L + 3 * L + 2)
    return adapters * (2 * d * r + r + d) + layer_norms


@pytest.mark.parametrize("cross_attention", [False, True])
def test_bart_adapters_sit_after_each_sublayer_with_cross_attention_on_request(cross_attention):
    model = tiny_model(name="tiny-bart")
    _, count = apply_method(model, "adapter", {"cross_attention": cross_attention})
    assert count.trainable == closed_form_bart_adapters(tiny_bart_config(), 32, cross_attention)
    decoder_layer = model.model.decoder.layers[0]
    assert hasattr(decoder_layer.encoder_attn, "adapter") == cross_attention
    assert hasattr(decoder_layer.self_attn, "adapter") and hasattr(decoder_layer.fc2, "adapter")


def test_t5_adapters_after_cross_attention_on_request():
    plain, crossed = tiny_model(), tiny_model()
    _, without = apply_method(plain, "adapter", {})
    _, with_cross = apply_method(crossed, "adapter", {"cross_attention": True})
    d = tiny_t5_config().d_model
    r = d // 32
    assert with_cross.trainable - without.trainable == tiny_t5_config().num_decoder_layers * (2 * d * r + r + d)
    assert hasattr(crossed.decoder.block[0].layer[1].dropout, "adapter")
    assert not hasattr(plain.decoder.block[0].layer[1].dropout, "adapter")
