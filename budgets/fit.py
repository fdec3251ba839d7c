"""What a budget search answers: the batch that fits, its peak memory, and how that was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Of the peak's categories, these grow with the batch; the rest (parameters, gradients, optimizer
# state, buffers) is the same at any batch.
PER_EXAMPLE = ("activations", "temporaries")


@dataclass(frozen=True)
class Fit:
    """The largest batch under a budget (or the batch asked about) and its peak memory.

    ``categories`` split the peak (parameters, gradients, optimizer state, activations, ...);
    ``fixed_bytes + bytes_per_example * batch_size`` is the peak. ``estimated`` is False only for
    peaks measured on a GPU; ``how`` names the method.
    """

    batch_size: int
    peak_bytes: int
    fixed_bytes: float
    bytes_per_example: float
    estimated: bool
    how: str
    probes: int = 0
    categories: dict = field(default_factory=dict)

    @classmethod
    def at_peak(cls, batch_size: int, categories: dict[str, int], *, peak_bytes: int | None = None,
                peaks: dict[int, int | None] | None = None, **rest) -> Fit:
        """From the categories at the peak; ``peak_bytes`` where it was measured apart from them.

        The line's slope comes from ``peaks`` (batch -> peak of the probes made) where two batches have
        one: the two farthest apart. Without them, from the categories that grow with the batch, which
        counts as per example whatever else is activation-like (Intrinsic-SAID's projections).
        """
        peak = sum(categories.values()) if peak_bytes is None else peak_bytes
        known = sorted((b, p) for b, p in (peaks or {}).items() if p is not None)
        if len(known) >= 2:
            (b0, p0), (b1, p1) = known[0], known[-1]
            per_example = (p1 - p0) / (b1 - b0)
        else:
            per_example = sum(categories.get(k, 0) for k in PER_EXAMPLE) / batch_size
        return cls(batch_size=batch_size, peak_bytes=peak, fixed_bytes=peak - per_example * batch_size,
                   bytes_per_example=per_example, categories=dict(categories), **rest)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Fit:
        """A fit read back from a file (a cache): ValueError unless every field is there with its type."""
        kinds = {"batch_size": int, "peak_bytes": int, "fixed_bytes": (int, float), "bytes_per_example": (int, float),
                 "estimated": bool, "how": str, "probes": int, "categories": dict}
        if not isinstance(data, dict) or set(data) != set(kinds):
            raise ValueError(f"a fit has the fields {', '.join(kinds)}")
        wrong = [k for k, kind in kinds.items()
                 if not isinstance(data[k], kind) or (kind is int and isinstance(data[k], bool))]
        numbers = data["categories"].values() if isinstance(data["categories"], dict) else ()
        if wrong or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise ValueError(f"a fit's {', '.join(wrong) or 'categories'} have the wrong type")
        return cls(**data)
