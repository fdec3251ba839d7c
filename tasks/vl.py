"""Vision-and-language tasks of VL-Adapter (Sung et al., 2022): VQAv2, GQA, NLVR2, COCO captions.

A task here is text plus pictures: its rows hold images (the hub's ``{"bytes", "path"}`` image
values, base64 text in the offline fixtures, or a URL), its inputs are VL-T5's task prompts (``vqa:
…``) when the task-prefix setting puts them there (VL-Adapter: its single-module scripts only) and its targets
answers or captions. A trial of one trains VL-T5: ``model_name`` adds the image encoder to the model
the trial names (``tiny-t5`` → ``tiny-t5+tiny-clip`` on fixtures, ``t5-base+clip-rn101`` on hub
data, VL-Adapter's), and ``model_inputs`` gives each row its image features from the feature cache
(models/features.py), computed once per dataset and encoder.

Fixtures (``python -m peftbench.tasks.fixtures.vl_build``) are small drawn pictures whose answers follow from
the picture: a shape's colour, how many shapes, which side; captions name the shape and colour.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from peftbench.models.spec import ModelSpec
from peftbench.tasks.base import FIXTURES_SOURCE, T5_STYLE, Task, TextFormat
from peftbench.tasks.metrics import NOT_COMPUTED, VALUES, accuracy
from peftbench.tasks.vl_metrics import JAVA_METRICS, bleu4, cider, meteor, normalize_vqa, spice, vqa_accuracy

FIXTURE_ENCODER = "tiny-clip"  # fixtures are 32×32 drawings: the tiny random CLIP reads them offline
HUB_ENCODER = "clip-rn101"  # VL-Adapter's CLIP ResNet-101 grid features
# Hub revisions: the datasets' heads could not be resolved to commits offline, where this was written.
# Until a commit is written here, a hub run resolves the branch once per process to the commit it
# points at (``pinned``), loads that commit for every split, and the records name it.
UNPINNED = "main"
_HEADS: dict[tuple[str, str], str] = {}  # (repo, branch) -> the commit it pointed at when first loaded


def pinned(repo: str, revision: str) -> str:
    """The commit to load: ``revision`` when it is a full commit hash, else the commit the branch or
    tag points at now, asked of the hub once per process (every split, every trial: one commit)."""
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    if (repo, revision) not in _HEADS:
        from huggingface_hub import HfApi

        _HEADS[(repo, revision)] = HfApi().dataset_info(repo, revision=revision).sha
    return _HEADS[(repo, revision)]


def image_bytes(value) -> bytes:
    """An image's encoded bytes from a row's image value: the hub's ``{"bytes", "path"}`` (bytes, or
    base64 text in fixtures), a decoded PIL image, or a URL (COCO Karpathy's rows)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        with urllib.request.urlopen(value, timeout=60) as response:
            return response.read()
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    if hasattr(value, "save"):  # a decoded PIL image
        import io

        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"not an image value: {type(value).__name__}")


