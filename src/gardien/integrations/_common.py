"""What the generation integrations share, so diffusers and ComfyUI decide the same way.

Pixels from model outputs, one verdict per image that never raises, prompt verdicts matched to
the images they produced, the image guard built from detector names, and one-line explanations.
numpy and Pillow only: torch stays in the modules that need it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gardien.core.categories import CATEGORIES
from gardien.core.errors import GardienError
from gardien.core.policy import Policy
from gardien.core.verdict import Decision, Finding, Verdict
from gardien.media import DEFAULT_MAX_PIXELS, MediaError, RGBArray
from gardien.vision.guard import ImageGuard
from gardien.vision.registry import (
    age_estimator_names,
    detector_names,
    load_age_estimator,
    load_detector,
)

#: Comma-separated detector names (from the vision registry) used when none are given.
ENV_DETECTORS = "GARDIEN_DETECTORS"
#: Name of an age estimator (from the vision registry) used when none is given.
ENV_AGE_ESTIMATOR = "GARDIEN_AGE_ESTIMATOR"
#: The age estimator's model: a file for ``onnx``, a local folder (or cached id) for
#: ``transformers``; required by both.
ENV_AGE_MODEL = "GARDIEN_AGE_MODEL"
#: The option through which each built-in age estimator takes its model; others get
#: ``model_path``.
AGE_MODEL_OPTION: Mapping[str, str] = {"onnx": "model_path", "transformers": "model"}
#: What the integrations load when neither the caller nor the environment names detectors.
DEFAULT_DETECTORS: tuple[str, ...] = ("nudenet",)

#: Text fields of diffusers pipelines, as (positive, negative) pairs: SD uses the first, SDXL and
#: Flux the first two, SD3 all three.
PROMPT_PAIRS: tuple[tuple[str, str], ...] = (
    ("prompt", "negative_prompt"),
    ("prompt_2", "negative_prompt_2"),
    ("prompt_3", "negative_prompt_3"),
)


class IntegrationError(GardienError):
    """An integration is set up so that it could not guard anything (no detector loaded)."""


# -- the image guard


def detectors_from_env() -> tuple[str, ...]:
    """Detector names from GARDIEN_DETECTORS, or the default ("nudenet")."""
    raw = os.environ.get(ENV_DETECTORS, "")
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    return names or DEFAULT_DETECTORS


def build_image_guard(
    detectors: Sequence[str] | None = None,
    *,
    age_estimator: str | None = None,
    age_model: str | Path | None = None,
    policy: Policy | str | Path = "generation",
) -> ImageGuard:
    """An image guard over registered detectors, loaded by name from local files only.

    Detectors come from ``detectors``, else GARDIEN_DETECTORS, else ``nudenet``. The age
    estimator comes from ``age_estimator``, else GARDIEN_AGE_ESTIMATOR (none if unset), and its
    model from ``age_model``, else GARDIEN_AGE_MODEL.

    Every named detector and estimator must load: a guard running with fewer than the operator
    asked for would miss what the others catch, so any failure raises :class:`IntegrationError`
    at set-up time rather than letting images through later.
    """
    names = tuple(detectors) if detectors else detectors_from_env()
    loaded, errors, hints = [], [], []
    for name in names:
        try:
            loaded.append(load_detector(name))
        except Exception as exc:
            errors.append(f"{name!r}: {exc}")
    if errors:
        hints.append(
            f"install the detector's extra, or name registered detectors in {ENV_DETECTORS} "
            f"(registered: {', '.join(detector_names()) or 'none'})"
        )
    estimator_name = age_estimator or os.environ.get(ENV_AGE_ESTIMATOR, "").strip() or None
    model = age_model if age_model is not None else os.environ.get(ENV_AGE_MODEL, "").strip()
    estimator = None
    if estimator_name:
        options: dict[str, Any] = {}
        if model:
            options[AGE_MODEL_OPTION.get(estimator_name, "model_path")] = str(model)
        try:
            estimator = load_age_estimator(estimator_name, **options)
        except Exception as exc:
            errors.append(f"age estimator {estimator_name!r}: {exc}")
            hints.append(
                f"set {ENV_AGE_MODEL} to the estimator's model (a .onnx file for 'onnx', a local "
                f"model folder for 'transformers') and install its extra, or unset "
                f"{ENV_AGE_ESTIMATOR} (registered estimators: "
                f"{', '.join(age_estimator_names()) or 'none'})"
            )
    elif model:
        errors.append(f"{ENV_AGE_MODEL} is set but no age estimator is named")
        hints.append(f"set {ENV_AGE_ESTIMATOR} to 'onnx' or 'transformers' as well")
    if errors:
        raise IntegrationError(
            "gardien cannot check images: " + "; ".join(errors) + ". To fix: " + "; ".join(hints)
        )
    return ImageGuard(loaded, age_estimator=estimator, policy=policy)


def require_detectors(guard: ImageGuard) -> ImageGuard:
    """Refuse a guard with no detectors: it sees nothing, and would allow every image."""
    if not guard.detectors:
        raise IntegrationError(
            "this ImageGuard has no detectors, so it would allow every image; "
            "give it at least one (see gardien.vision.detector_names())"
        )
    return guard


def check_withhold_at(decision: Decision | str) -> Decision:
    """The decision from which an image is withheld (or a prompt refused): review or block."""
    d = Decision(decision)
    if d is Decision.ALLOW:
        raise ValueError("withholding from 'allow' would withhold everything; use review or block")
    return d


def withheld(verdict: Verdict, withhold_at: Decision) -> bool:
    return verdict.decision.rank >= withhold_at.rank


# -- pixels and per-image verdicts


#: How far past [0, 1] a float image may go before it counts as the wrong scale. Post-processed
#: images (diffusers' ``postprocess``, ComfyUI's VAE Decode) are clamped, so this only absorbs
#: rounding in custom nodes; an image in 0..255 or in [-1, 1] is far outside it.
UNSIGNED_TOLERANCE = 0.02
#: The same for [-1, 1] tensors straight from a VAE, which diffusers does not clamp before its
#: safety checker: decoders overshoot, untrained or fp16 ones by more than half the range, and
#: diffusers clips that overshoot itself when it post-processes, so clipping it here shows the
#: detectors what the user will see. An image in 0..255 is still far outside it.
SIGNED_TOLERANCE = 2.0


def check_size(height: int, width: int, max_pixels: int, *, name: str = "image") -> None:
    """Refuse an image over ``max_pixels`` from its shape alone, before any pixel is converted:
    a 64-megapixel float image costs seconds and gigabytes to convert just to be refused."""
    if height * width > max_pixels:
        raise MediaError(f"{name}: {width}x{height} exceeds {max_pixels} pixels")


def to_rgb(image: Any, *, signed: bool = False) -> RGBArray:
    """An ``H x W x C`` image from a model as ``H x W x 3`` uint8.

    Floats are read as [0, 1], or [-1, 1] when ``signed`` (a VAE's output before diffusers
    denormalises it). Floats outside that range (past the tolerances above) raise: an image in
    0..255 or in [-1, 1] read as [0, 1] would be clipped to white or black, the detectors would
    see nothing, and the caller would get the unchecked original back. NaN or infinite values (an
    fp16 VAE overflowing) raise too: what they hide can't be checked. One channel is repeated, a
    fourth (alpha) dropped, so the detectors see every pixel the model drew.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W x C image with 1, 3 or 4 channels, got {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"expected float or uint8 pixels, got {a.dtype}")
    f = a.astype(np.float32)
    if f.size:
        if not np.isfinite(f).all():
            bad = int(np.count_nonzero(~np.isfinite(f)))
            raise ValueError(
                f"{bad} of {f.size} values are NaN or infinite (an fp16 VAE overflowing?); "
                "what they hide can't be checked"
            )
        low, high = float(f.min()), float(f.max())
        lo, hi, tol = (-1.0, 1.0, SIGNED_TOLERANCE) if signed else (0.0, 1.0, UNSIGNED_TOLERANCE)
        if low < lo - tol or high > hi + tol:
            raise ValueError(
                f"float pixels range over [{low:.4g}, {high:.4g}], outside the expected "
                f"[{lo:g}, {hi:g}]; an image of another scale (0..255, or [-1, 1] read as "
                "[0, 1]) would be checked as white or black, so it is not checked at all"
            )
    if signed:
        f = f * np.float32(0.5) + np.float32(0.5)
    return np.ascontiguousarray(np.clip(np.rint(f * 255), 0, 255).astype(np.uint8))


