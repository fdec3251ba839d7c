"""Task mixtures: several tasks trained as one, how batches are drawn from them, and how they are scored.

A mixture trial trains one model on its member tasks. Each batch comes from one member (as
Hyperformer's ``MultiTaskBatchSampler`` does): the member is drawn with probability
``p_i ∝ n_i^(1/T)`` (``n_i`` its training examples; T = 1 is sampling proportional to size,
Hyperformer uses T = 10), then the batch is the next rows of that member's own shuffled stream (a new
permutation each time the member's rows run out): ``rows="passes"``, so no example repeats before
every other of its task ran. Hyperformer draws a batch's rows uniformly with replacement
(multitask_sampler.py:104, ``torch.randint``): ``rows="with-replacement"``.

An epoch of a mixture is as many batches as one pass over all members' training examples takes:
``ceil(Σ n_i / batch)`` (Hyperformer's ``num_batches_per_epoch``). With temperature sampling a
small member is then seen more than once an epoch and a large one less than once.

``roundrobin`` is VL-Adapter's ``MultitaskLoader`` (multitask_data.py:37-41, 53-54): each epoch every
member's rows once, in batches of the member's own size (the last one short), the batches of all
members in one shuffled order, so an epoch is ``Σ ceil(n_i / b_i)`` batches. Each member may have its
own batch size ``b_i`` (VL-Adapter's 300/500/100/250 for VQA/GQA/NLVR2/COCO, multitask.py:1052-1067);
a drawn member (temperature, proportional) then gives ``b_i`` rows and an epoch is the batches one
pass of all rows takes on average, ``ceil(Σ n_i / Σ p_i b_i)``.

The score of a mixture is by default the mean of its members' scores (each the mean of that task's
metrics). Hyperformer chooses its checkpoint by another number: the flat mean of every metric value of
every task (t5_trainer.py:262-263), where MRPC, STS-B and QQP, with two metrics each, count twice; that
is ``scoring="flat"`` (``Mixture.score``).

Pure Python, no torch: the sampler's state is plain data, saved in a trial's checkpoint.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from peftbench.tasks.base import COUNTS, FIXTURES_SOURCE, Task

SAMPLINGS = ("proportional", "temperature", "roundrobin")
ROW_SAMPLINGS = ("passes", "with-replacement")
MIXTURE_SCORES = ("per-task", "flat")


def check_mixture(name: str, members: Sequence[str], known: Sequence[str]) -> None:
    """A mixture ``name`` of ``members`` that a trial can run, or a one-line ``ValueError``: two or
    more distinct known tasks, under a name that is no task's."""
    if isinstance(members, str) or not isinstance(members, Sequence) or not members:
        raise ValueError(f"expected a list of two or more tasks, got {members!r}")
    if len(members) < 2:
        raise ValueError(f"a mixture needs two or more tasks, got only {members[0]!r} (run it as a task)")
    for member in members:
        if member not in known:
            raise ValueError(f"unknown task {member!r} (known: {', '.join(known)})")
    repeated = [m for i, m in enumerate(members) if m in members[:i]]
    if repeated:
        raise ValueError(f"{repeated[0]} is in the mixture twice")
    if name in known:
        raise ValueError(f"{name!r} is the name of a task; name the mixture otherwise")


