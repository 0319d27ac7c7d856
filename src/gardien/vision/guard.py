"""The image guard: nudity and apparent age, with the prompt's signals, into one verdict.

``sexual/minors`` is raised when sexual signals coincide with a possible minor. A person counts
as a possible minor when an age model puts them under ``challenge_age`` (25 by default, like a
shop's "Challenge 25": apparent age is a rough measure, so the margin is wide; it can't be set
under 18), or when the prompt that produced the image refers to a minor.

The age counts as *read* only from the age model's estimates on face regions that lie inside
the image and measure at least MIN_FACE_PIXELS on each side, every such face answered, at most
MAX_FACES of them. With no usable face the age model reads the whole image: that reading can
raise ``minors`` (a child-like image) but never proves an adult, since a whole-image age says
nothing about the body the nudity detector saw. When the age can't be read (no age model, a
model that failed or answered nonsense, no usable face, a face too small or outside the image,
more faces than are read) explicit nudity is counted as if a minor might be present, and its
score decides as sexual/minors would under the strictest thresholds a policy may have (review
from 0.35, block from 0.5), whatever the policy: the guard fails closed. Weaker explicit signals
(NudeNet scores textures at 0.2-0.35 now and then) count towards ``sexual`` only.

Other rules that fail closed: a detector signal whose name the signal map doesn't know gives
at least ``review`` (a detector with another vocabulary must not pass silently); detector errors
and undecodable images give the policy's ``on_error`` decision (``review`` or ``block``), never
``allow``. Animated and multi-page images are checked frame by frame (:func:`decode_frames`), and
an image that is not fully opaque is checked as stored, over white and over black: the verdict
is the strictest, and its findings name the frame. An image whose frames could not all be
checked (too many frames, too many pixels) gets at least ``on_error``.

Scores: ``sexual`` is the highest explicit signal score, or a suggestive one times
SUGGESTIVE_WEIGHT; ``minors`` the highest probability of an age under the limit (or the prompt's
``minors`` score); ``sexual/minors`` the lower of the two when both are present.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Literal

from gardien.core.categories import CATEGORIES, MINORS, SEXUAL, SEXUAL_MINORS
from gardien.core.errors import GardienError
from gardien.core.policy import (
    SEXUAL_MINORS_MAX_BLOCK,
    SEXUAL_MINORS_MAX_REVIEW,
    Policy,
    load_policy,
)
from gardien.core.verdict import Decision, Finding, Verdict
from gardien.media import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_TOTAL_PIXELS,
    Frame,
    Frames,
    MediaError,
    RGBArray,
    decode_frames,
    read_media,
)
from gardien.vision.provenance import ProvenanceReader, read_provenance
from gardien.vision.signals import (
    AgeEstimate,
    AgeEstimator,
    ImageDetector,
    Region,
    Signal,
    VisionError,
)

Strength = Literal["explicit", "suggestive", "face", "ignore"]
_STRENGTHS: tuple[str, ...] = ("explicit", "suggestive", "face", "ignore")

#: Weight of a suggestive signal's score in ``sexual``.
SUGGESTIVE_WEIGHT = 0.6
#: An apparent age under this counts as a possible minor.
CHALLENGE_AGE = 25
#: The lowest ``challenge_age`` a guard accepts: under 18 it would call minors adults.
MIN_CHALLENGE_AGE = 18
#: Detector score below which a signal is neither counted nor listed as a finding.
MIN_SIGNAL_SCORE = 0.25
#: A face region must measure this many pixels on each side, inside the image, to be read.
MIN_FACE_PIXELS = 24
#: At most this many faces (the largest) go to the age model; more give a ``limit`` finding.
MAX_FACES = 32
#: ``minors`` score given to explicit nudity whose age can't be read.
UNKNOWN_AGE = 1.0
#: At most this many findings of each signal name are listed (the rest are counted).
MAX_FINDINGS_PER_SIGNAL = 16
#: At most this many signal findings in all per verdict (the rest are counted in one finding).
MAX_SIGNAL_FINDINGS = 64
#: At most this many of the prompt's findings are carried into an image verdict it raised.
MAX_PROMPT_FINDINGS = 16
#: Slack, in years, when checking an age estimate against its own probabilities.
_AGE_SLACK = 0.5


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
    if path is not None:
        _check_explicit_kept(out, load_signal_map(), source)
    if "explicit" not in out.values():
        raise SignalMapError(
            f'{source}: no class is "explicit", so no detector signal could ever count as '
            "sexual nudity; map at least one"
        )
    return out


def _check_explicit_kept(
    signal_map: dict[str, Strength], bundled: dict[str, Strength], source: str
) -> None:
    """Refuse a map that lowers a class the bundled map calls explicit.

    A custom map may add classes (another detector's vocabulary) and may make other classes
    stricter, but it can't turn NudeNet's explicit classes into "suggestive", "face" or
    "ignore": that would switch ``sexual/minors`` off for them, which no policy may do.
    """
    for name, strength in signal_map.items():
        if bundled.get(name) == "explicit" and strength != "explicit":
            raise SignalMapError(
                f"{source}: signals.{name}: the bundled map calls it explicit; a custom map may "
                f"not lower it to {strength!r} (sexual/minors can't be switched off)"
            )


def _checked_signal_map(signal_map: dict[str, Strength]) -> dict[str, Strength]:
    """A signal map given to a guard: valid strengths, the bundled explicit classes kept (added
    when missing), and at least one explicit class."""
    source = "signal_map"
    bundled = load_signal_map()
    out: dict[str, Strength] = {}
    for name, strength in signal_map.items():
        if not isinstance(name, str) or strength not in _STRENGTHS:
            raise SignalMapError(
                f"{source}: {name!r}: {strength!r} is not one of {', '.join(_STRENGTHS)}"
            )
        out[name] = strength
    _check_explicit_kept(out, bundled, source)
    for name, strength in bundled.items():
        if strength == "explicit":
            out.setdefault(name, "explicit")
    return out


@dataclass(frozen=True)
class ImageInput:
    """An image to check: a path, encoded bytes, or an already decoded RGB array."""

    data: Path | bytes | RGBArray
    name: str = "<image>"


@dataclass
class _Ages:
    """What the age model said about one image."""

    score: float = 0.0  # highest P(under challenge_age)
    known: bool = False  # the age was read on every usable face (see the module doc)
    findings: list[Finding] = field(default_factory=list)
    error: bool = False  # the estimator failed or answered nonsense
    limited: bool = False  # more faces than MAX_FACES
    why: str = "no age model"  # why the age is not known


class ImageGuard:
    """Checks images with the given detectors and (optionally) an age estimator.

    ``provenance`` readers (:mod:`gardien.vision.provenance`) add their findings to each verdict
    of an image that decoded; they never change its decision or scores.

    Raises :class:`VisionError` for a guard that could not check anything as asked: no
    detectors (it would allow every image), or a ``challenge_age`` under 18; and
    :class:`SignalMapError` for a signal map that lowers an explicit class or has none.
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
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_total_pixels: int = DEFAULT_MAX_TOTAL_PIXELS,
        prompt_guard: object | None = None,
        provenance: Sequence[ProvenanceReader] = (),
    ) -> None:
        self.detectors = list(detectors)
        if not self.detectors:
            raise VisionError(
                "ImageGuard needs at least one detector: with none it sees nothing and would "
                "allow every image (see gardien.vision.detector_names())"
            )
        if (
            isinstance(challenge_age, bool)
            or not isinstance(challenge_age, int)
            or challenge_age < MIN_CHALLENGE_AGE
        ):
            raise VisionError(
                f"challenge_age must be a whole number of years, at least {MIN_CHALLENGE_AGE}, "
                f"got {challenge_age!r}: a lower one would count minors as adults"
            )
        if max_frames < 1:
            raise VisionError(f"max_frames must be at least 1, got {max_frames!r}")
        self.age_estimator = age_estimator
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.signal_map = (
            _checked_signal_map(signal_map) if signal_map is not None else load_signal_map()
        )
        self.challenge_age = challenge_age
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self.max_total_pixels = max_total_pixels
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
        """The verdict on one image. Never raises for a bad image or a failing detector.

        Every frame :func:`~gardien.media.decode_frames` returns is checked, and an image that
        is not fully opaque is checked as stored, over white and over black; the verdict is the
        strictest of these.
        """
        label = name or (str(image) if isinstance(image, Path) else "<image>")
        if prompt_verdict is None and prompt is not None:
            prompt_verdict = self.screen_prompt(prompt, negative_prompt)
        try:
            data, frames = self._decode(image, label)
        except MediaError as exc:
            undecodable = _error(f"cannot decode image: {exc}", "undecodable")
            return self._failed([undecodable], prompt_verdict)
        pixels = frames.frames[0].rgb
        try:
            verdict = self._check_frames(frames, prompt_verdict)
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

    def _decode(self, image: Path | bytes | RGBArray, name: str) -> tuple[bytes | None, Frames]:
        """The file's bytes (for provenance; None for an array) and its frames."""
        if isinstance(image, Path):
            data = read_media(image)
        elif isinstance(image, bytes | bytearray | memoryview):
            data = bytes(image)
        else:
            pixels = _checked_array(image, name, self.max_pixels)
            return None, Frames((Frame(0, pixels),), 1)
        frames = decode_frames(
            data,
            name=name,
            max_pixels=self.max_pixels,
            max_frames=self.max_frames,
            max_total_pixels=self.max_total_pixels,
        )
        return data, frames

    def screen_prompt(self, prompt: str, negative_prompt: str = "") -> Verdict:
        """The verdict on the prompt that made an image, under this guard's policy; pass it as
        ``prompt_verdict`` to check many images of one prompt without screening it again."""
        if self._prompt_guard is None:
            from gardien.text import PromptGuard

            self._prompt_guard = PromptGuard(self.policy)  # the prompt is judged as the image
        return self._prompt_guard.check(prompt, negative_prompt)  # type: ignore[attr-defined, no-any-return]

    def _check_frames(self, frames: Frames, prompt_verdict: Verdict | None) -> Verdict:
        """Each view of each frame checked; the strictest verdict, its findings naming where."""
        views = [(frame.index, how, px) for frame in frames.frames for how, px in frame.views()]
        if len(views) == 1 and frames.complete:
            return self._check_pixels(views[0][2], prompt_verdict)
        checked = []
        for index, how, px in views:
            where = f"frame {index}" if how == "stored" else f"frame {index} ({how})"
            checked.append((where, self._check_pixels(px, prompt_verdict)))
        where, worst = max(checked, key=lambda c: _severity(c[1]))
        findings = [_at(f, where) for f in worst.findings]
        for other, verdict in checked:  # errors and limits elsewhere are worth knowing too
            if other != where:
                findings.extend(_at(f, other) for f in verdict.findings if f.kind == "error")
        decision = worst.decision
        if not frames.complete:
            findings.append(
                Finding(
                    kind="limit",
                    category=None,
                    score=0.0,
                    detail=f"not every frame was checked ({frames.note}): the others could "
                    f"show anything, so the image gets at least {self.policy.on_error.value}",
                    concept="frames",
                )
            )
            decision = Decision.strictest(decision, self.policy.on_error)
        return replace(worst, decision=decision, findings=tuple(findings))

    def _check_pixels(self, pixels: RGBArray, prompt_verdict: Verdict | None) -> Verdict:
        findings: list[Finding] = []
        errors = False
        floor = Decision.ALLOW  # the least decision the rules below require
        signals: list[Signal] = []
        if not self.detectors:
            errors = True
            findings.append(_error("no detectors: nothing looked at this image"))
        for detector in self.detectors:
            name = getattr(detector, "name", type(detector).__name__)
            try:
                found = detector.detect(pixels)
                signals.extend(_checked_signals(found, name))
            except Exception as exc:
                errors = True
                findings.append(_error(f"detector {name!r} failed: {type(exc).__name__}: {exc}"))
        sexual, explicit, sexual_findings, unmapped = self._sexual(signals)
        findings.extend(sexual_findings)
        if unmapped:
            names = sorted(unmapped, key=lambda n: (-unmapped[n], n))
            shown = ", ".join(repr(n[:64]) for n in names[:8])
            more = f" and {len(names) - 8} more" if len(names) > 8 else ""
            findings.append(
                Finding(
                    kind="rule",
                    category=None,
                    score=round(max(unmapped.values()), 4),
                    detail=f"signal names the signal map doesn't know: {shown}{more}; an "
                    "unknown vocabulary is not taken as harmless, so at least review",
                    concept="unmapped_signal",
                )
            )
            floor = Decision.strictest(floor, Decision.REVIEW)
        faces = [
            s.region
            for s in signals
            if s.region is not None
            and self.signal_map.get(s.name) == "face"
            and s.score >= MIN_SIGNAL_SCORE
        ]
        ages = self._minors(pixels, faces)
        minors = ages.score
        errors = errors or ages.error
        findings.extend(ages.findings)
        if ages.limited:
            floor = Decision.strictest(floor, Decision.REVIEW)
        if prompt_verdict is not None:
            prompt_minors = prompt_verdict.category_scores.get(MINORS, 0.0)
            if prompt_minors > minors:
                minors = prompt_minors
                findings.append(
                    _rule(MINORS, prompt_minors, "the prompt refers to a minor", "prompt")
                )
        unknown_age = explicit >= SEXUAL_MINORS_MAX_REVIEW and not ages.known
        if unknown_age:
            minors = max(minors, UNKNOWN_AGE)
            # The explicit score decides as sexual/minors would under the strictest thresholds a
            # policy may have, whatever this policy says: a confident detection blocks.
            least = Decision.BLOCK if explicit >= SEXUAL_MINORS_MAX_BLOCK else Decision.REVIEW
            findings.append(
                _rule(
                    MINORS,
                    UNKNOWN_AGE,
                    f"explicit nudity (score {explicit:.2f}) and {ages.why}: counted as a "
                    f"possible minor, at least {least.value} whatever the policy (fail closed)",
                    "unknown_age",
                )
            )
            floor = Decision.strictest(floor, least)
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
        decision = Decision.strictest(self.policy.decide(scores), floor)
        if errors:
            decision = Decision.strictest(decision, self.policy.on_error)
        if prompt_verdict is not None and prompt_verdict.decision.rank > decision.rank:
            findings.extend(_prompt_findings(prompt_verdict))
            decision = prompt_verdict.decision
        return Verdict(
            decision=decision,
            category_scores={c: scores.get(c, 0.0) for c in CATEGORIES},
            findings=tuple(findings),
            policy=self.policy.name,
        )

    def _sexual(
        self, signals: list[Signal]
    ) -> tuple[float, float, list[Finding], dict[str, float]]:
        """``(sexual score, top explicit signal score, findings, unmapped names and their top
        score)``.

        Signals under MIN_SIGNAL_SCORE neither count nor show. At most MAX_FINDINGS_PER_SIGNAL
        findings per name and MAX_SIGNAL_FINDINGS in all are listed, highest scores first; the
        rest are counted in one finding.
        """
        score, explicit = 0.0, 0.0
        findings: list[Finding] = []
        unmapped: dict[str, float] = {}
        shown: dict[str, int] = {}
        left_out = 0
        for s in sorted(signals, key=lambda s: -s.score):
            strength = self.signal_map.get(s.name)
            if s.score < MIN_SIGNAL_SCORE:
                continue
            weight = {"explicit": 1.0, "suggestive": SUGGESTIVE_WEIGHT}.get(strength or "", 0.0)
            if weight:
                score = max(score, s.score * weight)
                if strength == "explicit":
                    explicit = max(explicit, s.score)
            if strength is None:
                unmapped[s.name] = max(unmapped.get(s.name, 0.0), s.score)
            shown[s.name] = shown.get(s.name, 0) + 1
            if shown[s.name] > MAX_FINDINGS_PER_SIGNAL or len(findings) >= MAX_SIGNAL_FINDINGS:
                left_out += 1
                continue
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
        if left_out:
            findings.append(
                Finding(
                    kind="limit",
                    category=None,
                    score=0.0,
                    detail=f"{left_out} more signals not listed (at most "
                    f"{MAX_FINDINGS_PER_SIGNAL} per name and {MAX_SIGNAL_FINDINGS} in all); "
                    "they count in the scores all the same",
                    concept="signals",
                )
            )
        return score, explicit, findings, unmapped

    def _minors(self, pixels: RGBArray, faces: list[Region]) -> _Ages:
        """The age model's reading of ``pixels``; see the module doc for when it counts."""
        if self.age_estimator is None:
            return _Ages()
        name = getattr(self.age_estimator, "name", type(self.age_estimator).__name__)
        out = _Ages(why="no apparent age could be read")
        height, width = pixels.shape[:2]
        usable: list[Region] = []
        for region in faces:
            box = region.clipped(width, height)
            if box is not None and min(box.width, box.height) >= MIN_FACE_PIXELS:
                usable.append(box)
        unreadable = len(faces) - len(usable)
        if unreadable:
            out.findings.append(
                Finding(
                    kind="rule",
                    category=None,
                    score=0.0,
                    detail=f"{unreadable} face region(s) outside the image or under "
                    f"{MIN_FACE_PIXELS}x{MIN_FACE_PIXELS} pixels: their age can't be read",
                    concept="unreadable_face",
                )
            )
        if len(usable) > MAX_FACES:
            out.findings.append(
                Finding(
                    kind="limit",
                    category=None,
                    score=0.0,
                    detail=f"{len(usable)} faces: only the {MAX_FACES} largest were read by the "
                    "age model, so at least review",
                    concept="faces",
                )
            )
            usable = sorted(usable, key=lambda r: -(r.width * r.height))[:MAX_FACES]
            out.limited = True
        whole = not usable
        try:
            estimates = self.age_estimator.estimate(pixels, None if whole else usable)
            estimates = _checked_estimates(estimates, name)
        except Exception as exc:
            detail = f"age estimator {name!r} failed: {type(exc).__name__}: {exc}"
            out.findings.append(_error(detail))
            out.error = True
            out.why = "the age model failed"
            return out
        for e in estimates:
            p = e.probability_under(self.challenge_age)
            out.score = max(out.score, p)
            note = " (whole image: can raise minors, never proves an adult)" if whole else ""
            out.findings.append(
                Finding(
                    kind="signal",
                    category=MINORS if p >= 0.5 else None,
                    score=round(p, 4),
                    detail=f"{e.estimator or name}: apparent age {e.age:.1f}, "
                    f"P(under {self.challenge_age}) = {p:.2f}{note}",
                    concept="apparent_age",
                    via=e.estimator or name,
                    region=None if e.region is None else e.region.as_tuple(),
                )
            )
        if whole:
            out.why = (
                "no face to read the age on"
                if not faces
                else "no face inside the image large enough to read"
            )
        elif len(estimates) < len(usable):
            out.findings.append(
                Finding(
                    kind="rule",
                    category=None,
                    score=0.0,
                    detail=f"the age model answered for {len(estimates)} of {len(usable)} faces",
                    concept="unanswered_face",
                )
            )
            out.why = "a face the age model did not answer for"
        elif unreadable:
            out.why = "a face too small or outside the image to read"
        elif out.limited:
            out.why = f"more than {MAX_FACES} faces"
        else:
            out.known = True
        return out

    def _failed(self, findings: list[Finding], prompt_verdict: Verdict | None) -> Verdict:
        decision = self.policy.on_error
        scores = {c: 0.0 for c in CATEGORIES}
        if prompt_verdict is not None:
            if prompt_verdict.decision.rank > decision.rank:
                findings = findings + _prompt_findings(prompt_verdict)
                decision = prompt_verdict.decision
            scores = {c: prompt_verdict.category_scores.get(c, 0.0) for c in CATEGORIES}
        return Verdict(
            decision=decision,
            category_scores=scores,
            findings=tuple(findings),
            policy=self.policy.name,
        )


