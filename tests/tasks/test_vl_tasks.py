"""The vision-and-language tasks: formats, fixtures whose answers are in the picture, splits, scoring."""

import base64
import io
from collections import Counter

import pytest
from PIL import Image

from peftbench.tasks import get_task
from peftbench.tasks.base import TextFormat, trial_model
from peftbench.tasks.fixtures import vl_build
from peftbench.tasks.vl import TASKS, image_bytes

VL = [t.name for t in TASKS]
SCHEMAS = {  # each hub dataset's columns (the image as the hub's {"bytes", "path"} value)
    "vqa": {"question_type", "multiple_choice_answer", "answers", "image_id", "answer_type", "question_id",
            "question", "image"},
    "gqa": {"id", "imageId", "question", "answer", "fullAnswer", "image"},
    "nlvr2": {"identifier", "sentence", "left_image", "right_image", "label"},
    "coco-caption": {"filepath", "sentids", "filename", "imgid", "split", "sentences", "cocoid", "url", "image"},
}


def picture(value) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes(value))).convert("RGB")


def colours(img: Image.Image) -> set[str]:
    """The fixture colours present in a picture (exact RGB of the drawn fills)."""
    pixels = set(img.getdata())
    return {name for name, rgb in vl_build.COLORS.items() if rgb in pixels}


@pytest.mark.parametrize("name", VL)
def test_fixtures_have_the_hub_schema_and_are_rebuilt_byte_for_byte(name):
    task, built = get_task(name), vl_build.build()[name]
    raw = task.load_fixtures()
    for ours, theirs in task.hub_splits.items():
        assert raw[ours] == [__import__("json").loads(__import__("json").dumps(r)) for r in built[theirs]]
        assert all(set(r) == SCHEMAS[name] for r in raw[ours])
    splits = task.split(raw)
    assert task.split_sizes(raw) == {k: len(v) for k, v in splits.items()}


def test_formats_are_vl_t5s_task_prompts_where_the_prefix_setting_puts_them():
    """VL-Adapter prompts (``vqa: …``) only with --use_tasks_prompts, its single-module scripts."""
    on, off = TextFormat(prefix=True), TextFormat(prefix=False)
    vqa = get_task("vqa").load_fixtures()["train"][0]
    assert (get_task("vqa").source(vqa, on), get_task("vqa").target(vqa)) == (
        "vqa: what color are the shapes?", "yellow")
    assert get_task("vqa").source(vqa, off) == "what color are the shapes?"
    nlvr = {"sentence": "Both images contain a red shape.", "label": "False"}
    assert (get_task("nlvr2").source(nlvr, on), get_task("nlvr2").target(nlvr)) == (
        "nlvr: Both images contain a red shape.", "false")
    gqa = {"question": "Which side is the circle on?", "answer": "left"}
    assert (get_task("gqa").source(gqa, on), get_task("gqa").target(gqa)) == (
        "gqa: Which side is the circle on?", "left")
    coco = get_task("coco-caption")
    rows = coco.training_examples(coco.load_fixtures()["train"][:1])
    assert [coco.target(r) for r in rows] == coco.load_fixtures()["train"][0]["sentences"]
    assert (coco.source(rows[0], on), coco.source(rows[0], off)) == ("caption:", "")


def test_vqa_splits_are_karpathys_by_each_pictures_coco_id():
    """Membership computed here from the caption fixture's own ids: a question goes where its image
    (``image_id``) lies in Karpathy's COCO split, restval counted as train (caption_clip_data.py:84-89)."""
    captions = get_task("coco-caption").load_fixtures()
    where = {row["cocoid"]: ("train" if split == "restval" else split)
             for split, rows in captions.items() for row in rows}
    raw = get_task("vqa").load_fixtures()
    splits = get_task("vqa").split(raw)
    assert set(splits) == {"train", "validation", "test"} and all(splits.values())
    for split, rows in splits.items():
        assert {where[r["image_id"]] for r in rows} == {split}
    placed = [r for r in raw["train"] + raw["validation"] if r["image_id"] in where]
    assert sum(len(v) for v in splits.values()) == len(placed)
    # VQAv2's own validation questions train when their image is Karpathy's train or restval
    assert any(where[r["image_id"]] == "train" for r in raw["validation"] if r["image_id"] in where)
    assert any(r["image_id"] in {row["cocoid"] for row in captions["restval"]} for r in splits["train"])


