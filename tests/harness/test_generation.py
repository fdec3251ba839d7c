"""Decoding as each task declares: captions by beam search (VL-Adapter's beam 5, 40 tokens), NLVR2 by its
two words' logits at the first decoder step (never an invalid output), everything else greedy."""

from typing import ClassVar

import pytest
import torch

from peftbench.harness.generation import choice_tokens, decoding, generate
from peftbench.harness.setup import encode_split
from peftbench.models.load import load_model
from peftbench.tasks import T5_STYLE, get_task

MODELS = ("tiny-t5+tiny-clip", "tiny-bart+tiny-clip")


def encoded(task, model_name, tokenizer, rows, tmp_path, monkeypatch):
    """``rows`` encoded as a trial encodes them, with their pictures' features."""
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "features"))
    inputs = task.model_inputs({"test": rows}, model=model_name, data_source="fixtures")["test"]
    return encode_split(task, T5_STYLE, tokenizer, rows, task.max_source_length, inputs)


@pytest.mark.parametrize("name", MODELS)
def test_nlvr2_answers_by_the_larger_of_its_two_logits_at_the_first_step(name, tmp_path, monkeypatch):
    """An untrained model generates garbage freely; by the two logits every answer is a label, and the
    label is the one whose first token the model scores higher where the target's text starts."""
    model, tokenizer, _ = load_model(name, seed=0)
    task = get_task("nlvr2")
    rows = encoded(task, name, tokenizer, task.load("fixtures")["test"][:12], tmp_path, monkeypatch)
    predictions = generate(model, tokenizer, task, rows, 4, "cpu")
    assert len(predictions) == 12 and set(predictions) <= {"true", "false"}
    metrics = task.compute_metrics(predictions, [r["example"] for r in rows])
    assert metrics.get("invalid", 0) == 0
    true_id, false_id = tokenizer("true").input_ids[0], tokenizer("false").input_ids[0]
    for row, predicted in zip(rows, predictions, strict=True):
        start = torch.tensor([[model.config.decoder_start_token_id]])
        logits = model(input_ids=torch.tensor([row["input_ids"]]), visual_features=row["visual_features"][None],
                       decoder_input_ids=start).logits[0, 0]
        assert predicted == ("true" if logits[true_id] > logits[false_id] else "false")


def test_captions_are_decoded_by_beam_search_of_five_up_to_forty_tokens(tmp_path, monkeypatch):
    name = MODELS[0]
    model, tokenizer, _ = load_model(name, seed=0)
    task = get_task("coco-caption")
    rows = encoded(task, name, tokenizer, task.load("fixtures")["test"][:3], tmp_path, monkeypatch)
    seen, real = [], model.generate

    def spy(**kwargs):
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    predictions = generate(model, tokenizer, task, rows, 4, "cpu")
    assert len(predictions) == 3
    (call,) = seen
    assert call["num_beams"] == 5 and call["max_length"] == 40 and "max_new_tokens" not in call
    assert call["do_sample"] is False


def test_other_tasks_decode_greedily_up_to_their_target_length():
    assert decoding(get_task("vqa")) == {"do_sample": False, "num_beams": 1,
                                         "max_new_tokens": get_task("vqa").max_target_length}
    assert decoding(get_task("rte")) == {"do_sample": False, "num_beams": 1,
                                         "max_new_tokens": get_task("rte").max_target_length}


class BartLikeTokenizer:
    """BART's shape of encoding: ``<s>`` before a target's text, ``</s>`` after it (ids 0 and 2)."""

    all_special_ids = (0, 1, 2)
    words: ClassVar = {"true": [7, 8], "false": [9], "truth": [7, 10]}

    def __call__(self, text):
        return type("Encoded", (), {"input_ids": [0, *self.words[text], 2]})()


def test_the_comparison_starts_after_the_tokens_a_target_starts_with():
    """VL-BART's targets start ``<s>``: the choice's word is predicted at the second decoder step."""
    assert choice_tokens(BartLikeTokenizer(), ("true", "false")) == ([0], [7, 9])
    with pytest.raises(ValueError, match="distinct"):
        choice_tokens(BartLikeTokenizer(), ("true", "truth"))
