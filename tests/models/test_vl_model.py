"""VL-T5 and VL-BART on tiny T5/BART + tiny CLIP: image features reach the text, and every method trains the
projection."""

import pytest
import torch

from peftbench.engine.accounting import count_params
from peftbench.methods import apply_method, method_names
from peftbench.models.encoders import encode
from peftbench.models.load import load_model, model_config
from peftbench.models.vlt5 import VISUAL_KEYS
from peftbench.tasks import get_task

MODEL = "tiny-t5+tiny-clip"
MODELS = ("tiny-t5+tiny-clip", "tiny-bart+tiny-clip")
PROJECTION = ("encoder.visual_embedding.feat.weight", "encoder.visual_embedding.feat.bias",
              "encoder.visual_embedding.feat_norm.weight", "encoder.visual_embedding.box.weight",
              "encoder.visual_embedding.box.bias", "encoder.visual_embedding.box_norm.weight",
              "encoder.visual_embedding.image_order.weight")
# VL-BART's projection: its encoder sits under ``model.``, and BART's nn.LayerNorm has a bias
PROJECTIONS = {"tiny-t5+tiny-clip": PROJECTION,
               "tiny-bart+tiny-clip": tuple("model." + n for n in PROJECTION) + (
                   "model.encoder.visual_embedding.feat_norm.bias", "model.encoder.visual_embedding.box_norm.bias")}
OPTIONS = {"intrinsic-said": {"said_dim": 2000}, "adapterdrop": {"dropped_layers": 1}, "phm-adapter": {"phm_dim": 4},
           "prompt-tuning-r": {"prompt_length": 4}, "prompt-tuning-t": {"prompt_length": 4, "vocab_sample": 300}}


@pytest.fixture(scope="module")
def batch():
    """Four VQA fixture questions with their pictures' tiny-CLIP features (1 image × 16 cells × 64)."""
    _, tokenizer, _ = load_model(MODEL, seed=0)
    rows = get_task("vqa").load("fixtures")["train"][:4]
    task = get_task("vqa")
    feats = torch.stack([encode("tiny-clip", task.images(r)) for r in rows])
    text = tokenizer([task.source(r) for r in rows], return_tensors="pt", padding=True)
    labels = tokenizer([task.target(r) for r in rows], return_tensors="pt", padding=True).input_ids
    return {"input_ids": text.input_ids, "attention_mask": text.attention_mask, "labels": labels,
            "visual_features": feats}


def first_block_input(model, batch) -> torch.Tensor:
    """What the encoder's first block reads (after embeddings, and for BART its positions and norm)."""
    encoder = model.get_encoder()
    first = encoder.block[0] if hasattr(encoder, "block") else encoder.layers[0]
    seen = []
    handle = first.register_forward_pre_hook(lambda module, args, kwargs:
                                             seen.append(args[0] if args else kwargs["hidden_states"]),
                                             with_kwargs=True)
    model(**batch)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("name", MODELS)
def test_the_encoder_reads_the_text_then_the_visual_tokens(name, batch):
    """VL-Adapter's order, [text; visual] (modeling_t5.py:260, modeling_bart.py:657-662): the text's positions
    come first and do not change when only the picture does; the visual ones after them do."""
    model, _, source = load_model(name, seed=0)
    assert source == f"config:{name}"
    assert batch["visual_features"].shape == (4, 1, 16, 64)
    out = model(**batch, output_hidden_states=True)
    text_len = batch["input_ids"].shape[1]
    assert out.encoder_last_hidden_state.shape == (4, text_len + 16, 128)
    assert torch.isfinite(out.loss)
    # the pictures matter: another picture for each question, another loss and other encoder states
    swapped = {**batch, "visual_features": batch["visual_features"].roll(1, dims=0)}
    other = model(**swapped)
    assert not torch.allclose(out.loss, other.loss)
    before, after = first_block_input(model, batch), first_block_input(model, swapped)
    torch.testing.assert_close(before[:, :text_len], after[:, :text_len])
    assert not torch.allclose(before[:, text_len:], after[:, text_len:])
    # the text positions see the picture (self-attention)
    assert not torch.allclose(out.encoder_last_hidden_state[:, :text_len],
                              other.encoder_last_hidden_state[:, :text_len])


@pytest.mark.parametrize("name", MODELS)
def test_generation_sees_the_picture_as_training_does(name, batch):
    """Greedy decoding's first-step logits equal the training forward's for the same decoder prefix."""
    model, _, _ = load_model(name, seed=0)
    model.eval()
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", *VISUAL_KEYS[:1])}
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False, num_beams=1, output_logits=True,
                               return_dict_in_generate=True)
    start = torch.zeros(4, 1, dtype=torch.long)
    logits = model(**inputs, decoder_input_ids=start).logits[:, -1]
    torch.testing.assert_close(generated.logits[0], logits, rtol=1e-4, atol=1e-4)
    without = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                             max_new_tokens=3, output_logits=True, return_dict_in_generate=True)
    assert not torch.allclose(without.logits[0], logits)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", method_names())
def test_every_method_trains_the_projection_and_counts_it(method, name, batch):
    """Trainable set = the method's own on the text model + the projection; gradients reach both."""
    text_model, _, _ = load_model(name.partition("+")[0], seed=0)
    options = OPTIONS.get(method)
    _, text_count = apply_method(text_model, method, options)
    text_trainable = {n for n, p in text_model.named_parameters() if p.requires_grad}
    model, _, _ = load_model(name, seed=0)
    PROJECTION = PROJECTIONS[name]
    _, count = apply_method(model, method, options)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    projection = sum(p.numel() for n, p in model.named_parameters() if n in PROJECTION)
    assert trainable == text_trainable | set(PROJECTION)
    assert count.trainable == text_count.trainable + projection
    assert count.total == text_count.total + projection
    model.train()
    model(**batch).loss.backward()
    reached = {n for n, p in model.named_parameters() if p.grad is not None}
    assert set(PROJECTION) <= reached <= trainable


def test_the_projection_has_vl_t5s_size_on_t5_base():
    """VL-Adapter's projection on T5-base: Linear(2048→768) + T5 layer norm, box Linear(5→768) + layer norm,
    image order Embedding(2, 768): 2048·768 + 768 + 768 + 5·768 + 768 + 768 + 2·768 = 1,581,312."""
    vl = count_params(model_config("t5-base+clip-rn101"), "adapter")
    text = count_params(model_config("t5-base"), "adapter")
    assert vl.total - text.total == 1_581_312
    assert vl.trainable - text.trainable == 1_581_312