def test_the_other_splits_are_vl_adapters():
    gqa_raw, nlvr_raw, coco_raw = (get_task(t).load_fixtures() for t in ("gqa", "nlvr2", "coco-caption"))
    gqa = get_task("gqa").split(gqa_raw)  # train + valid; validated and tested on testdev
    assert (gqa["train"] == gqa_raw["train"] + gqa_raw["valid"]
            and gqa["validation"] == gqa["test"] == gqa_raw["testdev"])
    nlvr = get_task("nlvr2").split(nlvr_raw)  # valid and test-P as the hub has them: no size rule
    assert nlvr["validation"] == nlvr_raw["validation"] and nlvr["test"] == nlvr_raw["test"]
    coco = get_task("coco-caption").split(coco_raw)  # Karpathy, restval trained on
    assert coco["train"] == coco_raw["train"] + coco_raw["restval"] and coco["test"] == coco_raw["test"]


def test_decoding_is_declared_per_task_as_vl_adapter_decodes():
    assert get_task("coco-caption").generation == {"num_beams": 5, "max_length": 40}
    assert get_task("vqa").generation == get_task("gqa").generation == {"num_beams": 1}
    assert get_task("nlvr2").choices == ("true", "false") and get_task("vqa").choices is None


def test_vqa_answers_are_in_the_picture():
    for row in get_task("vqa").load_fixtures()["train"]:
        img = picture(row["image"])
        if row["answer_type"] == "other":
            assert colours(img) == {row["multiple_choice_answer"]}
        answers = Counter(a["answer"] for a in row["answers"])
        assert len(row["answers"]) == 10 and answers[row["multiple_choice_answer"]] == 8


def test_gqa_and_nlvr2_answers_are_in_the_pictures():
    for row in get_task("gqa").load_fixtures()["train"]:
        img, asked = picture(row["image"]), row["question"].split()[4]  # "Which side is the red circle on?"
        halves = {"left": img.crop((0, 0, 16, 32)), "right": img.crop((16, 0, 32, 32))}
        assert {side for side, half in halves.items() if asked in colours(half)} == {row["answer"]}, row["id"]
    for row in get_task("nlvr2").load_fixtures()["train"]:
        if row["sentence"].startswith("Both images contain a "):
            asked = row["sentence"].split()[4]
            both = all(asked in colours(picture(row[c])) for c in ("left_image", "right_image"))
            assert str(both) == row["label"], row["identifier"]


def test_fixture_images_are_base64_png_in_the_hub_image_value():
    row = get_task("gqa").load_fixtures()["train"][0]
    assert row["image"]["path"] is None
    assert base64.b64decode(row["image"]["bytes"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture(row["image"]).size == (32, 32)


def test_evaluation_counts_unreadable_outputs():
    nlvr = get_task("nlvr2")
    rows = [{"sentence": "s", "label": "True"}, {"sentence": "s", "label": "False"}]
    assert nlvr.compute_metrics(["true", "maybe"], rows) == {"accuracy": 50.0, "invalid": 1, "examples": 2}
    coco = get_task("coco-caption").evaluated_on("validation")  # no JVM (METEOR, SPICE): test_vl_metrics.py has them
    rows = [{"sentences": ["a red circle"]}, {"sentences": ["a blue square"]}]
    metrics = coco.compute_metrics(["a red square", "a blue square"], rows)
    assert metrics["cider"] == pytest.approx(500.0) and coco.score(metrics) == metrics["cider"]


def test_a_vl_task_adds_its_image_encoder_to_the_model():
    vqa = get_task("vqa")

    def model(name, source, *tasks):
        return str(trial_model(name, tasks or (vqa,), lambda _: source))

    assert model("tiny-t5", "fixtures") == "tiny-t5+tiny-clip"
    assert model("google-t5/t5-base", "hub:HuggingFaceM4/VQAv2/default@main") == "google-t5/t5-base+clip-rn101"
    assert model("t5-base+openai/clip-vit-base-patch32", "fixtures") == "t5-base+openai/clip-vit-base-patch32"
    assert model("tiny-t5", "fixtures", get_task("sst2")) == "tiny-t5"
    with pytest.raises(ValueError, match="text tasks and image-text tasks"):
        model("tiny-t5", "fixtures", get_task("sst2"), vqa)


@pytest.mark.parametrize("name", VL)
def test_every_fixture_target_fits_the_generation_length_in_bytes(name):
    """tiny-t5 reads bytes (ByT5's tokenizer): a target cut short would be unlearnable and unreadable."""
    task = get_task(name)
    for rows in task.split(task.load_fixtures()).values():
        for ex in task.training_examples(rows):
            assert len(task.target(ex).encode()) + 1 <= task.max_target_length, task.target(ex)


def test_the_listing_says_how_the_vl_splits_are_made():
    from peftbench.tasks.catalog import split_rule

    assert split_rule(get_task("gqa")) == "train = hub train + val, validation = test = hub testdev"
    assert "Karpathy" in split_rule(get_task("vqa")) and "restval" in split_rule(get_task("coco-caption"))
    assert split_rule(get_task("nlvr2")) == "train = hub train, validation = hub validation, test = hub test"
