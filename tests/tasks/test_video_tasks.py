"""The video tasks as VL-Adapter's code has them: inputs and prompts, ``a{idx}`` answers, captions per description,
their metrics on hand-made predictions, fixtures whose subtitles do not give the answer, VALUE's published layout."""

import io
import json
from collections import Counter

import numpy as np
import pytest

from peftbench.tasks import TextFormat, get_task
from peftbench.tasks.video import TASKS as VIDEO_TASKS
from peftbench.tasks.video import subtitles
from peftbench.tasks.vl_metrics import bleu4, cider, rouge_l

PREFIX = TextFormat(prefix=True)
NAMES = [t.name for t in VIDEO_TASKS]


def test_the_four_tasks_are_registered_under_their_names():
    assert NAMES == ["tvqa", "how2qa", "tvc", "yc2c"]
    assert all(get_task(n).images_per_example == 1 for n in NAMES)
    assert [get_task(n).encoder("fixtures") for n in NAMES] == ["tiny-clip-vit"] * 4
    assert get_task("tvqa").encoder("value:…") == "clip-vit"


@pytest.mark.parametrize(("name", "source", "target"), [
    ("tvqa", "[Subs] Chase : Look at this. [Q] Which way does the square move? [TS] (0.00-9.00) [Choices] "
             "a0: left. a1: right. a2: up. a3: down. a4: still. tvqa:", "a0"),
    ("how2qa", "[Subs] Today we are going to try this. [Q] What colour does the screen turn? [TS] (0.00-9.00) "
               "[Choices] a0: red. a1: green. a2: blue. a3: yellow. how2qa:", "a0"),
    ("tvc", "[Subs] Chase : Look at this. [TS] ([0.0, 9.0]) tvc:", "red goes left"),
    ("yc2c", "[Subs] Add a pinch of salt. yc2c:", "green turns red"),
])
def test_inputs_are_theirs_with_the_prompt_after_the_text(name, source, target):
    task = get_task(name)
    ex = task.load("fixtures")["train"][0]
    assert task.source(ex, PREFIX) == source and task.target(ex) == target
    assert task.source(ex) == source.rsplit(" ", 1)[0]  # without --use_tasks_prompts: no prompt


def test_choices_are_stripped_of_their_period_and_given_one():
    ex = {"sub": [{"text": "  Hi. "}], "q": " Why? ", "ts": "1.0-2.0", "a0": "Because.", "a1": "No. ", "a2": "x",
          "a3": "y", "a4": "z.."}
    assert get_task("tvqa").formatter(ex) == "[Subs] Hi. [Q] Why? [TS] (1.0-2.0) [Choices] a0: Because. a1: No. " \
                                            "a2: x. a3: y. a4: z."


def test_multiple_choice_accuracy_compares_the_generated_answer_name():
    task = get_task("tvqa")
    examples = [{"answer_idx": i} for i in (0, 1, 2, 3, 4, 0)]
    # right, right (a leading space stripped), "a2." is not "a2", a letter alone, the wrong name, garbage
    scores = task.compute_metrics(["a0", " a1", "a2.", "a", "a1", "zzz"], examples)
    assert scores == {"accuracy": pytest.approx(100 * 2 / 6), "invalid": 3, "examples": 6}
    assert get_task("how2qa").valid("a3") and not get_task("how2qa").valid("a4")  # four choices


def test_captions_are_one_row_per_description_in_every_split_scored_against_it_alone():
    task = get_task("tvc")
    raw = task.load_fixtures()
    splits = task.split(raw)
    assert {k: len(v) for k, v in splits.items()} == {"train": 96, "validation": 64, "test": 64}
    assert splits["test"] == splits["validation"]  # their test answers are hidden: they print val
    first = splits["validation"][:2]
    assert [task.references(ex) for ex in first] == [[d["desc"]] for d in raw["validation"][0]["descs"]]
    assert task.scored_metrics == ("cider",) and task.metric_names == ("cider", "bleu4", "rouge_l", "meteor", "spice")
    assert task.generation == {"num_beams": 5, "max_length": 20}


