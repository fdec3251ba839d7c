"""The pretraining text of the tiny T5: sentences from a small grammar of its own, drawn by a seeded
generator, turned into (source, target) pairs by T5's span corruption and a few word-answer tasks.

Nothing here is read from a file or from the task fixtures. The word lists below were written for
this corpus and share no content word with the fixtures (tasks/fixtures/build.py): no film words,
no sentiment cue (great, awful, ...), no person or city names, no days, objects or skills. What the
two do share is English function words (the, a, is, was, in, on, ...), digits, and the label words
listed in ``LABEL_WORDS``, which appear here as ordinary words in ordinary sentences (a lab result
is positive or negative) so that the decoder can spell them, as a real pretrained T5 can; no
sentence here pairs them with a fixture's input. models/tinyt5/README.md says why this is not leakage and
tests/models/test_corpus.py checks it.

Two kinds of examples, mixed by ``examples``:

- span corruption (Raffel et al., 2020, §3.1.4): about 15% of a paragraph's words, in spans of
  about 3 words, replaced by sentinels; the target lists the dropped spans after their sentinels.
- word-answer tasks, each ``<task> sentence: <text>`` → one short answer: the category of the
  sentence's thing, a word of the sentence with a given role, yes/no, a count as a digit, whether
  two sentences say the same. They teach the model to read its input and answer with one word from
  a small set, which is what the benchmark's classification tasks ask of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

# The thing a sentence is about, by category; the category names are the answers of "kind".
THINGS = {
    "animal": ["fox", "owl", "goat", "horse", "rabbit", "otter", "sparrow", "tiger", "whale", "beetle",
               "donkey", "heron", "lizard", "mole", "pigeon", "salmon", "wolf", "zebra", "badger", "moose"],
    "food": ["bread", "cheese", "apple", "soup", "rice", "honey", "pepper", "onion", "butter", "plum",
             "bean", "carrot", "lemon", "noodle", "olive", "pear", "walnut", "yogurt", "melon", "radish"],
    "tool": ["hammer", "shovel", "needle", "ladder", "rope", "mallet", "wrench", "bucket", "brush", "drill",
             "chisel", "axe", "rake", "pliers", "funnel", "spade", "trowel", "anvil", "sieve", "ruler"],
    "plant": ["oak", "fern", "tulip", "moss", "cactus", "maple", "willow", "rose", "ivy", "clover",
              "bamboo", "pine", "daisy", "thistle", "birch", "lily", "reed", "hazel", "poppy", "cedar"],
    "vehicle": ["truck", "boat", "wagon", "train", "canoe", "tractor", "bus", "sled", "ferry", "scooter",
                "van", "barge", "tram", "yacht", "cart", "raft", "taxi", "jeep", "glider", "kayak"],
}
PLACES = ["creek", "valley", "harbor", "market", "garden", "forest", "village", "school", "bridge",
          "island", "meadow", "station", "kitchen", "barn", "library", "tower", "beach", "field", "den", "mill"]
WORKERS = ["farmer", "baker", "sailor", "doctor", "nurse", "pilot", "miner", "tailor", "clerk", "judge",
           "cook", "guard", "potter", "weaver", "porter", "ranger", "singer", "keeper", "hunter", "smith"]
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "brown", "gray", "white", "black"]
SIZES = ["big", "small", "tiny", "huge", "tall", "short", "wide", "narrow", "long", "round"]
FEELS = ["soft", "firm", "smooth", "rough", "warm", "cold", "damp", "dry", "heavy", "light"]
ACTS = ["carried", "found", "painted", "rinsed", "lifted", "shifted", "tossed", "pulled", "hid", "fixed",
        "sold", "counted", "watched", "followed", "fed", "weighed", "wrapped", "cleaned", "measured", "checked"]
RESTS = ["slept", "waited", "rested", "stayed", "stood", "perched", "hid", "shone", "floated", "turned"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# The fixtures' label words that this corpus uses as plain words (named in the README and checked by
# the corpus test): results of a test, answers of a quiz, kinds of charge, sameness of two amounts.
RESULTS = ["positive", "negative", "neutral", "unclear"]
VERDICTS = ["true", "false", "correct", "wrong"]
SAMENESS = ["equivalent", "different", "equal", "unequal"]
LABEL_WORDS = ("positive", "negative", "neutral", "equivalent")
# The only other words the corpus and the fixtures' held-out examples have in common: English
# function words and the field names of the "<task> sentence: ..." format (checked by the test).
FUNCTION_WORDS = frozenset({"a", "and", "at", "in", "is", "it", "that", "the", "was", "sentence", "sentence1",
                            "sentence2"})

SENTINELS = 100  # sentinel ids a span-corrupted source may use: <extra_id_0> ... (ByT5 has 125)


def thing(rng: random.Random) -> tuple[str, str]:
    """A (category, word) pair, the category first drawn uniformly so each is as frequent."""
    kind = rng.choice(list(THINGS))
    return kind, rng.choice(THINGS[kind])


def clause(rng: random.Random, word: str) -> str:
    """One sentence about ``word`` from the grammar's templates; every content word drawn here."""
    place, worker, n = rng.choice(PLACES), rng.choice(WORKERS), rng.randrange(2, 10)
    templates = [
        lambda: f"the {rng.choice(SIZES)} {word} {rng.choice(RESTS)} near the {place} .",
        lambda: f"the {worker} {rng.choice(ACTS)} a {rng.choice(COLORS)} {word} at the {place} .",
        lambda: f"a {rng.choice(FEELS)} {word} was left in the {place} by the {worker} .",
        lambda: f"{n} {word}s {rng.choice(RESTS)} by the {place} and {n - 1} stayed .",
        lambda: f"the {worker} said the {word} test was {rng.choice(RESULTS)} .",
        lambda: f"the {worker} said it is {rng.choice(VERDICTS)} that the {word} was {rng.choice(COLORS)} .",
        lambda: f"the {word} and the {rng.choice(PLACES)} were {rng.choice(SAMENESS)} in size .",
        lambda: f"{NUMBER_WORDS[n]} {rng.choice(COLORS)} {word}s were {rng.choice(ACTS)} by the {worker} .",
    ]
    return rng.choice(templates)()


