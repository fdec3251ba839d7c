"""Every task's source and target, as literal before/after examples: in the default (T5) format,
and in the original code's (task prefix, label digits)."""

import pytest

from peftbench.tasks import TextFormat, get_task, text_task_names

TEXT_TASKS = text_task_names()  # VL tasks: test_vl_tasks.py

ORIGINAL = TextFormat(prefix=True, labels="digits")  # as the original code feeds full FT, BitFit, …

# task -> (an example in the hub's schema, its source, its target)
EXAMPLES = {
    "cola": ({"sentence": "The book was read by Sam.", "label": 1, "idx": 0},
             "sentence: The book was read by Sam.", "acceptable"),
    "sst2": ({"sentence": "a gripping film .", "label": 1, "idx": 0},
             "sentence: a gripping film .", "positive"),
    "mrpc": ({"sentence1": "He left at noon.", "sentence2": "At noon he left.", "label": 1, "idx": 0},
             "sentence1: He left at noon. sentence2: At noon he left.", "equivalent"),
    "qqp": ({"question1": "How do I cook rice?", "question2": "What is a good way to cook rice?", "label": 0,
             "idx": 0},
            "question1: How do I cook rice? question2: What is a good way to cook rice?", "not_duplicate"),
    "stsb": ({"sentence1": "A man plays a flute.", "sentence2": "A man plays music.", "label": 2.53, "idx": 0},
             "sentence1: A man plays a flute. sentence2: A man plays music.", "2.6"),
    "mnli": ({"premise": "Kim walked home.", "hypothesis": "Kim drove home.", "label": 2, "idx": 0},
             "premise: Kim walked home. hypothesis: Kim drove home.", "contradiction"),
    "qnli": ({"question": "Who wrote it?", "sentence": "It was written by Ada.", "label": 0, "idx": 0},
             "question: Who wrote it? sentence: It was written by Ada.", "entailment"),
    "rte": ({"sentence1": "Ada lives in Rome.", "sentence2": "Ada lives in Italy.", "label": 0, "idx": 0},
            "sentence1: Ada lives in Rome. sentence2: Ada lives in Italy.", "entailment"),
    "boolq": ({"question": "is rome in italy", "passage": "Rome is the capital of Italy.", "idx": 0, "label": 1},
              "question: is rome in italy passage: Rome is the capital of Italy.", "True"),
    "cb": ({"premise": "I doubt that it rained.", "hypothesis": "It rained.", "idx": 0, "label": 2},
           "premise: I doubt that it rained. hypothesis: It rained.", "neutral"),
    "copa": ({"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause",
              "idx": 0, "label": 0},
             "premise: The man fell. choice1: He slipped. choice2: He sang.", "choice1"),
    "multirc": ({"paragraph": "Ada grew up in Rome.", "question": "Where did Ada grow up?", "answer": "Rome",
                 "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1},
                "question: Where did Ada grow up? answer: Rome paragraph: Ada grew up in Rome.", "True"),
    "record": ({"passage": "Ada met Bo in Rome.\n@highlight\nBo left early\n@highlight\nRome was hot",
                "query": "@placeholder greeted Bo.", "entities": ["Ada", "Bo", "Rome", "Bo"],
                "entity_spans": {"text": ["Ada", "Bo", "Rome", "Bo"], "start": [0, 8, 14, 20],
                                 "end": [2, 9, 17, 21]},
                "answers": ["Ada"], "idx": {"passage": 0, "query": 0}},
               ("record query: @placeholder greeted Bo. entities: Ada, Bo, Rome "
                "passage: Ada met Bo in Rome. Bo left early. Rome was hot"), "Ada"),
    "wic": ({"word": "bank", "sentence1": "The bank closed.", "sentence2": "The river bank flooded.",
             "start1": 4, "start2": 10, "end1": 8, "end2": 14, "idx": 0, "label": 0},
            "sentence1: The bank closed. sentence2: The river bank flooded. word: bank", "False"),
}


# task -> (source, target) of EXAMPLES[task] in the original code's format: the task's name in front
# (superglue-<name> for SuperGLUE, as its task names), the label index as text, STS-B's number as is.
ORIGINAL_EXAMPLES = {
    "cola": ("cola sentence: The book was read by Sam.", "1"),
    "sst2": ("sst2 sentence: a gripping film .", "1"),
    "mrpc": ("mrpc sentence1: He left at noon. sentence2: At noon he left.", "1"),
    "qqp": ("qqp question1: How do I cook rice? question2: What is a good way to cook rice?", "0"),
    "stsb": ("stsb sentence1: A man plays a flute. sentence2: A man plays music.", "2.6"),
    "mnli": ("mnli premise: Kim walked home. hypothesis: Kim drove home.", "2"),
    "qnli": ("qnli question: Who wrote it? sentence: It was written by Ada.", "0"),
    "rte": ("rte sentence1: Ada lives in Rome. sentence2: Ada lives in Italy.", "0"),
    "boolq": ("superglue-boolq question: is rome in italy passage: Rome is the capital of Italy.", "1"),
    "cb": ("superglue-cb premise: I doubt that it rained. hypothesis: It rained.", "2"),
    "copa": ("superglue-copa premise: The man fell. choice1: He slipped. choice2: He sang.", "0"),
    "multirc": ("superglue-multirc question: Where did Ada grow up? answer: Rome paragraph: Ada grew up in Rome.", "1"),
    "record": (("superglue-record record query: @placeholder greeted Bo. entities: Ada, Bo, Rome "
                "passage: Ada met Bo in Rome. Bo left early. Rome was hot"), "Ada"),
    "wic": ("superglue-wic sentence1: The bank closed. sentence2: The river bank flooded. word: bank", "0"),
}


def test_every_task_has_a_literal_example():
    assert sorted(EXAMPLES) == sorted(ORIGINAL_EXAMPLES) == sorted(TEXT_TASKS)


@pytest.mark.parametrize("name", sorted(ORIGINAL_EXAMPLES))
def test_source_and_target_in_the_original_codes_format(name):
    example, t5_source, _ = EXAMPLES[name]
    source, target = ORIGINAL_EXAMPLES[name]
    task = get_task(name)
    assert task.source(example, ORIGINAL) == source
    assert task.target(example, ORIGINAL) == target
    # the two settings apart: the prefix alone, the digits alone
    assert task.source(example, TextFormat(prefix=False, labels="digits")) == t5_source
    assert task.target(example, TextFormat(prefix=True, labels="names")) == EXAMPLES[name][2]


def test_multirc_markup_is_removed_from_question_answer_and_paragraph():
    example = {"paragraph": "Sent 1: Ada <b>won</b>.<br>Sent 2: Bo lost.<br><br>", "question": "Who <b>won</b>?",
               "answer": "<b>Ada</b>", "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1}
    # <br> becomes a space (kept as is, doubled spaces too), <b> and </b> vanish
    assert get_task("multirc").source(example) == (
        "question: Who won? answer: Ada paragraph: Sent 1: Ada won. Sent 2: Bo lost.  ")


def test_text_format_rejects_unknown_settings():
    with pytest.raises(ValueError, match="labels must be one of names, digits"):
        TextFormat(labels="ids")
    with pytest.raises(TypeError, match="prefix must be True or False"):
        TextFormat(prefix="auto")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_source_and_target(name):
    example, source, target = EXAMPLES[name]
    task = get_task(name)
    assert task.source(example) == source
    assert task.target(example) == target


@pytest.mark.parametrize(("score", "text"), [
    (0.0, "0.0"), (2.53, "2.6"),  # to the nearest 0.1 this would be "2.5"
    (2.69, "2.6"), (3.7999999523, "3.8"), (4.9, "5.0"), (5.0, "5.0"), (0.5, "0.6"),  # a tie goes up
])
def test_stsb_rounds_to_the_nearest_fifth(score, text):
    assert get_task("stsb").target({"sentence1": "a", "sentence2": "b", "label": score, "idx": 0}) == text


def test_stsb_has_a_class_per_fifth_from_0_to_5():
    texts = get_task("stsb").label_texts
    assert len(texts) == 26 and texts[:3] == ("0.0", "0.2", "0.4") and texts[-1] == "5.0"


@pytest.mark.parametrize(("name", "length"), [("sst2", 128), ("mnli", 128), ("cb", 256), ("multirc", 256),
                                              ("record", 512)])
def test_max_source_lengths_are_the_papers(name, length):
    assert get_task(name).max_source_length == length


def test_max_target_length_fits_the_longest_label_in_bytes():
    assert get_task("mrpc").max_target_length == len("not_equivalent") + 1
    assert get_task("stsb").max_target_length == len("0.0") + 1
    assert get_task("record").max_target_length >= 32  # entities are names and short phrases
