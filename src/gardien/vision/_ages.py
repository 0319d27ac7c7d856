"""Age bins: reading them, and turning a distribution over them into an :class:`AgeEstimate`.

A bin is a range of whole years with both ends included, ``(3, 9)`` meaning 3 to 9 years old,
that is ages in [3, 10); the last bin may be open, ``(70, None)``. Within a bin the probability
mass is taken as spread evenly over its years, so P(under 18) from a ``(10, 19)`` bin is 8/10 of
its mass; an open bin is counted as OPEN_BIN_YEARS wide.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import TypeGuard

import numpy as np
import numpy.typing as npt

from gardien.vision.signals import AgeEstimate, Region, VisionError

AgeBin = tuple[int, int | None]

#: Limits for which every estimate carries P(age < limit). The image guard reads its
#: ``challenge_age`` (25) from here; another limit falls back to the point estimate.
DEFAULT_LIMITS: tuple[int, ...] = (13, 16, 18, 21, 25, 30)
#: Width, in years, given to an open last bin ("70+") for its midpoint and its split.
OPEN_BIN_YEARS = 20
#: Oldest apparent age a regression model may report; larger outputs are clipped to it.
MAX_AGE = 120.0


def checked_bins(raw: Iterable[object], who: str) -> tuple[AgeBin, ...]:
    """Bins as given (``[[0, 2], [3, 9], [70, null]]``), checked: whole years, no overlap."""
    bins: list[AgeBin] = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise VisionError(f"{who}: age bin {item!r} is not a (low, high) pair")
        low, high = item
        if not _whole(low) or not (high is None or _whole(high)):
            raise VisionError(f"{who}: age bin {item!r} needs whole years (high may be null)")
        b: AgeBin = (int(low), None if high is None else int(high))
        if b[0] < 0 or (b[1] is not None and b[1] < b[0]):
            raise VisionError(f"{who}: age bin {item!r} is not a range of ages")
        bins.append(b)
    if not bins:
        raise VisionError(f"{who}: no age bins")
    ordered = sorted(bins, key=lambda b: b[0])
    for before, after in itertools.pairwise(ordered):
        if before[1] is None or after[0] <= before[1]:
            raise VisionError(f"{who}: age bins {before} and {after} overlap")
    return tuple(bins)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_MORE = ("+", "more", "over", "above", "older", ">", "plus", "and up")
_LESS = ("less", "under", "below", "younger", "<")


def bin_from_label(label: str, who: str) -> AgeBin:
    """An age range from a class label: "0-2", "10 to 19", "(25, 32)", "70+", "more than 70"."""
    numbers = [int(n) for n in re.findall(r"\d+", label)]
    text = label.lower()
    if len(numbers) == 2 and numbers[0] <= numbers[1]:
        return (numbers[0], numbers[1])
    if len(numbers) == 1:
        (n,) = numbers
        if any(word in text for word in _MORE):
            return (n, None)
        if any(word in text for word in _LESS):
            if n == 0:
                raise VisionError(f"{who}: label {label!r} is not an age range")
            return (0, n - 1)
        return (n, n)
    raise VisionError(f"{who}: cannot read an age range from label {label!r}")


def _span(b: AgeBin) -> tuple[float, float]:
    """The bin as continuous ages [low, high)."""
    low, high = b
    return float(low), float(low + OPEN_BIN_YEARS if high is None else high + 1)


def from_probabilities(
    probabilities: npt.NDArray[np.float64],
    bins: Sequence[AgeBin],
    limits: Sequence[int],
    region: Region | None,
    estimator: str,
) -> AgeEstimate:
    """The estimate from one distribution over ``bins``: expected age, mass under each limit."""
    spans = [_span(b) for b in bins]
    p = [float(x) for x in probabilities]
    age = sum(pi * (low + high) / 2 for pi, (low, high) in zip(p, spans, strict=True))
    p_under: dict[int, float] = {}
    for limit in limits:
        mass = 0.0
        for pi, (low, high) in zip(p, spans, strict=True):
            if high <= limit:
                mass += pi
            elif low < limit:
                mass += pi * (limit - low) / (high - low)
        p_under[int(limit)] = min(1.0, max(0.0, mass))
    return AgeEstimate(age=age, p_under=p_under, region=region, estimator=estimator)


def from_age(
    age: float, limits: Sequence[int], region: Region | None, estimator: str
) -> AgeEstimate:
    """The estimate from a regression: a point, so each P(under limit) is 1 or 0."""
    age = min(MAX_AGE, max(0.0, float(age)))
    p_under = {int(limit): 1.0 if age < limit else 0.0 for limit in limits}
    return AgeEstimate(age=age, p_under=p_under, region=region, estimator=estimator)


def checked_distribution(
    rows: npt.NDArray[np.float64], kind: str, who: str
) -> npt.NDArray[np.float64]:
    """Rows of probabilities from ``logits`` (softmax) or ``probabilities`` (checked as such)."""
    if not np.isfinite(rows).all():
        raise VisionError(f"{who}: the model produced NaN or infinite values")
    if kind == "logits":
        shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
        out: npt.NDArray[np.float64] = shifted / shifted.sum(axis=1, keepdims=True)
        return out
    if (rows < -1e-6).any() or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        raise VisionError(
            f"{who}: output is not probabilities (negative, or rows not summing to 1); "
            "set output to 'logits' if the model has no softmax"
        )
    return np.clip(rows, 0.0, 1.0)


def checked_limits(limits: Iterable[object], who: str) -> tuple[int, ...]:
    out = []
    for limit in limits:
        if not _whole(limit) or not 0 < limit <= MAX_AGE:
            raise VisionError(f"{who}: age limit {limit!r} is not a whole number of years")
        out.append(limit)
    return tuple(sorted(set(out)))