def max_pixels_of(guard: ImageGuard) -> int:
    """The largest image (in pixels) the guard accepts."""
    return int(getattr(guard, "max_pixels", DEFAULT_MAX_PIXELS))


def check_image(
    guard: ImageGuard,
    pixels: Callable[[], RGBArray],
    *,
    prompt_verdict: Verdict | None,
    name: str,
) -> Verdict:
    """The verdict on one output image; an image that can't be read is a failed check, not an
    exception (which would lose the verdicts of the others) and never an allow."""
    try:
        rgb = pixels()
    except Exception as exc:
        detail = f"{name}: cannot read the image: {type(exc).__name__}: {exc}"
        return guard.error_verdict(detail, prompt_verdict=prompt_verdict)
    return guard.check(rgb, prompt_verdict=prompt_verdict, name=name)


def prompt_for_image(index: int, images: int, verdicts: Sequence[Verdict]) -> Verdict | None:
    """The verdict of the prompt that produced image ``index`` of ``images``.

    diffusers repeats each prompt ``num_images_per_prompt`` times in order, so with N prompts and
    N*k images, image i comes from prompt i // k. When the counts don't divide, the image gets
    all the prompts' signals merged: it might come from any of them.
    """
    if not verdicts:
        return None
    if len(verdicts) == 1:
        return verdicts[0]
    if images % len(verdicts) == 0:
        return verdicts[index // (images // len(verdicts))]
    return merge_verdicts(verdicts)


def merge_verdicts(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict for several checks of the same request: the strictest decision, the highest
    score of each category, and every finding."""
    if len(verdicts) == 1:
        return verdicts[0]
    return Verdict(
        decision=Decision.strictest(*(v.decision for v in verdicts)),
        category_scores={
            c: max((v.category_scores.get(c, 0.0) for v in verdicts), default=0.0)
            for c in CATEGORIES
        },
        findings=tuple(f for v in verdicts for f in v.findings),
        policy=verdicts[0].policy if verdicts else "",
    )


# -- prompts of a pipeline call


class PromptScreener(Protocol):
    """What screens one prompt: :class:`gardien.text.PromptGuard`, or anything shaped like it."""

    @property
    def policy(self) -> Policy: ...

    def check(self, prompt: str, negative_prompt: str = "") -> Verdict: ...


def screen_prompt_fields(prompt_guard: PromptScreener, fields: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per prompt of a pipeline call, from all its text fields.

    ``fields`` holds a call's arguments (``prompt``, ``negative_prompt``, ``prompt_2``, ...; each
    a string, a list of strings or None). Each (positive, negative) pair is screened as given,
    and when there are several pairs their texts are screened once more joined, so a request split
    across text encoders ("nude" to one, "12 year old" to the other) is read whole. Embeddings
    given in place of text (``prompt_embeds`` and the like) can't be read: the verdict is then the
    policy's ``on_error``, never allow. So do other embeddings (``image_embeds``,
    ``image_embeddings``: any ``*_embeds`` or ``*_embeddings`` argument) when no prompt text
    comes with them: they are then what conditions the image (Kandinsky or Stable Cascade
    decoders), and screening the missing text would allow anything.
    """
    texts = {name: _as_list(fields.get(name)) for pair in PROMPT_PAIRS for name in pair}
    count = max((len(v) for v in texts.values() if v is not None), default=1)
    has_text = any(
        isinstance(t, str) and t.strip()
        for pos_name, _ in PROMPT_PAIRS
        for t in texts[pos_name] or ()
    )
    embeds = sorted(
        k
        for k, v in fields.items()
        if v is not None and ("prompt_embeds" in k or (not has_text and _is_embeddings(k)))
    )
    verdicts = []
    for i in range(count):
        pairs = []
        for pos_name, neg_name in PROMPT_PAIRS:
            pos, neg = _pick(texts[pos_name], i, count), _pick(texts[neg_name], i, count)
            if pos is not None or neg is not None:
                pairs.append(
                    (pos_name, "" if pos is None else pos, neg_name, "" if neg is None else neg)
                )
        if not pairs:
            pairs = [("prompt", "", "negative_prompt", "")]
        results = [
            _relabel(prompt_guard.check(pos, neg), {"prompt": pn, "negative_prompt": nn})
            for pn, pos, nn, neg in pairs
        ]
        if len(pairs) > 1 and all(isinstance(p[1], str) and isinstance(p[3], str) for p in pairs):
            joined = prompt_guard.check(
                "\n".join(p[1] for p in pairs if p[1]), "\n".join(p[3] for p in pairs if p[3])
            )
            if _stricter(joined, merge_verdicts(results)):
                label = "+".join(p[0] for p in pairs)
                neg_label = "+".join(p[2] for p in pairs)
                results.append(
                    _relabel(
                        joined,
                        {
                            "prompt": f"{label} (joined by newlines)",
                            "negative_prompt": f"{neg_label} (joined by newlines)",
                        },
                    )
                )
        if embeds:
            results.append(_unscreened(prompt_guard, embeds))
        verdicts.append(merge_verdicts(results))
    return verdicts


def _is_embeddings(name: str) -> bool:
    return name.endswith(("_embeds", "_embeddings")) or name in ("embeds", "embeddings")


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _pick(values: list[Any] | None, index: int, count: int) -> Any:
    """The text for prompt ``index``: its own, the one shared by all, or (when the lengths don't
    match, which the pipeline will refuse anyway) all of them."""
    if values is None:
        return None
    if len(values) == count:
        return values[index]
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, str) for v in values):
        return "\n".join(values)
    return values


