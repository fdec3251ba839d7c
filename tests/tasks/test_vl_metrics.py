"""The vision-and-language metrics on hand-made predictions, against values worked out by hand."""

import math
import shutil
import sys
import threading

import pytest

from peftbench.tasks import caption_java, get_task
from peftbench.tasks.metrics import NOT_COMPUTED, accuracy
from peftbench.tasks.vl_metrics import (
    bleu4,
    caption_tokens,
    cider,
    meteor,
    normalize_vqa,
    spice,
    vqa_accuracy,
    vqa_gold,
    vqa_score,
)

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


# Captions for METEOR: an exact copy, a near miss (same words but one: "walking" for "walks"), no word shared,
# an empty prediction, and two references of which the second is met exactly.
REFS = [["a red square moves left"], ["the man walks the dog"], ["blue goes up"], ["a b c"],
        ["a cat on a mat", "the cat sat on the mat"]]
HYPS = ["a red square moves left", "the man walking the dog", "green circle stays still", "", "The cat sat on the mat."]


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_is_the_coco_evaluation_s_own_score():
    """One Meteor 1.5 process of ours against pycocoevalcap's ``Meteor`` (the COCO evaluation's own wrapper of
    the same jar), on the same tokenised captions, run side by side: the same corpus score and the same score
    per caption. An exact copy scores 1, a caption sharing no word 0, an empty one 0."""
    from pycocoevalcap.meteor.meteor import Meteor

    refs = [[caption_tokens(r) for r in rs] for rs in REFS]
    hyps = [caption_tokens(h) for h in HYPS]
    theirs = {}
    worker = threading.Thread(target=lambda: theirs.update(
        out=Meteor().compute_score(dict(enumerate(refs)), {i: [h] for i, h in enumerate(hyps)})))
    worker.start()
    ours = caption_java.meteor(refs, hyps)
    worker.join()
    assert ours[0] == pytest.approx(theirs["out"][0], abs=1e-9)
    assert ours[1] == pytest.approx(theirs["out"][1], abs=1e-9)
    exact, near, disjoint, empty, second_reference = ours[1]
    assert exact == pytest.approx(1.0, abs=1e-3) and second_reference == pytest.approx(1.0, abs=1e-3)
    assert 0.5 < near < 1.0  # "walking" meets "walks" through the stem module
    assert disjoint == 0.0 and empty == 0.0


def test_meteor_feeds_the_jar_the_tokens_cider_reads_and_scales_by_100(monkeypatch):
    seen = {}

    def jar(references, hypotheses):
        seen.update(references=references, hypotheses=hypotheses)
        return 0.25, [0.25] * len(hypotheses)

    monkeypatch.setattr(caption_java, "meteor", jar)
    assert meteor(HYPS, REFS) == {"meteor": 25.0}
    assert seen["hypotheses"][-1] == "the cat sat on the mat"  # lower case, punctuation gone, as for CIDEr
    assert seen["references"] == [[caption_tokens(r) for r in rs] for rs in REFS]


@pytest.fixture
def no_java(monkeypatch, tmp_path):
    """A PATH on which there is no ``java``."""
    monkeypatch.setenv("PATH", str(tmp_path))


def test_without_java_meteor_is_absent_in_one_line_and_the_other_metrics_stand(no_java, caplog, monkeypatch, tmp_path):
    monkeypatch.setenv(caption_java.CORENLP_DIR, str(tmp_path))
    assert shutil.which("java") is None
    got = meteor(HYPS, REFS)
    assert math.isnan(got["meteor"]) and got[NOT_COMPUTED] == {"meteor": "java not found"}
    assert "meteor: not computed (java not found)" in caplog.text
    task = get_task("tvc")
    rows = [{"desc": "red goes left"}, {"desc": "blue goes up"}]
    scores = task.compute_metrics(["red goes left", "blue goes up"], rows)
    assert math.isnan(scores["meteor"]) and math.isnan(scores["spice"])
    assert scores["cider"] > 0 and scores["bleu4"] > 0 and scores["rouge_l"] == pytest.approx(100.0)
    assert scores[NOT_COMPUTED]["meteor"] == "java not found"  # both reasons kept, neither overwrites the other
    assert scores[NOT_COMPUTED]["spice"].startswith("Stanford CoreNLP 3.6.0 jars not found")


def test_spice_without_corenlp_says_which_jars_it_needs(monkeypatch, tmp_path):
    monkeypatch.setenv(caption_java.CORENLP_DIR, str(tmp_path))
    got = spice(["a red square"], [["a red circle"]])
    assert math.isnan(got["spice"])
    assert got[NOT_COMPUTED]["spice"].startswith("Stanford CoreNLP 3.6.0 jars not found (stanford-corenlp-3.6.0.jar")
    assert caption_java.CORENLP_DIR in got[NOT_COMPUTED]["spice"]


