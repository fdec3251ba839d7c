"""Metrics on fixed vectors against values worked out by hand, per task, and invalid outputs."""

import pytest

from peftbench.tasks import COUNTS, INVALID, TextFormat, get_task, text_task_names
from peftbench.tasks.metrics import accuracy, em, f1, macro_f1_over, matthews_corr, pearson, spearman
from peftbench.tasks.record import normalize_answer, token_f1

TEXT_TASKS = text_task_names()  # VL tasks: test_vl_tasks.py

DIGITS = TextFormat(labels="digits")


def test_label_metrics_by_hand():
    # TP 2, FP 1, FN 1, TN 1
    refs, preds = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert accuracy(preds, refs) == {"accuracy": pytest.approx(60.0)}
    assert f1(preds, refs) == {"f1": pytest.approx(100 * 4 / 6)}
    # (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 − 1) / √(3·3·2·2) = 1/6
    assert matthews_corr(preds, refs) == {"matthews_corr": pytest.approx(100 / 6)}
    # per-class F1: 0 -> 2/3, 1 -> 2/3, 2 -> 1
    assert macro_f1_over(3)([0, 1, 1, 2], [0, 0, 1, 2]) == {"macro_f1": pytest.approx(100 * 7 / 9)}


def test_macro_f1_averages_over_every_class_present_or_not():
    # CB in the original code: F1 of each of the three classes, one that never occurs scoring 0.
    # Per class: 0 -> 1, 1 -> 1, 2 -> 0 (absent): 2/3 (over the classes present it would be 1).
    assert macro_f1_over(3)([0, 1, 1], [0, 1, 1]) == {"macro_f1": pytest.approx(100 * 2 / 3)}
    assert macro_f1_over(2)([0, 1, 1], [0, 1, 1]) == {"macro_f1": pytest.approx(100.0)}
    assert macro_f1_over(3).name == "macro_f1"


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
    # per class: 0 -> P 1, R 1/2: 2/3; 1 -> 2/3; 2 -> 0 (absent, counted since CB scores all three)
    assert macro_f1_over(3)([0, INVALID, 1, INVALID], [0, 0, 1, 1])["macro_f1"] == pytest.approx(100 * 4 / 9)


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
    # CB without a "neutral" anywhere: per class 0 -> P 1, R 1/2: 2/3; 1 -> P 1/2, R 1: 2/3; 2 -> 0.
    # Over all three classes (2/3 + 2/3 + 0) / 3 = 4/9; over the two present it would be 2/3.
    "cb-two-classes": ([0, 0, 1], ["entailment", "contradiction", "contradiction"],
                       {"macro_f1": 100 * 4 / 9, "accuracy": 100 * 2 / 3}),
    "copa": ([0, 1, 1, 0, 1], ["choice1", "choice2", "choice1", "choice1", "choice2"], {"accuracy": 80.0}),
    "wic": ([0, 1], ["False", "False"], {"accuracy": 50.0}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_task_metrics_on_fixed_predictions(case):
    labels, predictions, expected = CASES[case]
    name = case.split("-")[0]
    got = get_task(name).compute_metrics(predictions, _examples(name, labels))
    assert got == {**{k: pytest.approx(v) for k, v in expected.items()}, "invalid": 0, "examples": len(labels)}


def _multirc_examples() -> list[dict]:
    # question 0 has three answer options, question 1 two
    keys = [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (0, 1, 1)]
    return [{"paragraph": "p", "question": f"q{q}", "answer": f"a{a}", "label": label,
             "idx": {"paragraph": p, "question": q, "answer": a}}
            for (p, q, a), label in zip(keys, [1, 0, 0, 0, 1], strict=True)]


def test_multirc_f1a_and_exact_match():
    got = get_task("multirc").compute_metrics(["True", "False", "False", "True", "True"], _multirc_examples())
    # TP 2, FP 1, FN 0 over all options -> F1a 4/5; question 0 all right, question 1 not -> EM 1/2
    assert got == {"f1a": pytest.approx(80.0), "em": pytest.approx(50.0), "invalid": 0, "examples": 5}


def _record_examples() -> list[dict]:
    return [
        {"passage": "p", "query": "q", "entities": ["Ada", "Bo"], "answers": ["Ada"],
         "idx": {"passage": 0, "query": 0}},
        {"passage": "p", "query": "q", "entities": ["Ben", "Ben Smith"], "answers": ["Ben Smith", "Mr Ben Smith"],
         "idx": {"passage": 1, "query": 0}},
    ]


def test_record_max_over_answers():
    got = get_task("record").compute_metrics(["ada", "Ben"], _record_examples())
    # "ada" matches "Ada" after normalisation; "Ben" vs "Ben Smith": F1 2/3, the best of the two answers
    assert got == {"squad_f1": pytest.approx(100 * (1 + 2 / 3) / 2), "squad_em": pytest.approx(50.0), "invalid": 0,
                   "examples": 2}


def test_record_scores_any_output_squad_style_not_only_passage_entities():
    # "Smith" is none of the passage's entities (this used to be invalid and score 0): against
    # "Ben Smith" P 1, R 1/2 -> 2/3, against "Mr Ben Smith" P 1, R 1/3 -> 1/2; the max is 2/3.
    got = get_task("record").compute_metrics(["Ada", "Smith"], _record_examples())
    assert got == {"squad_f1": pytest.approx(100 * (1 + 2 / 3) / 2), "squad_em": pytest.approx(50.0), "invalid": 0,
                   "examples": 2}
    # normalised ("the", punctuation, case) "the Ada." is "ada" and "Mr. Ben Smith" is "mr ben smith"
    got = get_task("record").compute_metrics(["the Ada.", "Mr. Ben Smith"], _record_examples())
    assert got == {"squad_f1": pytest.approx(100.0), "squad_em": pytest.approx(100.0), "invalid": 0, "examples": 2}


def test_record_counts_outputs_with_no_words_as_invalid():
    # "" and "The ..." normalise to nothing: no answer can match; "Bo" is a wrong entity, valid.
    examples = _record_examples() + [{**_record_examples()[0], "idx": {"passage": 2, "query": 0}}]
    got = get_task("record").compute_metrics(["", "The ...", "Bo"], examples)
    assert got == {"squad_f1": 0.0, "squad_em": 0.0, "invalid": 2, "examples": 3}


# what every metric reads when every output is garbage
ALL_INVALID = {"accuracy": 0.0, "f1": 0.0, "f1a": 0.0, "em": 0.0, "macro_f1": 0.0, "matthews_corr": -100.0,
               "pearson": 0.0, "spearman": 0.0, "squad_f1": 0.0, "squad_em": 0.0}


def _any_examples(name: str) -> list[dict]:
    return {"multirc": _multirc_examples, "record": _record_examples}.get(name, lambda: _examples(
        name, CASES[name][0]))()


# outputs no task can read; ReCoRD scores any text, so its garbage is text without words
GARBAGE = {"record": ["", " the ?"]}


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_invalid_outputs_are_counted_and_wrong(name):
    task = get_task(name)
    examples = _any_examples(name)
    garbage = GARBAGE.get(name, ["<pad>?", ""] + ["not a label"] * (len(examples) - 2))
    got = task.compute_metrics(garbage, examples)
    assert got["invalid"] == len(examples) and got["examples"] == len(examples)
    assert {k: v for k, v in got.items() if k not in COUNTS} == {
        k: pytest.approx(ALL_INVALID[k]) for k in task.metric_names}


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_score_is_the_mean_of_the_metrics_without_the_counts(name):
    task = get_task(name)
    examples = _any_examples(name)
    got = task.compute_metrics([task.target(ex) for ex in examples], examples)
    assert list(got) == [*task.metric_names, "invalid", "examples"]
    assert got["examples"] == len(examples) and got["invalid"] == 0
    mean = sum(got[k] for k in task.metric_names) / len(task.metric_names)
    assert task.score({**got, "invalid": 7, "examples": 1_000}) == pytest.approx(mean)


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_digit_targets_score_like_name_targets_when_read_as_digits(name):
    task = get_task(name)
    examples = _any_examples(name)
    names, digits = task.compute_metrics([task.target(ex) for ex in examples], examples), task.compute_metrics(
        [task.target(ex, DIGITS) for ex in examples], examples, DIGITS)
    assert digits == names and digits["invalid"] == 0


def test_label_parsing_is_strict_but_ignores_surrounding_space():
    task = get_task("boolq")
    assert task.parse(" True\n") == 1
    assert task.parse("true") == INVALID and task.parse("True False") == INVALID


def test_digit_labels_are_read_only_as_digits_and_names_only_as_names():
    cb = get_task("cb")
    assert [cb.parse(t, DIGITS) for t in ("0", " 2\n", "neutral", "3", "02")] == [0, 2, INVALID, INVALID, INVALID]
    assert [cb.parse(t) for t in ("neutral", "2")] == [2, INVALID]
    # the same outputs read in both formats: 2 of 3 right as digits, all invalid as names
    examples = _examples("cb", [0, 1, 2])
    assert cb.compute_metrics(["0", "1", "1"], examples, DIGITS)["accuracy"] == pytest.approx(100 * 2 / 3)
    assert cb.compute_metrics(["0", "1", "1"], examples)["invalid"] == 3
    # STS-B's digits are its numbers: "2.6" is class 13 either way
    stsb = get_task("stsb")
    assert stsb.parse("2.6", DIGITS) == stsb.parse("2.6") == 13 and stsb.parse("13", DIGITS) == INVALID