def _severity(verdict: Verdict) -> tuple[int, float, float, float]:
    scores = verdict.category_scores
    return (
        verdict.decision.rank,
        scores.get(SEXUAL_MINORS, 0.0),
        scores.get(SEXUAL, 0.0),
        scores.get(MINORS, 0.0),
    )


def _at(finding: Finding, where: str) -> Finding:
    """The finding, its detail saying which frame (and which view of it) it was found on."""
    return replace(finding, detail=f"{where}: {finding.detail}")


def _prompt_findings(prompt_verdict: Verdict) -> list[Finding]:
    """Why the prompt raised an image's decision: a rule naming its decision, and its findings."""
    carried = list(prompt_verdict.findings[:MAX_PROMPT_FINDINGS])
    left = len(prompt_verdict.findings) - len(carried)
    out = [
        Finding(
            kind="rule",
            category=None,
            score=0.0,
            detail=f"the prompt's verdict is {prompt_verdict.decision.value}, so the image's "
            "is at least that" + (f" ({left} more prompt findings not listed)" if left else ""),
            concept="prompt_decision",
        )
    ]
    return out + carried


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
        _check_consistent(e)
        out.append(e if e.estimator else AgeEstimate(e.age, e.p_under, e.region, estimator))
    return out


def _check_consistent(e: AgeEstimate) -> None:
    """Refuse an estimate that contradicts itself, rather than trust the half that says adult.

    ``P(under L)`` must be a probability and must not decrease as ``L`` grows. And since ages
    are never negative, an average age ``age`` allows at most ``age / L`` of the mass at ``L``
    or over (Markov's inequality): ``age >= L * (1 - P(under L))``, give or take _AGE_SLACK. An
    age of 8 with ``P(under 25) = 0`` is impossible.
    """
    previous = 0.0
    for limit, p in sorted(e.p_under.items()):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"P(under {limit}) = {p!r} is outside [0, 1]")
        if p < previous - 1e-9:
            raise ValueError(
                f"P(under {limit}) = {p} is less than {previous} for a lower limit: "
                "the probabilities contradict each other"
            )
        previous = p
        if e.age < limit * (1.0 - p) - _AGE_SLACK:
            raise ValueError(
                f"apparent age {e.age} contradicts P(under {limit}) = {p}: an average age of "
                f"{e.age} allows P(under {limit}) no lower than {max(0.0, 1 - e.age / limit):.2f}"
            )