def _relabel(verdict: Verdict, names: Mapping[str, str]) -> Verdict:
    if all(k == v for k, v in names.items()):
        return verdict
    findings = tuple(
        dataclasses.replace(f, field=names[f.field])
        if f.field is not None and f.field in names
        else f
        for f in verdict.findings
    )
    return dataclasses.replace(verdict, findings=findings)


def _stricter(a: Verdict, b: Verdict) -> bool:
    return a.decision.rank > b.decision.rank or any(
        a.category_scores.get(c, 0.0) > b.category_scores.get(c, 0.0) for c in CATEGORIES
    )


def _unscreened(prompt_guard: PromptScreener, embeds: Sequence[str]) -> Verdict:
    policy = prompt_guard.policy
    detail = (
        f"{', '.join(embeds)} given in place of text: embeddings can't be screened, "
        "so the request counts as a failed check (pass the prompt text instead, or guard the "
        "pipeline that takes it)"
    )
    return Verdict(
        decision=policy.on_error,
        category_scores={c: 0.0 for c in CATEGORIES},
        findings=(Finding(kind="error", category=None, score=0.0, detail=detail),),
        policy=policy.name,
    )


# -- explanations


def describe(verdict: Verdict | Mapping[str, Any], *, reasons: int = 3) -> str:
    """A verdict in one line: decision, flagged categories with scores, the main reasons."""
    d = verdict.to_dict() if isinstance(verdict, Verdict) else verdict
    decision = str(d.get("decision", "?"))
    scores = d.get("category_scores") or {}
    flagged = [
        f"{c} {float(scores.get(c, 0.0)):.2f}"
        for c, on in (d.get("categories") or {}).items()
        if on
    ]
    findings = [f for f in d.get("findings") or [] if isinstance(f, Mapping)]
    relevant = [f for f in findings if f.get("category") or f.get("kind") in ("error", "limit")]
    relevant.sort(
        key=lambda f: (f.get("kind") not in ("rule", "error", "limit"), -float(f.get("score", 0)))
    )
    text = decision + (f" ({', '.join(flagged)})" if flagged else "")
    details = [str(f.get("detail", "")) for f in relevant[:reasons]]
    if details:
        text += ": " + "; ".join(details)
    if len(relevant) > reasons:
        text += f"; and {len(relevant) - reasons} more"
    return text