def sampling_probabilities(sizes: Sequence[int], *, sampling: str, temperature: float,
                           batches: Sequence[int] | None = None) -> list[float]:
    """Each member's chance to give the next batch: ``n_i^(1/T) / Σ_j n_j^(1/T)``; ``proportional`` is T = 1;
    ``roundrobin``, its share of an epoch's batches, ``ceil(n_i / b_i)`` of ``Σ_j ceil(n_j / b_j)``
    (``batches``: each member's batch ``b_i``; none given, one batch for all: in proportion to ``n_i``).

    Hyperformer's ``generate_tasks_distribution`` normalises ``(n_i / Σn)^(1/T)``: the same numbers.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if any(n < 1 for n in sizes):
        raise ValueError(f"every member needs training examples, got sizes {list(sizes)}")
    if sampling == "temperature" and not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if sampling == "roundrobin":
        counts = [n if batches is None else math.ceil(n / b) for n, b in zip(sizes, batches or sizes, strict=True)]
        return [c / sum(counts) for c in counts]
    power = 1.0 if sampling == "proportional" else 1.0 / temperature  # inf for T below ~1e-308
    # (log n_i - log n_max) / T, never above 0: n^(1/T) of a large task at small T cannot overflow, and
    # a T so small that 1/T is inf gives the largest members all the mass (the limit), not NaN
    top = max(math.log(n) for n in sizes)
    weights = [1.0 if math.log(n) == top else math.exp((math.log(n) - top) * power) for n in sizes]
    probabilities = [w / sum(weights) for w in weights]
    if not all(math.isfinite(p) for p in probabilities) or abs(sum(probabilities) - 1) > 1e-9:
        raise ValueError(f"sampling probabilities {probabilities} are not a distribution")
    return probabilities


def epoch_batches(sizes: Sequence[int], batches: Sequence[int], *, sampling: str,
                  probabilities: Sequence[float], min_rows: int = 1) -> int:
    """Batches in one epoch of members of ``sizes`` rows at ``batches`` rows a batch (each member's):
    a single task's ``ceil(n / b)``; ``roundrobin``'s ``Σ ceil(n_i / b_i)`` less the last batches under
    ``min_rows`` rows (left out); a drawn member's ``ceil(Σ n_i / b)``, or with a batch per member the
    batches a pass over all rows takes on average, ``ceil(Σ n_i / Σ p_i b_i)``."""
    if sampling == "roundrobin" and len(sizes) > 1:
        return sum(len(_chunks(n, b, min_rows)) for n, b in zip(sizes, batches, strict=True))
    if len(set(batches)) == 1:  # integers only: the expected-batch float below could round 10 to 11
        return math.ceil(sum(sizes) / batches[0])
    return math.ceil(sum(sizes) / sum(p * b for p, b in zip(probabilities, batches, strict=True)))


def _chunks(size: int, batch: int, min_rows: int) -> list[range]:
    """Positions ``0 … size-1`` in batches of ``batch``, a last one under ``min_rows`` rows left out."""
    return [range(i, min(i + batch, size)) for i in range(0, size - min_rows + 1, batch)]


def per_member(batch: int | Sequence[int], members: int) -> list[int]:
    """One batch size for each of ``members``: ``batch`` itself when it is one per member."""
    return [batch] * members if isinstance(batch, int) else list(batch)


@dataclass(frozen=True)
class Mixture:
    """Several tasks trained as one model: the name the grid knows it by, its members in order, and how
    its score is made (``score``)."""

    name: str
    members: tuple[Task, ...]
    scoring: str = "per-task"  # one of MIXTURE_SCORES

    @property
    def member_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.members)

    @property
    def epochs(self) -> int:
        """Epochs when a spec gives none: the largest of its members' own (the paper's)."""
        return max(t.epochs for t in self.members)

    @property
    def metric_directions(self) -> dict[str, str]:
        """Every member's metrics by name and direction (a name is one registered metric)."""
        return {name: d for t in self.members for name, d in t.metric_directions.items()}

    @property
    def scored_metrics(self) -> list[str]:
        """The metrics a member's score averages, of every member (the mixture's score: their scores' mean)."""
        return list(dict.fromkeys(name for t in self.members for name in t.scored_metrics))

    @property
    def score_direction(self) -> str:
        """Which way the mean of the members' scores is better: the members' one direction."""
        directions = {t.score_direction for t in self.members}
        if len(directions) != 1:
            raise ValueError(f"{self.name}: its members' scores go both ways; their mean would mean nothing")
        return directions.pop()

    def by_member(self, metrics: Mapping) -> Mapping[str, Mapping[str, float]]:
        """``metrics`` as records hold them (a mixture's: member -> its metrics; a single task's, a mixture
        of one: its own) keyed by member."""
        return {self.members[0].name: metrics} if len(self.members) == 1 else metrics

    def recorded(self, by_member: Mapping[str, Mapping[str, float]]) -> Mapping:
        """Metrics keyed by member as records hold them: ``by_member``'s inverse."""
        return by_member[self.members[0].name] if len(self.members) == 1 else dict(by_member)

    def score(self, metrics: Mapping) -> float:
        """The mixture's one number, ``metrics`` as records hold them (``by_member``): ``per-task``, the mean
        over members of each member's score; ``flat``, the mean of every member's scored metric values
        together (Hyperformer's t5_trainer.py:262-263), where a task with two metrics (MRPC, STS-B, QQP)
        counts twice. The two differ whenever members score different numbers of metrics."""
        by_member = self.by_member(metrics)
        if self.scoring == "flat":
            values = [v for t in self.members for k, v in by_member[t.name].items()
                      if k not in COUNTS and k in t.scored_metrics]
            return sum(values) / len(values)
        return sum(t.score(by_member[t.name]) for t in self.members) / len(self.members)

    def order(self, sizes: Sequence[int], probabilities: Sequence[float], *, seed: int, min_rows: int = 1,
              sampling: str = "temperature", rows: str = "passes") -> ShuffledPasses | MixtureSampler | RoundRobin:
        """The training data's order for ``seed``: a single task's rows shuffled afresh each epoch, a
        mixture's sampled batches, or its members' batches round-robin (``sampling``). Each gives
        ``epoch(batch)`` and a plain-data ``getstate``/``setstate``."""
        if len(self.members) == 1:
            return ShuffledPasses(sizes[0], seed=seed, min_rows=min_rows)
        if sampling == "roundrobin":
            return RoundRobin(sizes, seed=seed, min_rows=min_rows)
        return MixtureSampler(sizes, probabilities, seed=seed, replacement=rows == "with-replacement")


