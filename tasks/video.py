"""Video-and-language tasks of VL-Adapter (Sung et al., 2022): TVQA, How2QA, TVC, YC2C, as its code has them.

Each row is a clip, its subtitles and text; the clip is one "image" of 64 visual tokens (models/encoders.py:
``clip-vit``, VALUE's CLIP ViT-B/32 frame features; ``tiny-clip-vit`` for the fixtures), cached as pictures
are. The text is VL-Adapter's, with their prompt *after* it (``f"{sent} {prompt}"``, tvqa_data.py:208):

    TVQA, How2QA  ``[Subs] s1 s2 … [Q] question [TS] (ts) [Choices] a0: x. a1: y. … tvqa:``
                  target ``a{answer_idx}``, generated and compared as a string (TVQAEvaluator.eval,
                  tvqa_data.py:359-378): accuracy; 5 choices in TVQA, 4 in How2QA
    TVC           ``[Subs] … [TS] ([start, end]) tvc:`` (``ts`` a list, printed as Python prints it, tvc_data.py:203)
    YC2C          ``[Subs] … yc2c:``
                  captions: one row per description in every split, scored against that description alone
                  (their data loaders expand ``descs``, tvc_data.py:110-119; the evaluator gets one reference
                  per row, multitask_video.py:598-628); CIDEr (their selection, multitask_video.py:400), BLEU-4,
                  ROUGE-L, METEOR and SPICE beside it, as their CocoEvaluator prints them (METEOR and SPICE
                  run Java on the test split: tasks/caption_java.py)
    all four      decoded with beam 5 to at most 20 tokens (``VideoTask.generation``)

Subtitles are the whole video's lines, stripped, joined by spaces (tvqa_data.py:183-189). Splits (multitask_video.py:
667-808): TVQA train / val, How2QA and the captions train_release / val_release; their test splits carry no answers
(VALUE's leaderboard scores them), so our test is their validation split, the split they print scores on.

The published form is VALUE's release (github.com/VALUE-Leaderboard/DataRelease, the layout their scripts
fill and VL-Adapter reads): ``ann/<task>/<file>.jsonl``, ``ann/<show>_subtitles.jsonl`` and
``vis_features/<show>/clip-vit/<vid_name>.npz``, read from ``$PEFTBENCH_VALUE_DIR``. Fixtures
(``python -m peftbench.tasks.fixtures.video_build``) are short generated clips whose answers follow from what moves.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from peftbench.tasks.base import FIXTURES, FIXTURES_SOURCE, T5_STYLE, DataUnavailable, TextFormat
from peftbench.tasks.metrics import accuracy
from peftbench.tasks.vl import VisionTask
from peftbench.tasks.vl_metrics import bleu4, cider, meteor, rouge_l, spice

DATA_CAP = 1 << 30  # TVQA's train annotations are about 60 MB, TV's subtitles about 30 MB
VALUE_DIR = "PEFTBENCH_VALUE_DIR"  # the folder VALUE's download scripts filled (their ``datasets/video``)
# VALUE's data release at the commit whose download scripts name these files (download_annotations/*.sh)
VALUE_REPO, VALUE_REVISION = "VALUE-Leaderboard/DataRelease", "ee7aa2ad00b8bb1da777ecd9309fd3dcae120060"


def clip_bytes(value) -> bytes:
    """A clip's bytes from a row's ``video``: base64 text (fixtures) or ``{"path": …}`` (VALUE's ``.npz``)."""
    if isinstance(value, dict) and value.get("path"):
        from peftbench.files import read_bytes

        return read_bytes(Path(value["path"]), kind="features", cap=64 << 20, follow=True)  # a folder the user named
    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    raise TypeError(f"not a clip value: {type(value).__name__}")


def subtitles(ex: dict) -> str:
    """``{"sub": [{"text": " Chase : Hi.", …}, {"text": "Bye. "}]}`` -> ``[Subs] Chase : Hi. Bye.``"""
    return "[Subs] " + " ".join(t["text"].strip() for t in ex["sub"])


def qa_source(ex: dict, n_choices: int) -> str:
    """``{"sub": [{"text": "Ok."}], "q": "Where does it go?", "ts": "0.00-9.00", "a0": "Left", "a1": "Up.", …}``
    -> ``[Subs] Ok. [Q] Where does it go? [TS] (0.00-9.00) [Choices] a0: Left. a1: Up. …`` (tvqa_data.py:183-206)"""
    choices = " ".join(f"a{i}: {ex[f'a{i}'].strip('. ')}." for i in range(n_choices))
    return f"{subtitles(ex)} [Q] {ex['q'].strip()} [TS] ({ex['ts']}) [Choices] {choices}"


def tvqa_source(ex: dict) -> str:
    return qa_source(ex, 5)


def how2qa_source(ex: dict) -> str:
    return qa_source(ex, 4)


def tvc_source(ex: dict) -> str:
    """``{"sub": [{"text": "Ok."}], "ts": [1.5, 6.0], …}`` -> ``[Subs] Ok. [TS] ([1.5, 6.0])`` (tvc_data.py:193-205)"""
    return f"{subtitles(ex)} [TS] ({ex['ts']})"


def yc2c_source(ex: dict) -> str:
    """``{"sub": [{"text": "Ok."}], …}`` -> ``[Subs] Ok.`` (yc2c_data.py:191-201)"""
    return subtitles(ex)


def answer_index(ex: dict) -> str:
    """``{"answer_idx": 2, …}`` -> ``a2``: the text their model generates (tvqa_data.py:115-116)."""
    return f"a{ex['answer_idx']}"


def description(ex: dict) -> str:
    return ex["desc"]


@dataclass(frozen=True, kw_only=True)
class VideoTask(VisionTask):
    """A task of clips with subtitles: ``show`` names VALUE's video source (its subtitles and features)."""

    show: str
    image_columns: tuple[str, ...] = ("video",)
    target_length: int = 20  # their targets: tokenizer.encode(answer, max_length=20) (tvqa_data.py:228)
    max_source_length: int = 600  # their inputs: max_length=600 (tvqa_data.py:208)
    epochs: int = 7  # the video scripts' --epochs 7
    split_description: str | None = "train = train, validation = test = val (their test answers are hidden)"
    # Beam 5 to at most 20 tokens for every video task, answers included. Captions pass them to generate()
    # (--num_beams 5 in the scripts, --gen_max_length 20: multitask_video.py:581-583); the QA loaders call
    # generate() with nothing (video_model.py:132-136), so the model's config decides, and their create_config
    # copies every argument onto it (trainer_base.py:98-99): config.num_beams 5, config.max_length 20
    # (transformers 4.2.1's default). The backbone's own defaults (bart-base's no_repeat_ngram_size 3 and
    # early_stopping) come with the model: models/vlbart.py.
    generation: Mapping[str, int] = field(default_factory=lambda: {"num_beams": 5, "max_length": 20})

    def source(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        """The text, then the task prompt (``… tvqa:``) when ``fmt.prefix`` (their ``--use_tasks_prompts``)."""
        text = self.formatter(example)
        return f"{text} {self.prompt}:" if fmt.prefix else text

    def encoder(self, data_source: str) -> str:
        """Fixture clips are read by the tiny CLIP ViT, VALUE's features are VL-Adapter's ``clip-vit``."""
        from peftbench.models.names import CLIP_VIT, TINY_CLIP_VIT

        return TINY_CLIP_VIT if data_source == FIXTURES_SOURCE else CLIP_VIT

    def images(self, example: dict) -> list[bytes]:
        return [clip_bytes(example["video"])]

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        return {"train": list(raw["train"]), "validation": list(raw["validation"]), "test": list(raw["validation"])}

    @property
    def hub_source(self) -> str:
        return f"value:{VALUE_REPO}/{self.name}@{VALUE_REVISION}"

    def load_fixtures(self) -> dict[str, list[dict]]:
        """The fixture's splits in VALUE's schema, its subtitles and clips kept beside them (keyed by ``vid_name``)."""
        folder = FIXTURES / self.name
        clips = {r["vid_name"]: r["video"] for r in jsonl(folder / "videos.jsonl")}
        files = {ours: f"{theirs}.jsonl" for ours, theirs in self.hub_splits.items()}
        return joined(folder, files, "subtitles.jsonl", clips.__getitem__)

    def load_hub(self) -> dict[str, list[dict]]:
        """VALUE's release from ``$PEFTBENCH_VALUE_DIR`` (their ``datasets/video``): annotations, subtitles and
        the ``clip-vit`` features of each video, read when its features are computed."""
        if not os.environ.get(VALUE_DIR):
            raise DataUnavailable(f"{self.name}: set {VALUE_DIR} to the folder VALUE's download scripts filled")
        root = Path(os.environ[VALUE_DIR]).expanduser()
        features = root / "vis_features" / self.show / "clip-vit"
        return joined(root / "ann", {k: f"{self.name}/{v}.jsonl" for k, v in self.hub_splits.items()},
                      f"{self.show}_subtitles.jsonl", lambda vid: {"path": str(features / f"{vid}.npz")})


def jsonl(path: Path) -> list[dict]:
    """A JSON-lines file's rows (read as a regular file under a cap; the user named the folder, links followed)."""
    from peftbench.files import read_bytes

    text = read_bytes(path, kind="data", cap=DATA_CAP, follow=True).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def joined(folder: Path, files: Mapping[str, str], subtitle_file: str,
           video: Callable[[str], object]) -> dict[str, list[dict]]:
    """Each split's annotation rows with their video's subtitles (``sub``) and clip (``video``: ``video(vid_name)``)."""
    subs = {r["vid_name"]: r["sub"] for r in jsonl(folder / subtitle_file)}
    return {ours: [{**r, "sub": subs[r["vid_name"]], "video": video(r["vid_name"])} for r in jsonl(folder / name)]
            for ours, name in files.items()}


@dataclass(frozen=True, kw_only=True)
class VideoQATask(VideoTask):
    """Multiple choice by generating the answer's name (``a0`` … ``a4``), compared as a string after
    stripping white space (their evaluator compares the decoded text exactly; BART's may lead with a space)."""

    n_choices: int

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        out = accuracy([p.strip() for p in predictions], [self.answer(ex) for ex in examples])
        return {**out, "invalid": sum(not self.valid(p) for p in predictions), "examples": len(predictions)}

    def valid(self, prediction: str) -> bool:
        return prediction.strip() in {f"a{i}" for i in range(self.n_choices)}


@dataclass(frozen=True, kw_only=True)
class VideoCaptionTask(VideoTask):
    """Video captioning: one row per description (``descs``), in every split, as their data loaders make them."""

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        return {k: [{**r, **d} for r in rows for d in r["descs"]] for k, rows in super().split(raw).items()}

    def references(self, example: dict) -> list[str]:
        return [example["desc"]]

    @property
    def scored_metrics(self) -> tuple[str, ...]:
        """CIDEr: what they select by and the paper prints (multitask_video.py:400, 414)."""
        return ("cider",)


TASKS = [
    VideoQATask(name="tvqa", paper_name="TVQA", prompt="tvqa", show="tv", n_choices=5, version="1.0.0",
                hub_path=VALUE_REPO, hub_config="tvqa", revision=VALUE_REVISION, formatter=tvqa_source,
                answer=answer_index, metrics=(accuracy,),
                hub_splits={"train": "tvqa_train", "validation": "tvqa_val"}),
    VideoQATask(name="how2qa", paper_name="How2QA", prompt="how2qa", show="how2", n_choices=4, version="1.0.0",
                hub_path=VALUE_REPO, hub_config="how2qa", revision=VALUE_REVISION, formatter=how2qa_source,
                answer=answer_index, metrics=(accuracy,),
                hub_splits={"train": "how2qa_train_release", "validation": "how2qa_val_release"}),
    VideoCaptionTask(name="tvc", paper_name="TVC", prompt="tvc", show="tv", version="1.0.0", hub_path=VALUE_REPO,
                     hub_config="tvc", revision=VALUE_REVISION, formatter=tvc_source, answer=description,
                     metrics=(cider, bleu4, rouge_l, meteor, spice),
                     hub_splits={"train": "tvc_train_release", "validation": "tvc_val_release"}),
    VideoCaptionTask(name="yc2c", paper_name="YC2C", prompt="yc2c", show="yc2", version="1.0.0", hub_path=VALUE_REPO,
                     hub_config="yc2c", revision=VALUE_REVISION, formatter=yc2c_source, answer=description,
                     metrics=(cider, bleu4, rouge_l, meteor, spice),
                     hub_splits={"train": "yc2c_train_release", "validation": "yc2c_val_release"}),
]