def paragraph(rng: random.Random) -> str:
    """Two or three sentences, each about a thing of its own."""
    return " ".join(clause(rng, thing(rng)[1]) for _ in range(rng.randrange(2, 4)))


def span_corruption(rng: random.Random, text: str, *, density: float = 0.15, mean_span: int = 3) -> tuple[str, str]:
    """T5's objective on words: spans replaced by sentinels in the source, listed in the target."""
    words = text.split()
    starts = sorted(rng.sample(range(len(words)), max(1, round(len(words) * density / mean_span))))
    source, target, i, k = [], [], 0, 0
    for start in starts:
        if start < i:  # inside the previous span: skipped, so spans never merge or reorder
            continue
        length = min(3 * mean_span, max(1, round(rng.expovariate(1 / mean_span))))  # no runaway spans
        end = min(len(words), start + length)
        source += [*words[i:start], f"<extra_id_{k}>"]
        target += [f"<extra_id_{k}>", *words[start:end]]
        i, k = end, k + 1
    source += words[i:]
    return " ".join(source), " ".join([*target, f"<extra_id_{k}>"])


def kind_task(rng: random.Random) -> tuple[str, str]:
    kind, word = thing(rng)
    return f"kind sentence: {clause(rng, word)}", kind


def is_it_task(rng: random.Random) -> tuple[str, str]:
    kind, word = thing(rng)
    asked = rng.choice(list(THINGS))
    return f"is it {asked} sentence: {clause(rng, word)}", "yes" if asked == kind else "no"


def color_task(rng: random.Random) -> tuple[str, str]:
    color, word = rng.choice(COLORS), thing(rng)[1]
    return f"color sentence: the {rng.choice(WORKERS)} {rng.choice(ACTS)} a {color} {word} .", color


def result_task(rng: random.Random) -> tuple[str, str]:
    result, word = rng.choice(RESULTS), thing(rng)[1]
    return f"result sentence: the {rng.choice(WORKERS)} said the {word} test was {result} .", result


def count_task(rng: random.Random) -> tuple[str, str]:
    n, word = rng.randrange(10), thing(rng)[1]
    return f"count sentence: the {rng.choice(WORKERS)} spotted {NUMBER_WORDS[n]} {word}s .", str(n)


def same_task(rng: random.Random) -> tuple[str, str]:
    a = clause(rng, thing(rng)[1])
    b = a if rng.random() < 0.5 else clause(rng, thing(rng)[1])
    return f"same sentence1: {a} sentence2: {b}", "yes" if a == b else "no"


WORD_TASKS: list[Callable[[random.Random], tuple[str, str]]] = [
    kind_task, is_it_task, color_task, result_task, count_task, same_task,
]


def example(rng: random.Random, *, span_share: float = 0.5) -> tuple[str, str]:
    """One (source, target) pair: span corruption with probability ``span_share``, else a word task."""
    if rng.random() < span_share:
        return span_corruption(rng, paragraph(rng))
    return rng.choice(WORD_TASKS)(rng)


def examples(count: int, *, seed: int = 0, span_share: float = 0.5) -> Iterator[tuple[str, str]]:
    """The first ``count`` pairs of the corpus of ``seed``: the same pairs on every call and machine."""
    rng = random.Random(seed)
    for _ in range(count):
        yield example(rng, span_share=span_share)
