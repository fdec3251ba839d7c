"""Metrics on fixed vectors against values worked out by hand, per task, and invalid outputs."""

import pytest

from tasks import INVALID, get_task, task_names
from tasks.metrics import accuracy, em, f1, macro_f1, matthews_corr, pearson, spearman
from tasks.record import normalize_answer, token_f1


def test_label_metrics_by_hand():
    # TP 2, FP 1, FN 1, TN 1
    refs, preds = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert accuracy(preds, refs) == {"accuracy": pytest.approx(60.0)}
    assert f1(preds, refs) == {"f1": pytest.approx(100 * 4 / 6)}
    # (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 − 1) / √(3·3·2·2) = 1/6
    assert matthews_corr(preds, refs) == {"matthews_corr": pytest.approx(100 / 6)}
    # per-class F1: 0 -> 2/3, 1 -> 2/3, 2 -> 1
    assert macro_f1([0, 1, 1, 2], [0, 0, 1, 2]) == {"macro_f1": pytest.approx(100 * 7 / 9)}


def test_correlations_by_hand():
    x, y = [0, 5, 13, 25], [0, 6, 12, 25]
    # Σdxdy / √(Σdx² Σdy²) = 348.75 / √(356.75 · 342.75)
    assert pearson(y, x)["pearson"] == pytest.approx(100 * 348.75 / (356.75 * 342.75) ** 0.5)
    assert spearman(y, x)["spearman"] == pytest.approx(100.0)  # the same order
    assert spearman([3, 2, 1, 0], x)["spearman"] == pytest.approx(-100.0)
    assert pearson([4, 4, 4, 4], x)["pearson"] == 0.0  # constant predictions: no correlation, not nan


def test_grouped_exact_match_needs_every_answer_of_a_question():
    assert em([1, 0, 0, 1, 1], [1, 0, 0, 0, 1], ["q1", "q1", "q1", "q2", "q2"]) == {"em": 50.0}


def test_record_answer_matching():
    assert normalize_answer("The  U.S. Navy!") == "us navy"
    assert token_f1("Ben", "Ben Smith") == pytest.approx(2 / 3)  # precision 1, recall 1/2


def test_invalid_predictions_are_wrong_in_every_label_metric():
    refs = [1, 0, 1, 0]
    preds = [INVALID] * 4
    assert accuracy(preds, refs)["accuracy"] == 0.0
    assert f1(preds, refs)["f1"] == 0.0
    assert matthews_corr(preds, refs)["matthews_corr"] == pytest.approx(-100.0)  # as if every label flipped
    assert macro_f1([0, INVALID, 1, INVALID], [0, 0, 1, 1])["macro_f1"] == pytest.approx(100 * 2 / 3)


def _examples(name: str, labels: list) -> list[dict]:
    """Examples of ``name`` differing only in label, in the hub's schema (the fixtures' first row)."""
    row = get_task(name).load_fixtures()["train"][0]
    return [{**row, "label": label, "idx": i} for i, label in enumerate(labels)]


