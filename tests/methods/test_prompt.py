"""Prompt tuning: the prompt reaches the encoder, the masks stay right, generation works."""

from __future__ import annotations

import torch
from transformers import T5ForConditionalGeneration

from peftbench.methods import apply_method
from peftbench.models.load import tiny_t5_config

P = 6


def prompted(name="prompt-tuning-r"):
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config()).eval()
    apply_method(model, name, {"prompt_length": P})
    return model


def batch():
    input_ids = torch.tensor([[10, 11, 12, 13, 1], [20, 21, 1, 0, 0]])
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(),
            "decoder_input_ids": torch.zeros(2, 3, dtype=torch.long)}


def test_encoder_output_grows_by_the_prompt_and_decoder_output_does_not():
    out = prompted()(**batch())
    assert out.encoder_last_hidden_state.shape == (2, 5 + P, 128)
    assert out.logits.shape == (2, 3, 384)


def test_the_prompt_is_attended_and_padding_is_not():
    model = prompted()
    with torch.no_grad():
        before = model(**batch()).logits
        noisy = batch()
        noisy["input_ids"][1, 3:] = torch.tensor([99, 98])  # new tokens where the mask says padding
        torch.testing.assert_close(model(**noisy).logits, before)
        model.soft_prompt.embedding.add_(1.0)
        assert not torch.allclose(model(**batch()).logits, before, atol=1e-4)


def test_prompt_positions_count_in_the_cross_attention_mask():
    model = prompted()
    seen = {}
    model.decoder.block[0].layer[1].register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(mask=kwargs.get("attention_mask", args[1] if len(args) > 1 else None)),
        with_kwargs=True)
    model(**batch())
    mask = seen["mask"]  # the additive (or boolean) mask over encoder positions of row 1
    row = mask[1].reshape(-1, mask.shape[-1])[0]
    visible = (row == 0) if row.dtype != torch.bool else row
    assert visible.tolist() == [True] * P + [True, True, True, False, False]


def test_generation_uses_the_prompt():
    model = prompted()
    b = batch()
    generated = model.generate(input_ids=b["input_ids"], attention_mask=b["attention_mask"], max_new_tokens=4,
                               do_sample=False, num_beams=1)
    with torch.no_grad():
        first = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                      decoder_input_ids=torch.zeros(2, 1, dtype=torch.long)).logits[:, -1].argmax(-1)
    assert generated.shape[0] == 2 and torch.equal(generated[:, 1], first)


def test_vocabulary_init_copies_token_embeddings_and_random_init_is_uniform():
    vocab = prompted("prompt-tuning-t")
    rows = vocab.soft_prompt.embedding.detach()
    table = vocab.shared.weight.detach()
    assert all((table == row).all(-1).any() for row in rows)
    random = prompted("prompt-tuning-r").soft_prompt.embedding.detach()
    assert random.abs().max() <= 0.5 and not (table == random[0]).all(-1).any()


def test_a_reparametrised_prompt_is_its_mlp_of_the_table_and_both_train():
    """``mid_dim`` (VL-Adapter's InputPrompts, --mid_dim 800): the prompt fed to the encoder is
    Linear(tanh(Linear(E))) of a P × d table, and the gradient reaches the table and both layers."""
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(tiny_t5_config())
    apply_method(model, "prompt-tuning-r", {"prompt_length": P, "mid_dim": 16})
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    prompt = model.soft_prompt.embedding
    seen = []
    model.encoder.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["inputs_embeds"][:, :P]),
                                            with_kwargs=True)
    out = model(**batch(), labels=torch.tensor([[5, 6, 1], [7, 1, 0]]))
    with torch.no_grad():
        expected = prompt.mlp[2](torch.tanh(prompt.mlp[0](prompt.table.weight)))
    torch.testing.assert_close(seen[0][0], expected)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    parts = ("table.weight", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias")
    assert set(grads) == trained == {f"soft_prompt.embedding.{n}" for n in parts}