def test_rouge_l_and_bleu4_on_hand_made_captions():
    # LCS("red goes left", "red moves left") = 2 words: P = R = 2/3, F_β = 2/3 whatever β
    assert rouge_l(["red goes left"], [["red moves left"]]) == {"rouge_l": pytest.approx(100 * 2 / 3)}
    # the best reference counts: the second is the prediction itself
    assert rouge_l(["red goes left"], [["blue", "red goes left"]]) == {"rouge_l": pytest.approx(100.0)}
    same = ["the red square goes left", "the blue square goes up"]
    assert bleu4(same, [[s] for s in same])["bleu4"] == pytest.approx(100.0, abs=1e-4)
    assert bleu4(same, [[same[1]], [same[0]]])["bleu4"] < 50


def test_cider_rewards_the_row_own_description():
    preds = ["red goes left", "blue goes up", "green goes down"]
    right = cider(preds, [[p] for p in preds])["cider"]
    swapped = cider(preds, [[preds[1]], [preds[2]], [preds[0]]])["cider"]
    assert right > 100 > swapped >= 0


def answer_class(task, ex) -> str:
    """What the video shows: the answer index, or the description's last word (a direction or colour)."""
    return str(ex["answer_idx"]) if "answer_idx" in ex else ex["desc"].split()[-1]


@pytest.mark.parametrize("name", NAMES)
def test_fixture_subtitles_say_nothing_about_the_answer(name):
    """Each subtitle comes with each answer equally often in every split, and the rest of the text is the same on
    every row: from the text alone the best guess is the majority answer, and each split's answers are balanced."""
    task = get_task(name)
    for split, rows in task.load("fixtures").items():
        pairs = Counter((" ".join(t["text"] for t in ex["sub"]), answer_class(task, ex)) for ex in rows)
        subs = {s for s, _ in pairs}
        answers = {a for _, a in pairs}
        assert len(subs) == 4 and len(answers) >= 4
        assert set(pairs.values()) == {len(rows) // (len(subs) * len(answers))}, (split, pairs)
        assert len({task.source(ex).replace(subtitles(ex), "") for ex in rows}) == 1


@pytest.mark.parametrize("name", NAMES)
def test_fixture_targets_fit_their_20_tokens_in_bytes(name):
    """tiny-t5 reads bytes (ByT5): a target cut at VL-Adapter's 20 tokens would be unlearnable."""
    task = get_task(name)
    for rows in task.load("fixtures").values():
        assert all(len(task.target(ex).encode()) + 1 <= task.max_target_length for ex in rows)


def test_the_published_value_layout_loads_and_its_features_need_no_encoder(tmp_path, monkeypatch):
    """VALUE's release as their scripts lay it out (``ann/``, ``vis_features/<show>/clip-vit/<vid>.npz``)."""
    ann, feats = tmp_path / "ann", tmp_path / "vis_features" / "tv" / "clip-vit"
    (ann / "tvqa").mkdir(parents=True)
    feats.mkdir(parents=True)
    row = {"a0": "A", "a1": "B", "a2": "C", "a3": "D", "a4": "E", "answer_idx": 3, "q": "Why?", "qid": 7,
           "show_name": "House M.D.", "ts": "1.0-2.0", "vid_name": "house_s01e01_seg01_clip_00"}
    for split in ("tvqa_train", "tvqa_val"):
        (ann / "tvqa" / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    (ann / "tv_subtitles.jsonl").write_text(json.dumps({"vid_name": row["vid_name"], "sub": [{"text": " Hi."}]}) + "\n")
    buf = io.BytesIO()
    np.savez(buf, features=np.ones((80, 512), dtype="float16"))
    (feats / f"{row['vid_name']}.npz").write_bytes(buf.getvalue())
    monkeypatch.setenv("PEFTBENCH_VALUE_DIR", str(tmp_path))
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path / "cache"))

    task = get_task("tvqa")
    splits = task.split(task.load_hub())
    (ex,) = splits["train"]
    assert task.source(ex, PREFIX).startswith("[Subs] Hi. [Q] Why? [TS] (1.0-2.0)") and task.target(ex) == "a3"
    inputs = task.model_inputs(splits, model="bart-base+clip-vit", data_source=task.hub_source)
    assert inputs["train"][0]["visual_features"].shape == (1, 64, 512)
    assert task.hub_source.startswith("value:VALUE-Leaderboard/DataRelease/tvqa@")
