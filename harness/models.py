"""Model loading: ``tiny-t5`` built offline from a config, or any Hugging Face T5 id or path.

``NAME@REVISION`` pins a hub revision (``google-t5/t5-base@<commit>``).
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoTokenizer, ByT5Tokenizer, T5Config, T5ForConditionalGeneration

TINY_T5 = "tiny-t5"

# Architectures known offline (values of the hub's config.json), so a model's memory can be
# estimated with no download; ``google-t5/t5-base`` is ``t5-base``.
KNOWN_T5 = {
    "t5-base": {
        "vocab_size": 32128, "d_model": 768, "d_ff": 3072, "d_kv": 64, "num_heads": 12, "num_layers": 12,
        "num_decoder_layers": 12, "feed_forward_proj": "relu", "dropout_rate": 0.1,
        "layer_norm_epsilon": 1e-6, "relative_attention_num_buckets": 32, "tie_word_embeddings": True,
        "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
    },
}


def tiny_t5_config() -> T5Config:
    """A ~0.7M-parameter T5 whose vocabulary is ByT5's 384 byte ids: no files, no download."""
    return T5Config(
        vocab_size=384, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=2,
        num_decoder_layers=2, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1, tie_word_embeddings=True,
    )


def _split_revision(name: str) -> tuple[str, str | None]:
    repo, _, revision = name.partition("@")
    return repo, revision or None


def model_config(name: str) -> T5Config:
    """The model's configuration alone (no weights)."""
    if name == TINY_T5:
        return tiny_t5_config()
    repo, revision = _split_revision(name)
    known = KNOWN_T5.get(repo.removeprefix("google-t5/"))
    if known is not None:
        return T5Config(**known)
    return AutoConfig.from_pretrained(repo, revision=revision)


def load_model(name: str, *, seed: int) -> tuple[T5ForConditionalGeneration, object]:
    """The model and its tokenizer; ``tiny-t5`` is initialised from ``seed`` deterministically."""
    if name == TINY_T5:
        torch.manual_seed(seed)
        return T5ForConditionalGeneration(tiny_t5_config()), ByT5Tokenizer()
    repo, revision = _split_revision(name)
    model = T5ForConditionalGeneration.from_pretrained(repo, revision=revision)
    return model, AutoTokenizer.from_pretrained(repo, revision=revision)
