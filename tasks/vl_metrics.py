"""Metrics of the vision-and-language tasks on generated text, ×100, named as VL-Adapter's tables.

- ``vqa_accuracy``: the official VQA accuracy (Antol et al., 2015; the VQA evaluation code): a
  prediction's accuracy against the 10 annotators' answers is min(#annotators who gave it / 3, 1),
  averaged over the 10 subsets of 9 annotators (each annotator left out once); predictions are
  normalised as the official code does (punctuation, number words, articles, contractions), the
  annotators' answers only by punctuation and only when they disagree (``vqa_gold``), as the code does.
- ``accuracy`` (GQA, NLVR2): the registered ``tasks.metrics.accuracy`` on answers normalised as above
  (the task normalises, ``VisionTask.compute_metrics``).
- ``cider`` (CIDEr-D) and ``bleu4``: the COCO caption evaluation's scorers (pycocoevalcap), on text
  tokenised here as its Java PTB tokenizer and punctuation filter leave captions (``caption_tokens``), so
  no Java is needed; the rare forms where they part are in methods/FIDELITY.md.
- ``meteor`` and ``spice``: the COCO evaluation's Java scorers (``tasks.caption_java``) on the same tokens. Where
  one cannot run (no Java, a jar missing) its value is NaN and the results say why under ``not_computed``
  (``{"meteor": "java not found"}``), in one line of the trial's log; the trial goes on.
"""

from __future__ import annotations

import logging
import math
import re

from peftbench.tasks import caption_java
from peftbench.tasks.metrics import NOT_COMPUTED, TEXTS, check_lengths, register_metric

PAPER_NAMES = {"vqa_accuracy": "VQA accuracy", "accuracy": "accuracy", "cider": "CIDEr", "bleu4": "BLEU-4",
               "rouge_l": "ROUGE-L", "meteor": "METEOR", "spice": "SPICE"}
JAVA_METRICS = ("meteor", "spice")  # one JVM each per evaluation: left out of validations (VisionTask.evaluated_on)

# The official evaluation's normalisation tables (vqaEval.py), in part: contractions most common in answers.
_CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                 "wont": "won't", "didnt": "didn't", "wasnt": "wasn't", "werent": "weren't", "hasnt": "hasn't",
                 "havent": "haven't", "shouldnt": "shouldn't", "couldnt": "couldn't", "wouldnt": "wouldn't",
                 "im": "i'm", "ive": "i've", "youre": "you're", "theyre": "they're", "thats": "that's",
                 "whats": "what's", "its": "it's", "lets": "let's"}
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                "?", "!"]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def process_punctuation(text: str) -> str:
    """The official evaluation's processPunctuation: punctuation dropped or spaced, periods not in numbers dropped."""
    for p in _PUNCTUATION:
        if (p + " " in text or " " + p in text) or re.search(_COMMA_STRIP, text) is not None:
            text = text.replace(p, "")
        else:
            text = text.replace(p, " ")
    return _PERIOD_STRIP.sub("", text)


def normalize_vqa(answer: str) -> str:
    """A prediction as the official VQA evaluation compares it (processPunctuation, processDigitArticle)."""
    text = process_punctuation(answer.replace("\n", " ").replace("\t", " ").strip().lower())
    words = [_NUMBERS.get(w, w) for w in text.split() if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def vqa_gold(answers: list[str]) -> list[str]:
    """The annotators' answers as VL-Adapter's evaluator compares them (``vqa_clip_data.py:615-619``, the official
    code's): punctuation-processed only, and only when the annotators disagree; never digit/article-normalised."""
    return [process_punctuation(a) for a in answers] if len(set(answers)) > 1 else list(answers)


def vqa_score(prediction: str, answers: list[str]) -> float:
    """One prediction's VQA accuracy in [0, 1] against its annotators' answers (10 in VQAv2)."""
    if not answers:
        raise ValueError("a VQA question without annotator answers")
    pred, gold = normalize_vqa(prediction), vqa_gold(answers)
    if len(gold) == 1:
        return float(pred == gold[0])
    scores = []
    for left_out in range(len(gold)):
        agreeing = sum(g == pred for i, g in enumerate(gold) if i != left_out)
        scores.append(min(agreeing / 3, 1.0))
    return sum(scores) / len(scores)


@register_metric(higher_is_better=True, inputs="generated answers and each question's annotators' answers")
def vqa_accuracy(predictions: list[str], answers: list[list[str]]) -> dict[str, float]:
    check_lengths(predictions, answers)
    return {"vqa_accuracy": 100.0 * sum(map(vqa_score, predictions, answers)) / len(predictions)}


# Stanford's PTB tokenizer (3.4.1, ``-preserveLines -lowerCase``, as the COCO evaluation runs it) on what captions
# hold: brackets become -lrb- … (lower-cased past the evaluation's punctuation list, so they stay), clitics split
# off (``man 's``, ``does n't``, ``ca n't``), inner hyphens, slashes, apostrophes and number separators kept
# (``t-shirt``, ``and/or``, ``o'clock``, ``3.5``, ``10:30``), initials keep their periods (``u.s.``), every other
# symbol its own token. The evaluation then drops the tokens in _PTB_DROPPED.
_BRACKETS = {"(": " -lrb- ", ")": " -rrb- ", "[": " -lsb- ", "]": " -rsb- ", "{": " -lcb- ", "}": " -rcb- "}
_QUOTES = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}
_SPLIT_WORDS = {"cannot": "can not", "gonna": "gon na", "gotta": "got ta", "wanna": "wan na"}
_CLITIC = re.compile(r"(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PTB_TOKEN = re.compile(r"-[lr][rsc]b-|n't|'(?:s|re|ve|ll|d|m)\b|(?:[^\W\d_]\.){2,}|\d+(?:[.,:/]\d+)+"
                        r"|\w+(?:[-'/]\w+)*|\.\.\.|--|\S")
