"""The pretraining corpus holds no example of any task's validation or test fixture."""

from __future__ import annotations

import re

import pytest

from peftbench.models.tinyt5 import corpus, pretrain
from peftbench.tasks import get_task, text_task_names

WORD = re.compile(r"\w+")


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    """Every (source, target) pair the committed weights were pretrained on."""
    return list(corpus.examples(pretrain.STEPS * pretrain.BATCH_SIZE, seed=pretrain.SEED))


@pytest.fixture(scope="module")
def corpus_words(pairs) -> set[str]:
    return {w for source, target in pairs for w in WORD.findall(f"{source} {target}")}


def held_out_sources() -> list[str]:
    """The source text of every validation and test example of every text task's fixture (a VL
    task's answer is in its picture, not its words)."""
    out = []
    for name in text_task_names():
        task = get_task(name)
        splits = task.load("fixtures")
        out += [task.source(ex) for split in ("validation", "test") for ex in splits[split]]
    return out


def test_every_held_out_example_has_an_inner_word_the_corpus_never_writes(corpus_words):
    # A text occurring inside the corpus has each of its inner words (not the first or last, which
    # could be cut from longer words) as a whole word of the corpus; one missing word rules it out.
    sources = held_out_sources()
    assert len(sources) > 500
    inside = [s for s in sources if all(w in corpus_words for w in WORD.findall(s)[1:-1])]
    assert inside == []


def test_no_sst2_held_out_sentence_is_a_substring_of_the_corpus(pairs):
    task = get_task("sst2")
    splits = task.load("fixtures")
    text = "\n".join(f"{s}\n{t}" for s, t in pairs)
    sentences = [ex["sentence"] for split in ("validation", "test") for ex in splits[split]]
    assert len(sentences) == 120
    assert [s for s in sentences if s in text] == []


def test_fixture_and_corpus_share_only_function_words_and_the_named_label_words(corpus_words):
    fixture_words = {w for s in held_out_sources() for w in WORD.findall(s)}
    labels = {t for name in text_task_names() for t in getattr(get_task(name), "label_texts", ())}
    shared = corpus_words & fixture_words
    assert shared - corpus.FUNCTION_WORDS == set()
    assert corpus_words & labels == set(corpus.LABEL_WORDS)
