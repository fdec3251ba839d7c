"""How the video tasks decode, pinned to what VL-Adapter's code ends up with: beam 5 to 20 tokens for all four
(the captions pass them to generate(), the QA loaders leave them to the config their arguments were copied onto),
and VL-BART's own generation defaults from its BART (bart-base's config.json: no_repeat_ngram_size 3 and
early_stopping; the EOS forced at the last step, the BOS not forced, as transformers 4.2.1 did)."""

import pytest
from transformers import BartForConditionalGeneration

from peftbench.harness.generation import decoding
from peftbench.models.load import load_model, model_config, tiny_bart_config
from peftbench.models.vlbart import vl_bart
from peftbench.tasks import get_task

VIDEO = ("tvqa", "how2qa", "tvc", "yc2c")


@pytest.mark.parametrize("name", VIDEO)
def test_every_video_task_decodes_with_beam_5_to_20_tokens(name):
    assert decoding(get_task(name)) == {"do_sample": False, "num_beams": 5, "max_length": 20}


def test_vl_bart_decodes_with_its_bart_s_defaults_without_forcing_the_first_token():
    """A BART whose generation defaults are bart-base's (as transformers 5 reads them from its config.json)."""
    base = BartForConditionalGeneration(tiny_bart_config())
    base.generation_config.update(num_beams=4, no_repeat_ngram_size=3, early_stopping=True, forced_bos_token_id=0,
                                  forced_eos_token_id=1)
    model = vl_bart(base, model_config("tiny-bart+tiny-clip-vit"))
    own = model.generation_config
    assert (own.no_repeat_ngram_size, own.early_stopping, own.forced_eos_token_id) == (3, True, 1)
    assert own.forced_bos_token_id is None
    assert base.generation_config.forced_bos_token_id == 0  # the BART itself is left as it was


def test_the_offline_tiny_vl_bart_keeps_transformers_defaults():
    """tiny-bart has no config.json of its own: nothing but transformers' defaults, as before."""
    model, _, _ = load_model("tiny-bart+tiny-clip-vit", seed=0)
    own = model.generation_config
    assert (own.no_repeat_ngram_size, own.forced_bos_token_id) == (None, None)
