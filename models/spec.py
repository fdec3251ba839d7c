"""A model name, parsed once at the edge into what it names.

    tiny-t5                           a T5 built from a config (no files)
    google-t5/t5-base@<commit>        a hub id pinned to a revision; a local folder; a packaged model
    t5-base+clip-rn101                VL-T5: that T5 reading the image encoder's frozen features
    t5-base@<rev>+ID@<rev>            each part pinned on its own

Everything below (loading, configs, the budget's probes, the feature cache) takes a ``ModelSpec``;
the string form (``str(spec)``) is what specs, records and trial ids show. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Ref:
    """One part of a model name: a known name, a hub id or a folder, and the revision it is pinned to."""

    repo: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        repo, _, revision = text.strip().partition("@")
        if not repo:
            raise ValueError(f"model name {text!r} names nothing before '@'")
        return cls(repo, revision or None)

    def __str__(self) -> str:
        return f"{self.repo}@{self.revision}" if self.revision else self.repo


@dataclass(frozen=True)
class ModelSpec:
    """What a model name names: the text backbone and, for a vision-and-language model, its image encoder."""

    backbone: Ref
    encoder: Ref | None = None

    @classmethod
    def parse(cls, name: str | ModelSpec) -> ModelSpec:
        """``BACKBONE[@REV][+ENCODER[@REV]]``; a ``ModelSpec`` is returned as it is."""
        if isinstance(name, ModelSpec):
            return name
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"model name {name!r}: expected a non-empty string")
        backbone, plus, encoder = name.strip().partition("+")
        if plus and not encoder:
            raise ValueError(f"model name {name!r}: nothing after '+' (expected BACKBONE+ENCODER)")
        return cls(Ref.parse(backbone), Ref.parse(encoder) if plus else None)

    @property
    def is_vl(self) -> bool:
        return self.encoder is not None

    @property
    def text(self) -> ModelSpec:
        """The backbone alone (the text model a VL model is built on)."""
        return replace(self, encoder=None)

    def with_encoder(self, encoder: str) -> ModelSpec:
        """This model reading ``encoder``'s features, unless its name already chose an encoder."""
        return self if self.encoder else replace(self, encoder=Ref.parse(encoder))

    def __str__(self) -> str:
        return f"{self.backbone}+{self.encoder}" if self.encoder else str(self.backbone)
