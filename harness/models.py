"""Model loading: ``tiny-t5`` built offline from a config, or any Hugging Face T5 id or path.

``NAME@REVISION`` pins a hub revision (``google-t5/t5-base@<commit>``).
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoTokenizer, ByT5Tokenizer, T5Config, T5ForConditionalGeneration

import tinyt5

TINY_T5 = "tiny-t5"

def tiny_t5_config() -> T5Config:
    """A ~0.7M-parameter T5 whose vocabulary is ByT5's 384 byte ids: no files, no download."""
    return T5Config(
        vocab_size=384, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=2,
        num_decoder_layers=2, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1, tie_word_embeddings=True,
    )


# The original T5 checkpoints' architectures (their config.json on the hub), so parameter accounting
# and step timing need no download. Shared by all: relu feed-forward, 32 relative-position buckets,
# tied input/output embeddings, vocabulary 32128.
_T5_SIZES = {  # name: (d_model, d_ff, d_kv, num_heads, num_layers)
    "t5-small": (512, 2048, 64, 8, 6),
    "t5-base": (768, 3072, 64, 12, 12),
    "t5-large": (1024, 4096, 64, 16, 24),
    "t5-3b": (1024, 16384, 128, 32, 24),
    "t5-11b": (1024, 65536, 128, 128, 24),
}


def known_t5_config(name: str) -> T5Config | None:
    """The configuration of an original T5 size (``t5-base`` or ``google-t5/t5-base``), else None."""
    size = _T5_SIZES.get(name.removeprefix("google-t5/"))
    if size is None:
        return None
    d_model, d_ff, d_kv, num_heads, num_layers = size
    return T5Config(
        vocab_size=32128, d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_heads=num_heads, num_layers=num_layers,
        num_decoder_layers=num_layers, dropout_rate=0.1, feed_forward_proj="relu", decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=1, tie_word_embeddings=True,
    )


def _split_revision(name: str) -> tuple[str, str | None]:
    repo, _, revision = name.partition("@")
    return repo, revision or None


def model_config(name: str) -> T5Config:
    """The model's configuration alone (no weights); the original T5 sizes are known offline."""
    if name == TINY_T5:
        return tiny_t5_config()
    if name == tinyt5.PRETRAINED:
        return T5Config.from_pretrained(tinyt5.pretrained_path())
    if known := known_t5_config(name):
        return known
    repo, revision = _split_revision(name)
    return AutoConfig.from_pretrained(repo, revision=revision)


def load_model(name: str, *, seed: int) -> tuple[T5ForConditionalGeneration, object]:
    """The model and its tokenizer; ``tiny-t5`` is initialised from ``seed`` deterministically."""
    if name == TINY_T5:
        torch.manual_seed(seed)
        return T5ForConditionalGeneration(tiny_t5_config()), ByT5Tokenizer()
    if name == tinyt5.PRETRAINED:  # local to this branch: the lead maps it in the refactored loader
        return T5ForConditionalGeneration.from_pretrained(tinyt5.pretrained_path()), ByT5Tokenizer()
    repo, revision = _split_revision(name)
    model = T5ForConditionalGeneration.from_pretrained(repo, revision=revision)
    return model, AutoTokenizer.from_pretrained(repo, revision=revision)