# task -> (reference labels, predicted texts, expected metrics), worked out by hand
CASES = {
    "cola": ([1, 1, 0, 0], ["acceptable", "unacceptable", "unacceptable", "unacceptable"],
             {"matthews_corr": 100 * 2 / 12 ** 0.5}),  # TP 1, FN 1, TN 2: 2 / √(1·2·2·3)
    "sst2": ([1, 0, 1], ["positive", "negative", "negative"], {"accuracy": 100 * 2 / 3}),
    "mrpc": ([1, 1, 0, 0, 1], ["equivalent", "not_equivalent", "not_equivalent", "equivalent", "equivalent"],
             {"f1": 100 * 4 / 6, "accuracy": 60.0}),
    "qqp": ([1, 0, 0, 0], ["duplicate", "duplicate", "not_duplicate", "not_duplicate"],
            {"f1": 100 * 2 / 3, "accuracy": 75.0}),  # TP 1, FP 1, FN 0
    "stsb": ([0.0, 1.0, 2.53, 5.0], ["0.0", "1.2", "2.4", "5.0"],  # fifths 0, 5, 13, 25 vs 0, 6, 12, 25
             {"pearson": 100 * 348.75 / (356.75 * 342.75) ** 0.5, "spearman": 100.0}),
    "mnli": ([0, 1, 2, 2], ["entailment", "neutral", "neutral", "contradiction"], {"accuracy": 75.0}),
    "qnli": ([0, 1], ["entailment", "entailment"], {"accuracy": 50.0}),
    "rte": ([0, 1, 1, 0], ["entailment", "not_entailment", "entailment", "entailment"], {"accuracy": 75.0}),
    "boolq": ([1, 0, 1, 1], ["True", "False", "False", "True"], {"accuracy": 75.0}),
    "cb": ([0, 0, 1, 2], ["entailment", "contradiction", "contradiction", "neutral"],
           {"macro_f1": 100 * 7 / 9, "accuracy": 75.0}),
    "copa": ([0, 1, 1, 0, 1], ["choice1", "choice2", "choice1", "choice1", "choice2"], {"accuracy": 80.0}),
    "wic": ([0, 1], ["False", "False"], {"accuracy": 50.0}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_task_metrics_on_fixed_predictions(name):
    labels, predictions, expected = CASES[name]
    got = get_task(name).evaluate(predictions, _examples(name, labels))
    assert got == {**{k: pytest.approx(v) for k, v in expected.items()}, "invalid": 0}


def _multirc_examples() -> list[dict]:
    # question 0 has three answer options, question 1 two
    keys = [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (0, 1, 1)]
    return [{"paragraph": "p", "question": f"q{q}", "answer": f"a{a}", "label": label,
             "idx": {"paragraph": p, "question": q, "answer": a}}
            for (p, q, a), label in zip(keys, [1, 0, 0, 0, 1])]


def test_multirc_f1a_and_exact_match():
    got = get_task("multirc").evaluate(["True", "False", "False", "True", "True"], _multirc_examples())
    # TP 2, FP 1, FN 0 over all options -> F1a 4/5; question 0 all right, question 1 not -> EM 1/2
    assert got == {"f1a": pytest.approx(80.0), "em": pytest.approx(50.0), "invalid": 0}


def _record_examples() -> list[dict]:
    return [
        {"passage": "p", "query": "q", "entities": ["Ada", "Bo"], "answers": ["Ada"], "idx": {"passage": 0, "query": 0}},
        {"passage": "p", "query": "q", "entities": ["Ben", "Ben Smith"], "answers": ["Ben Smith", "Mr Ben Smith"],
         "idx": {"passage": 1, "query": 0}},
    ]


def test_record_max_over_answers():
    got = get_task("record").evaluate(["ada", "Ben"], _record_examples())
    # "ada" matches "Ada" after normalisation; "Ben" vs "Ben Smith": F1 2/3, the best of the two answers
    assert got == {"f1": pytest.approx(100 * (1 + 2 / 3) / 2), "em": pytest.approx(50.0), "invalid": 0}


def test_record_output_that_is_no_entity_is_invalid_and_wrong():
    # "Smith" overlaps the answer but is none of the passage's entities
    got = get_task("record").evaluate(["Ada", "Smith"], _record_examples())
    assert got == {"f1": pytest.approx(50.0), "em": pytest.approx(50.0), "invalid": 1}


# what every metric reads when every output is garbage
ALL_INVALID = {"accuracy": 0.0, "f1": 0.0, "f1a": 0.0, "em": 0.0, "macro_f1": 0.0, "matthews_corr": -100.0,
               "pearson": 0.0, "spearman": 0.0}


def _any_examples(name: str) -> list[dict]:
    return {"multirc": _multirc_examples, "record": _record_examples}.get(name, lambda: _examples(
        name, CASES[name][0]))()


@pytest.mark.parametrize("name", task_names())
def test_invalid_outputs_are_counted_and_wrong(name):
    task = get_task(name)
    examples = _any_examples(name)
    got = task.evaluate(["<pad>?", ""] + ["not a label"] * (len(examples) - 2), examples)
    assert got["invalid"] == len(examples)
    assert {k: v for k, v in got.items() if k != "invalid"} == {
        k: pytest.approx(ALL_INVALID[k]) for k in task.metric_names}


@pytest.mark.parametrize("name", task_names())
def test_score_is_the_mean_of_the_metrics_without_invalid(name):
    task = get_task(name)
    examples = _any_examples(name)
    got = task.evaluate([task.target(ex) for ex in examples], examples)
    assert list(got) == [*task.metric_names, "invalid"]
    assert task.score({**got, "invalid": 7}) == pytest.approx(sum(got[k] for k in task.metric_names) / len(task.metric_names))


def test_label_parsing_is_strict_but_ignores_surrounding_space():
    task = get_task("boolq")
    assert task.parse(" True\n") == 1
    assert task.parse("true") == INVALID and task.parse("True False") == INVALID
