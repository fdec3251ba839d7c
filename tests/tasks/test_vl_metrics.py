"""The vision-and-language metrics on hand-made predictions, against values worked out by hand."""

import math

import pytest

from peftbench.tasks.metrics import accuracy
from peftbench.tasks.vl_metrics import bleu4, cider, normalize_vqa, vqa_accuracy, vqa_gold, vqa_score

# Ten annotators: two said "red", seven "maroon", one "pink".
TEN = ["red", "red", "maroon", "maroon", "maroon", "maroon", "maroon", "maroon", "maroon", "pink"]


def test_vqa_accuracy_averages_over_the_ten_subsets_of_nine_annotators():
    # "red": left out one of its 2 annotators (2 subsets) 1 agrees -> 1/3; else (8 subsets) 2 agree -> 2/3;
    # (2·1/3 + 8·2/3) / 10 = 0.6, where the one-shot min(2/3, 1) would say 0.667
    assert vqa_score("red", TEN) == pytest.approx(0.6)
    assert vqa_score("maroon", TEN) == pytest.approx(1.0)  # 6 or 7 agree in every subset
    assert vqa_score("pink", TEN) == pytest.approx(0.9 * 1 / 3)  # 0 when its annotator is out, else 1/3
    assert vqa_score("blue", TEN) == 0.0
    scores = vqa_accuracy(["red", "maroon", "pink", "blue"], [TEN] * 4)
    assert scores == {"vqa_accuracy": pytest.approx(100 * (0.6 + 1.0 + 0.3 + 0.0) / 4)}


def test_vqa_answers_are_compared_after_the_official_normalisation():
    assert normalize_vqa("Two.") == "2"
    assert normalize_vqa("the dog's") == "dog's"
    assert normalize_vqa("  Dont  ") == "don't"
    three = ["3", "3", "3", "4", "4", "4", "4", "4", "4", "4"]
    assert vqa_score("three", three) == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)


def test_gqa_and_nlvr2_accuracy_is_exact_match():
    assert accuracy(["left", "Right", "true", ""], ["left", "left", "true", "false"]) == {"accuracy": 50.0}


def test_cider_matches_a_worked_example():
    """Two images, one reference each. df: "a" is in both images' references (weight log 2 − log 2 = 0),
    every other n-gram in one (weight log 2). Image A, "a red square" against "a red circle": cosine 1/2
    for 1- and 2-grams ({red, square}·{red, circle}; {a red, red square}·{a red, red circle}), 0 for
    3-grams, 0 for 4-grams (none), equal lengths: 10 × (1/2 + 1/2 + 0 + 0)/4 = 2.5. Image B, an exact
    copy: 10 × (1 + 1 + 1 + 0)/4 = 7.5. CIDEr-D is their mean, 5.0, ×100."""
    got = cider(["a red square", "a blue square"], [["a red circle"], ["a blue square"]])
    assert got == {"cider": pytest.approx(500.0, abs=1e-6)}


def test_cider_ignores_case_and_punctuation_as_the_coco_tokenizer_does():
    plain = cider(["a red square", "a blue square"], [["a red circle"], ["a blue square"]])
    noisy = cider(["A red square.", "a BLUE square!"], [["A red circle."], ["a blue, square"]])
    assert noisy == plain


def test_bleu4_matches_a_worked_example():
    """"a red circle on white" (5 words) against "a red circle on a white background" (7): clipped
    n-gram precisions 5/5, 3/4, 2/3, 1/2; geometric mean 0.25^(1/4); brevity penalty exp(1 − 7/5)."""
    expected = 100 * 0.25 ** 0.25 * math.exp(1 - 7 / 5)
    got = bleu4(["a red circle on white"], [["a red circle on a white background"]])
    assert got == {"bleu4": pytest.approx(expected, rel=1e-6)}
    assert expected == pytest.approx(47.40, abs=0.01)


def test_metrics_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="2 predictions for 1"):
        vqa_accuracy(["a", "b"], [TEN])


def test_vqa_gold_answers_are_punctuation_processed_only_and_only_when_annotators_disagree():
    """VL-Adapter's evaluator (vqa_clip_data.py:615-619): "two" among agreeing annotators stays "two", so a
    prediction "2" (normalised) does not match it; disagreeing answers lose punctuation but keep number words."""
    assert vqa_score("2", ["two"] * 10) == 0.0
    assert vqa_score("two", ["two"] * 10) == 0.0  # the prediction becomes "2"; the gold stays "two"
    assert vqa_score("2", ["2"] * 10) == 1.0
    assert vqa_gold(["yes, sir", "no"]) == ["yes sir", "no"]
    assert vqa_gold(["the dog"] * 3) == ["the dog"] * 3