@dataclass(frozen=True, kw_only=True)
class VisionTask(Task):
    """A task whose examples come with images: ``image_columns`` name them (two for NLVR2)."""

    image_columns: tuple[str, ...] = ("image",)
    answer: Callable[[dict], str]
    paper_name: str  # the dataset as VL-Adapter's tables name it (its metrics: vl_metrics.PAPER_NAMES)
    prompt: str  # VL-T5's task prompt, before a colon: ``vqa: …``
    target_length: int = 16  # tokens, bytes under ByT5's tokenizer: answers are a word or two
    max_source_length: int = 40  # VL-Adapter's text length for questions
    epochs: int = 20  # VL-Adapter's 20 epochs
    # How the harness decodes for scoring: transformers' generate() arguments (VQA and GQA greedy,
    # multitask.py:661-662, 697-698) ...
    generation: Mapping[str, int] = field(default_factory=lambda: {"num_beams": 1})
    # ... or, when set, no generation: the label texts whose first-token logits at the first decoder step
    # are compared, the larger one the prediction (NLVR2: nlvr_model.py:121-127)
    choices: tuple[str, ...] | None = None
    split_description: str | None = None  # how ``split`` makes ours from the hub's, when not one to one

    @property
    def max_target_length(self) -> int:
        return self.target_length

    @property
    def hub_source(self) -> str:
        """The dataset at the commit it was loaded at (an unpinned branch: the commit it resolved to)."""
        resolved = _HEADS.get((self.hub_path, self.revision))
        at = f"{resolved} ({self.revision} when loaded)" if resolved else self.revision
        return f"hub:{self.hub_path}/{self.hub_config}@{at}"

    def source(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        """The task prompt and text (``vqa: …``) when ``fmt.prefix`` (VL-Adapter's ``--use_tasks_prompts``,
        in its single-module scripts only), else the text alone."""
        text = self.formatter(example)
        return f"{self.prompt}: {text}".strip() if fmt.prefix else text

    def target(self, example: dict, fmt: TextFormat = T5_STYLE) -> str:
        return self.answer(example)

    @property
    def images_per_example(self) -> int:
        return len(self.image_columns)

    def encoder(self, data_source: str) -> str:
        """The fixtures' drawings are read by the tiny CLIP, the hub's pictures by VL-Adapter's encoder."""
        return FIXTURE_ENCODER if data_source == FIXTURES_SOURCE else HUB_ENCODER

    def model_inputs(self, splits: dict[str, list[dict]], *, model: str | ModelSpec, data_source: str,
                     map_fn: Callable = map) -> dict[str, list[dict]]:
        """Each row's ``visual_features`` (images, cells, dim): a view of the dataset's cached features;
        images not in the cache yet are encoded by ``map_fn`` over shards (``features_for``)."""
        from peftbench.models.features import features_for, item_key

        encoder = str(ModelSpec.parse(model).encoder)
        keyed = {split: [self.images(ex) for ex in rows] for split, rows in splits.items()}
        items = {item_key(imgs): imgs for rows in keyed.values() for imgs in rows}
        feats, index = features_for(encoder, items, source=f"{data_source}/{self.name}", map_fn=map_fn)
        return {split: [{"visual_features": feats[index[item_key(imgs)]]} for imgs in rows]
                for split, rows in keyed.items()}

    def images(self, example: dict) -> list[bytes]:
        return [image_bytes(example[c]) for c in self.image_columns]

    def load_hub(self) -> dict[str, list[dict]]:
        import datasets

        ds = datasets.load_dataset(self.hub_path, self.hub_config, revision=pinned(self.hub_path, self.revision))
        for column in self.image_columns:  # keep images encoded: features are computed once, from bytes
            if column in ds.column_names[next(iter(ds))] and isinstance(ds[next(iter(ds))].features[column],
                                                                         datasets.Image):
                ds = ds.cast_column(column, datasets.Image(decode=False))
        return {ours: list(ds[theirs]) for ours, theirs in self.hub_splits.items()}

    def split_sizes(self, raw: dict[str, list[dict]]) -> dict[str, int]:
        """Rows per split: the VL splits are VL-Adapter's own (no size rule), so the split itself counts them."""
        return {k: len(v) for k, v in self.split(raw).items()}

    def compute_metrics(self, predictions: list[str], examples: list[dict],
                        fmt: TextFormat = T5_STYLE) -> dict[str, float]:
        out: dict = {}
        references = [self.references(ex) for ex in examples]
        for metric in self.metrics:
            if metric.inputs == VALUES:  # compared for equality: answers as the VQA evaluation normalises them
                values = metric([normalize_vqa(p) for p in predictions], [normalize_vqa(r) for r in references])
            else:
                values = metric(predictions, references)
            absent = {**out.get(NOT_COMPUTED, {}), **values.pop(NOT_COMPUTED, {})}
            out.update(values, **({NOT_COMPUTED: absent} if absent else {}))
        out["invalid"] = sum(not self.valid(p) for p in predictions)
        out["examples"] = len(predictions)
        return out

    def evaluated_on(self, split: str) -> VisionTask:
        """The task as ``split`` is scored: the Java scorers (METEOR, SPICE; a JVM each) on the test split alone.
        VL-Adapter prints them every epoch but selects on CIDEr (multitask_video.py:400, multitask.py:528) and
        tests the last epoch's weights; here a validation would pay about 8 CPU seconds per JVM for nothing."""
        if split == "test" or not any(m.name in JAVA_METRICS for m in self.metrics):
            return self
        return dataclasses.replace(self, metrics=tuple(m for m in self.metrics if m.name not in JAVA_METRICS))

    def sample(self, output: str, example: dict, fmt: TextFormat = T5_STYLE) -> dict:
        """One row as ``log_samples`` keeps it, scored without the Java scorers (a JVM per row)."""
        return Task.sample(self.evaluated_on("validation"), output, example, fmt)

    def references(self, example: dict):
        """What a metric compares a prediction with: the answer."""
        return self.answer(example)

    def valid(self, prediction: str) -> bool:
        """Whether a generated text could be read as an answer at all (empty: no)."""
        return bool(normalize_vqa(prediction))


# Karpathy's COCO split, as VL-Adapter maps it onto ours: restval trains (caption_clip_data.py:84-89)
KARPATHY_SPLITS = {"train": "train", "restval": "train", "validation": "validation", "test": "test"}


def karpathy_membership(captions: dict[str, list[dict]]) -> dict[int, str]:
    """COCO image id -> our split, from the Karpathy caption rows of each of its splits."""
    return {row["cocoid"]: KARPATHY_SPLITS[split] for split, rows in captions.items() for row in rows}


@dataclass(frozen=True, kw_only=True)
class VQATask(VisionTask):
    """VQAv2 on Karpathy's split (VL-Adapter's karpathy_train/val/test, multitask.py:1105, 1212, 1296): the
    questions of VQAv2's train and validation pooled, each put where its image lies in Karpathy's COCO
    split (``karpathy_membership``; a question whose image is in none is dropped). The target is the most
    common of the 10 annotators' answers; scored by VQA accuracy."""

    karpathy_task: str = "coco-caption"  # the task whose hub rows carry Karpathy's split of COCO

    def references(self, example: dict) -> list[str]:
        return [a["answer"] for a in example["answers"]]

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        membership = karpathy_membership(raw["karpathy"])
        out: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
        for row in raw["train"] + raw["validation"]:
            if row["image_id"] in membership:
                out[membership[row["image_id"]]].append(row)
        return out

    @property
    def karpathy(self) -> VisionTask:
        """The task of this module whose rows carry Karpathy's split (looked up here: no registry cycle)."""
        return next(t for t in TASKS if t.name == self.karpathy_task)

    def load_fixtures(self) -> dict[str, list[dict]]:
        return {**super().load_fixtures(), "karpathy": self.karpathy.load_fixtures()}

    def load_hub(self) -> dict[str, list[dict]]:
        import datasets

        questions, karpathy = super().load_hub(), self.karpathy
        ids = datasets.load_dataset(karpathy.hub_path, karpathy.hub_config, columns=["cocoid"],
                                    revision=pinned(karpathy.hub_path, karpathy.revision))
        return {**questions, "karpathy": {ours: list(ids[theirs]) for ours, theirs in karpathy.hub_splits.items()}}


@dataclass(frozen=True, kw_only=True)
class NLVR2Task(VisionTask):
    """NLVR2: two images and a sentence; the target is ``true`` or ``false``, predicted by the larger of the
    two words' logits at the first decoder step (``choices``)."""

    choices: tuple[str, ...] | None = ("true", "false")

    def valid(self, prediction: str) -> bool:
        return normalize_vqa(prediction) in ("true", "false")


@dataclass(frozen=True, kw_only=True)
class CaptionTask(VisionTask):
    """COCO captioning: every reference caption of an image is a training target; CIDEr selects."""

    target_length: int = 64  # bytes under ByT5's tokenizer (tiny-t5), words otherwise: a caption fits either
    max_source_length: int = 8
    # beam 5 (the scripts' --num_beams 5), at most 40 tokens (multitask.py:1069, 844-845)
    generation: Mapping[str, int] = field(default_factory=lambda: {"num_beams": 5, "max_length": 40})

    def references(self, example: dict) -> list[str]:
        return list(example["sentences"])

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Karpathy's train, val and test, restval trained on (``KARPATHY_SPLITS``)."""
        out: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
        for split, rows in raw.items():
            out[KARPATHY_SPLITS[split]] += rows
        return out

    def training_examples(self, rows: list[dict]) -> list[dict]:
        """One example per reference caption (VL-T5 trains on every caption of an image)."""
        return [{**r, "sentences": [s]} for r in rows for s in r["sentences"]]

    @property
    def scored_metrics(self) -> tuple[str, ...]:
        """CIDEr, the paper's COCO number (BLEU-4, METEOR and SPICE, which their evaluator prints, beside it)."""
        return ("cider",)

    def images(self, example: dict) -> list[bytes]:
        """The row's image, else its URL (the Karpathy split's rows on the hub carry COCO's URLs)."""
        return [image_bytes(example.get("image") or example["url"])]


@dataclass(frozen=True, kw_only=True)
class GQATask(VisionTask):
    """GQA (balanced): questions in one hub configuration, their images in another, joined by ``imageId``.
    As VL-Adapter (multitask.py:1116, 1222): trained on train + valid, validated and tested on testdev."""

    def split(self, raw: dict[str, list[dict]]) -> dict[str, list[dict]]:
        return {"train": raw["train"] + raw["valid"], "validation": list(raw["testdev"]), "test": list(raw["testdev"])}

    def load_hub(self) -> dict[str, list[dict]]:
        import datasets

        out = {}
        for ours, theirs in self.hub_splits.items():
            rows = datasets.load_dataset(self.hub_path, f"{theirs}_balanced_instructions",
                                         revision=pinned(self.hub_path, self.revision))
            images = datasets.load_dataset(self.hub_path, f"{theirs}_balanced_images",
                                           revision=pinned(self.hub_path, self.revision))
            images = images.cast_column("image", datasets.Image(decode=False))
            by_id = {r["id"]: r["image"] for split in images.values() for r in split}
            out[ours] = [{**r, "image": by_id[r["imageId"]]} for split in rows.values() for r in split]
        return out


def vqa_answer(ex: dict) -> str:
    """The most common annotator answer (VQAv2's ``multiple_choice_answer``)."""
    return ex.get("multiple_choice_answer") or Counter(a["answer"] for a in ex["answers"]).most_common(1)[0][0]


def vqa_source(ex: dict) -> str:
    """``{"question": "What color is the shape?", …}`` -> ``What color is the shape?`` (``vqa: …`` with the prompt)"""
    return ex["question"]


def gqa_source(ex: dict) -> str:
    """``{"question": "Which side is the circle on?", …}`` -> ``Which side is the circle on?`` (``gqa: …``)"""
    return ex["question"]


def nlvr_source(ex: dict) -> str:
    """``{"sentence": "The left image has more shapes.", …}`` -> ``The left image has more shapes.`` (``nlvr: …``)"""
    return ex["sentence"]


def nlvr_answer(ex: dict) -> str:
    return "true" if str(ex["label"]).lower() in ("true", "1") else "false"


def caption_source(ex: dict) -> str:
    """Any COCO row -> the empty text (``caption:`` with the prompt): the image is the input."""
    return ""


def gqa_answer(ex: dict) -> str:
    return ex["answer"]


def caption_answer(ex: dict) -> str:
    """The first reference caption (training rows carry one each: ``training_examples``)."""
    return ex["sentences"][0]


TASKS = [
    VQATask(name="vqa", paper_name="VQAv2", prompt="vqa", version="1.0.0", hub_path="HuggingFaceM4/VQAv2",
            hub_config="default", revision=UNPINNED,
            formatter=vqa_source, answer=vqa_answer, metrics=(vqa_accuracy,),
            split_description="hub train + validation placed by each picture's Karpathy split (coco-caption's): "
                              "train (and restval) = train, val = validation, test = test"),
    GQATask(name="gqa", paper_name="GQA", prompt="gqa", version="1.0.0", hub_path="lmms-lab/GQA", hub_config="balanced",
            revision=UNPINNED,
            formatter=gqa_source, answer=gqa_answer, metrics=(accuracy,),
            hub_splits={"train": "train", "valid": "val", "testdev": "testdev"},
            split_description="train = hub train + val, validation = test = hub testdev"),
    NLVR2Task(name="nlvr2", paper_name="NLVR2", prompt="nlvr", version="1.0.0", hub_path="HuggingFaceM4/NLVR2",
              hub_config="default", revision=UNPINNED,
              formatter=nlvr_source, answer=nlvr_answer, metrics=(accuracy,),
              image_columns=("left_image", "right_image"), target_length=8, max_source_length=64,
              hub_splits={"train": "train", "validation": "validation", "test": "test"}),  # valid, test-P
    CaptionTask(name="coco-caption", paper_name="COCO Caption", prompt="caption", version="1.0.0",
                hub_path="yerevann/coco-karpathy", hub_config="default",
                revision=UNPINNED, formatter=caption_source, answer=caption_answer,
                metrics=(cider, bleu4, meteor, spice),
                hub_splits={"train": "train", "validation": "validation", "test": "test", "restval": "restval"},
                split_description="train = hub train + restval, validation = hub validation, test = hub test"),
]