def test_a_java_that_dies_is_an_absence_and_leaves_no_process(monkeypatch, tmp_path):
    """A ``java`` that ends without answering (a JVM that could not start: too little memory, a broken
    install) makes METEOR absent, in one line, and the child has been reaped."""
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    started = []
    popen = caption_java.subprocess.Popen

    def watched(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(caption_java.subprocess, "Popen", watched)
    got = meteor(["a b"], [["a b"]])
    assert math.isnan(got["meteor"]) and got[NOT_COMPUTED] == {"meteor": "meteor-1.5.jar ended early (exit 3)"}
    assert started and started[0].returncode is not None


def test_validations_skip_the_java_scorers_and_the_test_split_keeps_them():
    """Their selection reads CIDEr only; METEOR and SPICE cost a JVM each, so they are scored on the test split."""
    for name in ("tvc", "yc2c", "coco-caption"):
        task = get_task(name)
        assert {"meteor", "spice"} <= set(task.metric_names)
        assert task.evaluated_on("test") is task
        assert not {"meteor", "spice"} & set(task.evaluated_on("validation").metric_names)
        assert task.evaluated_on("validation").scored_metrics == task.scored_metrics == ("cider",)
    assert get_task("tvqa").evaluated_on("validation") is get_task("tvqa")


def test_a_logged_sample_is_scored_without_starting_java(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a JVM for one row")

    monkeypatch.setattr(caption_java, "meteor", refuse)
    monkeypatch.setattr(caption_java, "spice", refuse)
    row = get_task("tvc").sample("red goes left", {"desc": "red goes left", "sub": [], "ts": [0, 1]})
    assert set(row["scores"]) == {"cider", "bleu4", "rouge_l"}


# Caption forms the PTB tokenizer treats specially, each met by ``caption_tokens`` as the jar meets it.
PTB_CASES = [
    "A man's dog runs across the T-shirt store.", "He doesn't like it, \"really\" (no).",
    "Two people play frisbee; one wears a red-and-white hat!", "it's 3.5 miles away...", "The dogs' bowls.",
    "I can't, won't, I'm, you're, we've, they'll, he'd, cannot, gonna.", "Price: $5.00 & 50% off, e-mail #1.",
    "'Single' quotes, `back` quotes -- and - alone.", "and/or 1/2 at 10:30 in the U.S. today", "[x] {y} (z)",
    "o'clock ma'am", "A   lot   of    spaces   .", "Ünïcode café", "x*y=z + 3 ~ 4 | 5 ^ 6", "1,000 people, 1990-2000.",
]


@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer is a jar")
def test_caption_tokens_are_what_the_coco_evaluation_s_ptb_tokenizer_leaves(tmp_path):
    """The COCO evaluation's own step: stanford-corenlp-3.4.1.jar's PTBTokenizer, then its punctuation filter."""
    import subprocess

    jar = caption_java.evalcap_dir("tokenizer") / "stanford-corenlp-3.4.1.jar"
    (tmp_path / "captions.txt").write_text("\n".join(PTB_CASES))
    out = subprocess.run(["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
                          "-lowerCase", "captions.txt"], cwd=tmp_path, capture_output=True, text=True, check=True)
    dropped = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"}
    theirs = [" ".join(w for w in line.rstrip().split(" ") if w not in dropped) for line in out.stdout.splitlines()]
    assert [caption_tokens(c) for c in PTB_CASES] == theirs


def test_one_meteor_child_serves_every_evaluation_of_a_process(monkeypatch, tmp_path):
    """A stand-in ``java`` that answers as Meteor does (a stats line per SCORE, then a score per caption and the
    corpus score per EVAL): two evaluations, one child, stopped when the process exits (``_stop_meteor``)."""
    import sys

    fake = tmp_path / "java"
    fake.write_text(f"#!{sys.executable}\n"
                    "import sys\n"
                    "for line in sys.stdin:\n"
                    "    parts = line.rstrip('\\n').split(' ||| ')\n"
                    "    answers = ['7 7'] if parts[0] == 'SCORE' else ['0.5'] * (len(parts) - 1) + ['0.25']\n"
                    "    print('\\n'.join(answers), flush=True)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    started = []
    popen = caption_java.subprocess.Popen
    monkeypatch.setattr(caption_java.subprocess, "Popen", lambda *a, **k: started.append(popen(*a, **k)) or started[-1])
    assert caption_java.meteor([["a b"], ["c"]], ["a b", "d"]) == (0.25, [0.5, 0.5])
    assert meteor(["x y z"], [["x y"]]) == {"meteor": 25.0}
    assert len(started) == 1 and started[0].poll() is None
    caption_java._stop_meteor()
    assert started[0].returncode is not None


def test_spice_runs_the_jar_as_the_coco_evaluation_does_and_averages_its_f_scores(monkeypatch, tmp_path):
    """With CoreNLP's jars given, SPICE runs ``edu.anu.spice.SpiceScorer`` on one JSON file of captions
    (``-subset -silent``, the jars on the class path) and is the mean of each caption's ``All`` F-score ×100.
    A stand-in ``java`` plays the jar: it logs its arguments and scores 1 for a caption equal to its first
    reference, 0 otherwise (the real scorer needs CoreNLP's models, a download)."""
    jars = tmp_path / "corenlp"
    jars.mkdir()
    for name in caption_java.CORENLP_JARS:
        (jars / name).write_bytes(b"")
    monkeypatch.setenv(caption_java.CORENLP_DIR, str(jars))
    log = tmp_path / "args.txt"
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
open({str(log)!r}, "w").write("\\n".join(args))
rows = json.load(open(args[args.index("edu.anu.spice.SpiceScorer") + 1]))
out = [{{"image_id": r["image_id"], "scores": {{"All": {{"f": float(r["test"] == r["refs"][0])}}}}}} for r in rows]
json.dump(out, open(args[args.index("-out") + 1], "w"))
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    got = spice(["a red square", "a blue circle", "two dogs"], [["a red square"], ["a green circle"], ["two dogs"]])
    assert got["spice"] == pytest.approx(100 * 2 / 3)
    assert NOT_COMPUTED not in got
    args = log.read_text().split("\n")
    assert args[-2:] == ["-subset", "-silent"]
    classpath = args[args.index("-cp") + 1].split(":")
    assert classpath[0].endswith(caption_java.SPICE_JAR)
    assert [str(jars / name) for name in caption_java.CORENLP_JARS] == classpath[-2:]