_PTB_DROPPED = {"''", "'", "``", "`", '"', ".", "?", "!", ",", ":", "-", "--", "...", ";"}


def caption_tokens(text: str) -> str:
    """A caption as the COCO evaluation's PTB tokenizer and punctuation filter leave it: ``A man's T-shirt (red).``
    -> ``a man 's t-shirt -lrb- red -rrb-`` (tests/tasks/test_vl_metrics.py compares it with the jar)."""
    text = text.lower()
    for table in (_QUOTES, _BRACKETS):
        for old, new in table.items():
            text = text.replace(old, new)
    text = _CLITIC.sub(r"\1 \2", text)
    words = [_SPLIT_WORDS.get(w, w) for w in _PTB_TOKEN.findall(text) if w not in _PTB_DROPPED]
    return " ".join(words)


def _scorer_inputs(predictions: list[str], references: list[list[str]]) -> tuple[dict, dict]:
    check_lengths(predictions, references)
    res = {i: [caption_tokens(p)] for i, p in enumerate(predictions)}
    gts = {i: [caption_tokens(r) for r in refs] for i, refs in enumerate(references)}
    return gts, res


@register_metric(higher_is_better=True, inputs=TEXTS)
def cider(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """CIDEr-D (Vedantam et al., 2015) over the split, the COCO evaluation's ``Cider`` scorer; its
    document frequencies come from the split's references, as in the COCO evaluation."""
    from pycocoevalcap.cider.cider import Cider

    score, _ = Cider().compute_score(*_scorer_inputs(predictions, references))
    return {"cider": 100.0 * float(score)}


@register_metric(higher_is_better=True, inputs=TEXTS)
def bleu4(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus BLEU-4 (Papineni et al., 2002) with the brevity penalty of the closest reference length,
    the COCO evaluation's ``Bleu(4)`` scorer."""
    from pycocoevalcap.bleu.bleu import Bleu

    scores, _ = Bleu(4).compute_score(*_scorer_inputs(predictions, references), verbose=0)
    return {"bleu4": 100.0 * float(scores[3])}



@register_metric(higher_is_better=True, inputs=TEXTS)
def rouge_l(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-L (Lin, 2004; the LCS F-measure with β = 1.2, best over references, averaged over rows), the
    COCO evaluation's ``Rouge`` scorer, which VL-Adapter's video evaluator prints beside CIDEr."""
    from pycocoevalcap.rouge.rouge import Rouge

    score, _ = Rouge().compute_score(*_scorer_inputs(predictions, references))
    return {"rouge_l": 100.0 * float(score)}


@register_metric(higher_is_better=True, inputs=TEXTS)
def meteor(predictions: list[str], references: list[list[str]]) -> dict:
    """METEOR 1.5 (Denkowski and Lavie, 2014; exact, stem, synonym and paraphrase matches, English, normalised):
    the COCO evaluation's corpus score, from one ``meteor-1.5.jar`` process for the whole split."""
    gts, res = _scorer_inputs(predictions, references)
    return _java("meteor", lambda: caption_java.meteor([gts[i] for i in gts], [res[i][0] for i in gts])[0])


@register_metric(higher_is_better=True, inputs=TEXTS)
def spice(predictions: list[str], references: list[list[str]]) -> dict:
    """SPICE (Anderson et al., 2016): the COCO evaluation's ``spice-1.0.jar``, which needs Stanford CoreNLP
    3.6.0's jars (``caption_java.corenlp_jars``)."""
    gts, res = _scorer_inputs(predictions, references)
    return _java("spice", lambda: caption_java.spice([gts[i] for i in gts], [res[i][0] for i in gts]))


def _java(name: str, score) -> dict:
    """``{name: 100 × score()}``, or NaN and why under ``not_computed`` when its Java scorer cannot run."""
    try:
        return {name: 100.0 * float(score())}
    except caption_java.Unavailable as why:
        logging.getLogger(__name__).warning("%s: not computed (%s)", name, why)
        return {name: math.nan, NOT_COMPUTED: {name: str(why)}}
