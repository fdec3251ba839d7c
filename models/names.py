"""Model names checked without torch: which names are known offline, where a name loads from, and why one
cannot load. Every command answers a model-name mistake from here in one line, before torch and transformers
load (their import alone takes seconds), so an uncached hub id offline is refused in about the hub probe's second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peftbench.models import tinyt5
from peftbench.models.spec import ModelSpec, Ref

TINY_T5 = "tiny-t5"
TINY_BART = "tiny-bart"
T5_SIZES = {  # name: (d_model, d_ff, d_kv, num_heads, num_layers)
    "t5-small": (512, 2048, 64, 8, 6),
    "t5-base": (768, 3072, 64, 12, 12),
    "t5-large": (1024, 4096, 64, 16, 24),
    "t5-3b": (1024, 16384, 128, 32, 24),
    "t5-11b": (1024, 65536, 128, 128, 24),
}
BART_BASE = "bart-base"  # facebook/bart-base: its configuration is known offline (models/load.py)

# Image and video encoders by name (models/encoders.py builds them)
TINY_CLIP = "tiny-clip"
CLIP_RN101 = "clip-rn101"
TINY_CLIP_VIT = "tiny-clip-vit"
CLIP_VIT = "clip-vit"
VIDEO_ENCODERS = (TINY_CLIP_VIT, CLIP_VIT)

# Models that ship inside peftbench, by name: loaded from their folder like any local checkpoint.
PACKAGED = {tinyt5.PRETRAINED: tinyt5.pretrained_path}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def t5_size(name: str) -> str | None:
    """The original T5 size ``name`` stands for (``t5-base`` or ``google-t5/t5-base``), else None."""
    size = name.removeprefix("google-t5/")
    return size if size in T5_SIZES else None


def is_bart_base(name: str) -> bool:
    return name.removeprefix("facebook/") == BART_BASE


def known_offline(name: str) -> bool:
    """Whether ``name``'s configuration is known without files: the tiny models, the T5 sizes, bart-base."""
    return name in (TINY_T5, TINY_BART) or t5_size(name) is not None or is_bart_base(name)


def location(ref: Ref) -> tuple[str, str | None]:
    """(hub id or folder, revision) to load ``ref`` from; a packaged model's name stands for its folder."""
    if ref.repo in PACKAGED:
        return str(PACKAGED[ref.repo]()), None
    return ref.repo, ref.revision


def check_encoder(name: str) -> str | None:
    """Why ``name`` is no image encoder (None: it is one, as far as can be told offline)."""
    if name in (TINY_CLIP, CLIP_RN101, *VIDEO_ENCODERS):
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name.partition("@")[0])
    except HFValidationError:
        return f"{name!r} is no image encoder (tiny-clip, clip-rn101 or a hub id of a CLIP model)"
    return None


def model_problem(name: str | ModelSpec, *, probe: Callable[[], object] | None = None) -> str | None:
    """Why ``name`` cannot be loaded, checked before anything starts (None: it can be, as far as
    this machine can tell). Known names (tiny-t5, the original T5 sizes) pass; a local folder needs
    its ``config.json`` and weights; offline, a hub id must be in the local cache; online, a
    well-formed hub id is trusted (checking it would need the network). ``probe()`` runs before a
    hub id is looked up: the hub probe (tasks/hub.py), which turns offline mode on, in about a
    second, where the hub cannot be reached."""
    try:
        spec = ModelSpec.parse(name)
    except ValueError as exc:
        return str(exc)
    if spec.encoder:
        return check_encoder(str(spec.encoder)) or model_problem(spec.text)
    repo, revision = location(spec.backbone)
    if known_offline(str(spec)) or t5_size(repo):
        return None
    path = Path(repo).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            return f"{path} has no config.json (not a model folder)"
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            return f"{path} has no weights ({' or '.join(WEIGHT_FILES[::2])})"
        return None
    from huggingface_hub import constants, try_to_load_from_cache  # a hub id: known names never import it
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        return f"{repo} is neither a folder nor a hub id"
    if probe is not None:
        probe()
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str):
        return f"{name} is not in the local hub cache, and the hub is offline (HF_HUB_OFFLINE)"
    return None