def mixture_source(sources: Mapping[str, str]) -> str:
    """One ``data_source`` for a mixture (a single task's own): ``fixtures`` when every member read its
    fixtures, else each member's own, ``task=source`` joined by ``; `` (hub revisions differ per task)."""
    if len(sources) == 1:  # a single task: its own source
        return next(iter(sources.values()))
    if all(s == FIXTURES_SOURCE for s in sources.values()):
        return FIXTURES_SOURCE
    return "; ".join(f"{task}={source}" for task, source in sources.items())


class _Stream:
    """One member's rows, endlessly: a fresh permutation each pass. Its state is the RNG's state before
    the current permutation was drawn and the position in it (the permutation itself is drawn again)."""

    def __init__(self, size: int, rng: random.Random):
        self.size, self.rng = size, rng
        self._new_pass()

    def _new_pass(self) -> None:
        self.drawn_from = self.rng.getstate()
        self.order = list(range(self.size))
        self.rng.shuffle(self.order)
        self.pos = 0

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.pos == self.size:
                self._new_pass()
            chunk = self.order[self.pos : self.pos + k - len(out)]
            out += chunk
            self.pos += len(chunk)
        return out

    def getstate(self) -> dict:
        return {"rng": self.drawn_from, "pos": self.pos}

    def setstate(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self._new_pass()
        self.pos = state["pos"]


class MixtureSampler:
    """Batches of a mixture: per batch a member drawn by ``probabilities``, then the next ``batch``
    row indices of that member's own shuffled stream, or, with ``replacement``, ``batch`` rows drawn
    uniformly with replacement (Hyperformer's multitask_sampler.py:104).

    Deterministic for a seed, and resumable: ``getstate()`` is plain data (tuples, ints), and a sampler
    given it with ``setstate`` continues with exactly the batches the first would have drawn. A member
    with fewer rows than a batch repeats rows within the batch.
    """

    def __init__(self, sizes: Sequence[int], probabilities: Sequence[float], *, seed: int,
                 replacement: bool = False):
        if len(sizes) != len(probabilities) or not sizes:
            raise ValueError(f"{len(sizes)} members but {len(probabilities)} probabilities")
        self.sizes, self.probabilities, self.replacement = list(sizes), list(probabilities), replacement
        self._cumulative = list(itertools.accumulate(probabilities))
        self._choice = random.Random(seed)
        self._streams = [_Stream(n, random.Random(f"{seed}/{i}")) for i, n in enumerate(sizes)]
        self._rows = random.Random(f"{seed}/rows")  # with replacement: the rows' own RNG

    def batches_per_epoch(self, batch: int | Sequence[int]) -> int:
        return epoch_batches(self.sizes, per_member(batch, len(self.sizes)), sampling="temperature",
                             probabilities=self.probabilities)

    def draw(self) -> int:
        """The member that gives the next batch (an index into ``sizes``)."""
        u = self._choice.random() * self._cumulative[-1]
        return min(bisect.bisect_right(self._cumulative, u), len(self.sizes) - 1)

    def epoch(self, batch: int | Sequence[int]) -> Iterator[tuple[int, list[int]]]:
        """One epoch: ``(member, row indices)`` for each of ``batches_per_epoch(batch)`` batches, a
        member's batch ``batch`` rows (or its own entry of ``batch``, one per member)."""
        batches = per_member(batch, len(self.sizes))
        for _ in range(self.batches_per_epoch(batches)):
            member = self.draw()
            if self.replacement:
                yield member, [self._rows.randrange(self.sizes[member]) for _ in range(batches[member])]
            else:
                yield member, self._streams[member].take(batches[member])

    def getstate(self) -> dict:
        return {"choice": self._choice.getstate(), "streams": [s.getstate() for s in self._streams],
                "rows": self._rows.getstate()}

    def setstate(self, state: dict) -> None:
        if len(state["streams"]) != len(self._streams):
            raise ValueError(f"a sampler state of {len(state['streams'])} members for {len(self._streams)}")
        self._choice.setstate(state["choice"])
        for stream, saved in zip(self._streams, state["streams"], strict=True):
            stream.setstate(saved)
        if "rows" in state:  # a checkpoint from before sampling with replacement: its rows' RNG unused
            self._rows.setstate(state["rows"])


class RoundRobin:
    """A mixture's batches as VL-Adapter's ``MultitaskLoader`` (``roundrobin``, multitask_data.py:37-41,
    53-54): each epoch every member's rows once, freshly shuffled, in batches of its own size (the last
    one short; one under ``min_rows`` rows left out), all members' batches in one shuffled order. One RNG
    of ``seed`` draws everything at the epoch's start, so its state after an epoch is the next one's."""

    def __init__(self, sizes: Sequence[int], *, seed: int, min_rows: int = 1):
        self.sizes, self.min_rows = list(sizes), min_rows
        self.rng = random.Random(seed)

    def batches_per_epoch(self, batch: int | Sequence[int]) -> int:
        return epoch_batches(self.sizes, per_member(batch, len(self.sizes)), sampling="roundrobin",
                             probabilities=[], min_rows=self.min_rows)

    def epoch(self, batch: int | Sequence[int]) -> Iterator[tuple[int, list[int]]]:
        """One epoch: ``(member, row indices)`` for each batch of every member."""
        planned = []
        for member, (size, rows) in enumerate(zip(self.sizes, per_member(batch, len(self.sizes)), strict=True)):
            order = list(range(size))
            self.rng.shuffle(order)
            planned += [(member, [order[i] for i in chunk]) for chunk in _chunks(size, rows, self.min_rows)]
        self.rng.shuffle(planned)
        yield from planned

    def getstate(self) -> tuple:
        return self.rng.getstate()

    def setstate(self, state: tuple) -> None:
        self.rng.setstate(state)


class ShuffledPasses:
    """A single task's batches (a mixture of one): each epoch one pass over its rows in a fresh shuffle
    by one RNG of ``seed``, a last batch under ``min_rows`` rows left out (``engine.batches``'s order)."""

    def __init__(self, size: int, *, seed: int, min_rows: int = 1):
        self.size, self.min_rows = size, min_rows
        self.rng = random.Random(seed)

    def epoch(self, batch: int | Sequence[int]) -> Iterator[tuple[int, list[int]]]:
        """One pass: ``(0, row indices)`` per batch."""
        batch = per_member(batch, 1)[0]
        order = list(range(self.size))
        self.rng.shuffle(order)
        for i in range(0, self.size - self.min_rows + 1, batch):
            yield 0, order[i : i + batch]

    def getstate(self) -> tuple:
        return self.rng.getstate()

    def setstate(self, state: tuple) -> None:
        self.rng.setstate(state)
