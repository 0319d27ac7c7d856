"""The image guard: nudity and apparent age, with the prompt's signals, into one verdict.

``sexual/minors`` is raised when sexual signals coincide with a possible minor. A person counts
as a possible minor when an age model puts them under ``challenge_age`` (25 by default, like a
shop's "Challenge 25": apparent age is a rough measure, so the margin is wide), or when the prompt
that produced the image refers to a minor. When the age can't be read (no age model, a model that
failed, or no face in the image) explicit nudity is counted as if a minor might be present: the
guard fails closed. Detector errors and undecodable images are findings, and give the policy's
``on_error`` decision (``review`` or ``block``), never ``allow``.

Scores: ``sexual`` is the highest explicit signal score, or a suggestive one times
SUGGESTIVE_WEIGHT; ``minors`` the highest probability of an age under the limit (or the prompt's
``minors`` score); ``sexual/minors`` the lower of the two when both are present.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

from gardien.core.categories import CATEGORIES, MINORS, SEXUAL, SEXUAL_MINORS
from gardien.core.errors import GardienError
from gardien.core.policy import Policy, load_policy
from gardien.core.verdict import Decision, Finding, Verdict
from gardien.media import DEFAULT_MAX_PIXELS, MediaError, RGBArray, decode_image, read_media
from gardien.vision.provenance import ProvenanceReader, read_provenance
from gardien.vision.signals import AgeEstimate, AgeEstimator, ImageDetector, Region, Signal

Strength = Literal["explicit", "suggestive", "face", "ignore"]
_STRENGTHS: tuple[str, ...] = ("explicit", "suggestive", "face", "ignore")

#: Weight of a suggestive signal's score in ``sexual``.
SUGGESTIVE_WEIGHT = 0.6
#: An apparent age under this counts as a possible minor.
CHALLENGE_AGE = 25
#: Detector score below which a signal is not counted (kept as a finding only if above NOTED).
MIN_SIGNAL_SCORE = 0.25
#: ``minors`` score given to explicit nudity whose age can't be read.
UNKNOWN_AGE = 1.0
#: At most this many findings of each signal name are listed (the rest are counted).
MAX_FINDINGS_PER_SIGNAL = 16


class SignalMapError(GardienError):
    """The signal map (what detector signals mean) is malformed."""


def load_signal_map(path: Path | None = None) -> dict[str, Strength]:
    """The bundled signal map, or a TOML file with the same schema."""
    if path is None:
        raw = resources.files("gardien.vision").joinpath("signal_map.toml").read_text("utf-8")
        source = "bundled signal_map.toml"
    else:
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SignalMapError(f"{path}: cannot read: {exc}") from None
        source = str(path)
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise SignalMapError(f"{source}: not valid TOML: {exc}") from None
    signals = data.get("signals")
    if not isinstance(signals, dict):
        raise SignalMapError(f"{source}: needs a [signals] table")
    out: dict[str, Strength] = {}
    for name, strength in signals.items():
        if strength not in _STRENGTHS:
            raise SignalMapError(
                f"{source}: signals.{name}: {strength!r} is not one of {', '.join(_STRENGTHS)}"
            )
        out[name] = strength
    return out


@dataclass(frozen=True)
class ImageInput:
    """An image to check: a path, encoded bytes, or an already decoded RGB array."""

    data: Path | bytes | RGBArray
    name: str = "<image>"


class ImageGuard:
    """Checks images with the given detectors and (optionally) an age estimator.

    ``provenance`` readers (:mod:`gardien.vision.provenance`) add their findings to each verdict
    of an image that decoded; they never change its decision or scores.
    """

    def __init__(
        self,
        detectors: Sequence[ImageDetector] = (),
        *,
        age_estimator: AgeEstimator | None = None,
        policy: Policy | str | Path = "generation",
        signal_map: dict[str, Strength] | None = None,
        challenge_age: int = CHALLENGE_AGE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        prompt_guard: object | None = None,
        provenance: Sequence[ProvenanceReader] = (),
    ) -> None:
        self.detectors = list(detectors)
        self.age_estimator = age_estimator
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.signal_map = signal_map if signal_map is not None else load_signal_map()
        self.challenge_age = challenge_age
        self.max_pixels = max_pixels
        self._prompt_guard = prompt_guard
        #: Readers whose findings (C2PA, watermarks) are added to verdicts; never to decisions.
        self.provenance = list(provenance)

    # -- entry points

    def check(
        self,
        image: Path | bytes | RGBArray,
        *,
        prompt: str | None = None,
        negative_prompt: str = "",
        prompt_verdict: Verdict | None = None,
        name: str | None = None,
    ) -> Verdict:
        """The verdict on one image. Never raises for a bad image or a failing detector."""
        label = name or (str(image) if isinstance(image, Path) else "<image>")
        if prompt_verdict is None and prompt is not None:
            prompt_verdict = self._screen_prompt(prompt, negative_prompt)
        try:
            data, pixels = self._decode(image, label)
        except MediaError as exc:
            undecodable = _error(f"cannot decode image: {exc}", "undecodable")
            return self._failed([undecodable], prompt_verdict)
        try:
            verdict = self._check_pixels(pixels, prompt_verdict)
        except Exception as exc:  # a bug must not fail open either
            detail = f"image guard error: {type(exc).__name__}: {exc}"
            verdict = self._failed([_error(detail)], prompt_verdict)
        if not self.provenance:
            return verdict
        found = read_provenance(self.provenance, data, pixels)  # findings only: same decision
        return replace(verdict, findings=verdict.findings + tuple(found))

    def check_many(
        self, images: Iterable[Path | bytes | RGBArray], **kwargs: object
    ) -> list[Verdict]:
        return [self.check(image, **kwargs) for image in images]  # type: ignore[arg-type]

    def error_verdict(self, detail: str, *, prompt_verdict: Verdict | None = None) -> Verdict:
        """The verdict on an image that could not be checked at all (an integration could not
        turn a pipeline's output into pixels): the policy's ``on_error``, never ``allow``."""
        return self._failed([_error(detail)], prompt_verdict)

    # -- steps

    def _decode(self, image: Path | bytes | RGBArray, name: str) -> tuple[bytes | None, RGBArray]:
        """The file's bytes (for provenance; None for an array) and its pixels."""
        if isinstance(image, Path):
            data = read_media(image)
            return data, decode_image(data, name=name, max_pixels=self.max_pixels)
        if isinstance(image, bytes | bytearray | memoryview):
            data = bytes(image)
            return data, decode_image(data, name=name, max_pixels=self.max_pixels)
        return None, _checked_array(image, name, self.max_pixels)

    def _screen_prompt(self, prompt: str, negative_prompt: str) -> Verdict:
        if self._prompt_guard is None:
            from gardien.text import PromptGuard

            self._prompt_guard = PromptGuard()
        return self._prompt_guard.check(prompt, negative_prompt)  # type: ignore[attr-defined, no-any-return]

    def _check_pixels(self, pixels: RGBArray, prompt_verdict: Verdict | None) -> Verdict:
        findings: list[Finding] = []
        errors = False
        signals: list[Signal] = []
        for detector in self.detectors:
            name = getattr(detector, "name", type(detector).__name__)
            try:
                found = detector.detect(pixels)
                signals.extend(_checked_signals(found, name))
            except Exception as exc:
                errors = True
                findings.append(_error(f"detector {name!r} failed: {type(exc).__name__}: {exc}"))
        sexual, explicit, sexual_findings = self._sexual(signals)
        findings.extend(sexual_findings)
        faces = [
            s.region
            for s in signals
            if s.region is not None
            and self.signal_map.get(s.name) == "face"
            and s.score >= MIN_SIGNAL_SCORE
        ]
        minors, age_known, age_findings, age_error = self._minors(pixels, faces)
        errors = errors or age_error
        findings.extend(age_findings)
        if prompt_verdict is not None:
            prompt_minors = prompt_verdict.category_scores.get(MINORS, 0.0)
            if prompt_minors > minors:
                minors = prompt_minors
                findings.append(
                    _rule(MINORS, prompt_minors, "the prompt refers to a minor", "prompt")
                )
        if explicit and not age_known and minors < UNKNOWN_AGE:
            minors = UNKNOWN_AGE
            why = "no age model" if self.age_estimator is None else "no apparent age could be read"
            findings.append(
                _rule(
                    MINORS,
                    UNKNOWN_AGE,
                    f"explicit nudity and {why}: counted as a possible minor (fail closed)",
                    "unknown_age",
                )
            )
        scores = {SEXUAL: sexual, MINORS: minors, SEXUAL_MINORS: 0.0}
        if sexual > 0 and minors > 0:
            scores[SEXUAL_MINORS] = min(sexual, minors)
            findings.append(
                _rule(
                    SEXUAL_MINORS,
                    scores[SEXUAL_MINORS],
                    "sexual content with a possible minor",
                    "sexual+minor",
                )
            )
        if prompt_verdict is not None:
            carried = prompt_verdict.category_scores.get(SEXUAL_MINORS, 0.0)
            if carried > scores[SEXUAL_MINORS]:
                scores[SEXUAL_MINORS] = carried
                findings.append(
                    _rule(SEXUAL_MINORS, carried, "the prompt asked for sexual/minors", "prompt")
                )
        decision = self.policy.decide(scores)
        if prompt_verdict is not None:
            decision = Decision.strictest(decision, prompt_verdict.decision)
        if errors:
            decision = Decision.strictest(decision, self.policy.on_error)
        return Verdict(
            decision=decision,
            category_scores={c: scores.get(c, 0.0) for c in CATEGORIES},
            findings=tuple(findings),
            policy=self.policy.name,
        )

    def _sexual(self, signals: list[Signal]) -> tuple[float, bool, list[Finding]]:
        score, explicit = 0.0, False
        findings: list[Finding] = []
        shown: dict[str, int] = {}
        for s in sorted(signals, key=lambda s: -s.score):
            strength = self.signal_map.get(s.name)
            if s.score < MIN_SIGNAL_SCORE:
                continue
            weight = {"explicit": 1.0, "suggestive": SUGGESTIVE_WEIGHT}.get(strength or "", 0.0)
            if weight:
                score = max(score, s.score * weight)
                explicit = explicit or strength == "explicit"
            shown[s.name] = shown.get(s.name, 0) + 1
            if shown[s.name] <= MAX_FINDINGS_PER_SIGNAL:
                findings.append(
                    Finding(
                        kind="signal",
                        category=SEXUAL if weight else None,
                        score=round(s.score, 4),
                        detail=f"{s.detector or 'detector'}: {s.name}"
                        + (f" ({strength})" if strength else " (not in the signal map)"),
                        concept=s.name,
                        via=s.detector or None,
                        region=None if s.region is None else s.region.as_tuple(),
                    )
                )
        return score, explicit, findings

    def _minors(
        self, pixels: RGBArray, faces: list[Region]
    ) -> tuple[float, bool, list[Finding], bool]:
        """``(minors score, whether an age was read, findings, whether the estimator failed)``."""
        if self.age_estimator is None:
            return 0.0, False, [], False
        name = getattr(self.age_estimator, "name", type(self.age_estimator).__name__)
        try:
            estimates = self.age_estimator.estimate(pixels, faces or None)
            estimates = _checked_estimates(estimates, name)
        except Exception as exc:
            detail = f"age estimator {name!r} failed: {type(exc).__name__}: {exc}"
            return 0.0, False, [_error(detail)], True
        if not estimates:
            return 0.0, False, [], False
        findings = []
        score = 0.0
        for e in estimates:
            p = e.probability_under(self.challenge_age)
            score = max(score, p)
            findings.append(
                Finding(
                    kind="signal",
                    category=MINORS if p >= 0.5 else None,
                    score=round(p, 4),
                    detail=f"{e.estimator or name}: apparent age {e.age:.1f}, "
                    f"P(under {self.challenge_age}) = {p:.2f}",
                    concept="apparent_age",
                    via=e.estimator or name,
                    region=None if e.region is None else e.region.as_tuple(),
                )
            )
        return score, True, findings, False

    def _failed(self, findings: list[Finding], prompt_verdict: Verdict | None) -> Verdict:
        decision = self.policy.on_error
        scores = {c: 0.0 for c in CATEGORIES}
        if prompt_verdict is not None:
            decision = Decision.strictest(decision, prompt_verdict.decision)
            scores = {c: prompt_verdict.category_scores.get(c, 0.0) for c in CATEGORIES}
        return Verdict(
            decision=decision,
            category_scores=scores,
            findings=tuple(findings),
            policy=self.policy.name,
        )


def _error(detail: str, concept: str | None = None) -> Finding:
    return Finding(kind="error", category=None, score=0.0, detail=detail, concept=concept)


def _rule(category: str, score: float, detail: str, concept: str) -> Finding:
    return Finding(
        kind="rule", category=category, score=round(score, 4), detail=detail, concept=concept
    )


def _checked_array(image: object, name: str, max_pixels: int) -> RGBArray:
    import numpy as np

    if not isinstance(image, np.ndarray):
        raise MediaError(
            f"{name}: expected a path, bytes or an RGB array, got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise MediaError(
            f"{name}: expected an H x W x 3 uint8 RGB array, got shape {image.shape} {image.dtype}"
        )
    if image.shape[0] * image.shape[1] > max_pixels:
        raise MediaError(f"{name}: {image.shape[1]}x{image.shape[0]} exceeds {max_pixels} pixels")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise MediaError(f"{name}: empty image")
    return image


def _checked_signals(found: object, detector: str) -> list[Signal]:
    """A detector's answer, refused (as an error) unless it is a list of well-formed signals."""
    if not isinstance(found, list):
        raise TypeError(f"returned {type(found).__name__}, not a list of signals")
    out = []
    for s in found:
        if not isinstance(s, Signal):
            raise TypeError(f"returned {type(s).__name__}, not a Signal")
        if isinstance(s.score, bool) or not isinstance(s.score, int | float):
            raise TypeError(f"signal {s.name!r}: score {s.score!r} is not a number")
        if not 0.0 <= s.score <= 1.0:  # also refuses NaN
            raise ValueError(f"signal {s.name!r}: score {s.score!r} is outside [0, 1]")
        out.append(s if s.detector else Signal(s.name, float(s.score), s.region, detector))
    return out


def _checked_estimates(found: object, estimator: str) -> list[AgeEstimate]:
    if not isinstance(found, list):
        raise TypeError(f"returned {type(found).__name__}, not a list of age estimates")
    out = []
    for e in found:
        if not isinstance(e, AgeEstimate):
            raise TypeError(f"returned {type(e).__name__}, not an AgeEstimate")
        if not 0.0 <= e.age < 150:  # also refuses NaN
            raise ValueError(f"apparent age {e.age!r} is not an age")
        for limit, p in e.p_under.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"P(under {limit}) = {p!r} is outside [0, 1]")
        out.append(e if e.estimator else AgeEstimate(e.age, e.p_under, e.region, estimator))
    return out
