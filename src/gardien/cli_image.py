"""The image commands: ``gardien image check``.

One JSON line per image on stdout; the setup, a progress bar and a summary on stderr. The exit
status is 0 whatever the decisions (read them from the output, as with ``gardien prompt check
--jsonl``). It is non-zero only when the command can't run as asked: a usage error, a policy that
doesn't load, or a detector or age model that can't be loaded. That last case fails closed: the
command never checks images with less than it was asked to use (by default, NudeNet), since an
image that no detector looked at would come out ``allow``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from gardien.cli import progress_bar
from gardien.core.errors import GardienError
from gardien.core.verdict import Verdict
from gardien.jsonl import dumps
from gardien.media import DEFAULT_MAX_PIXELS, iter_media_paths
from gardien.vision import (
    AgeEstimator,
    ImageDetector,
    ImageGuard,
    ProvenanceReader,
    default_provenance_readers,
    load_age_estimator,
    load_detector,
)

DEFAULT_DETECTORS = ("nudenet",)
#: Age backends and the option their factory takes the model path as.
AGE_MODEL_OPTION = {"onnx": "model_path", "transformers": "model"}
#: The pip extra that installs a detector's dependencies, named when it can't be loaded.
EXTRAS = {"nudenet": "nudenet"}


@click.group()
def image() -> None:
    """Check images for sexual content with a possible minor."""


@image.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--prompt",
    help="The prompt that made the images. It is screened too: a blocked prompt blocks every "
    "image, and a minor in it counts as a possible minor in every image.",
)
@click.option("--negative-prompt", default="", help="The prompt's negative prompt.")
@click.option(
    "--policy",
    default="generation",
    show_default=True,
    metavar="NAME|FILE",
    help="Built-in policy (generation, child-safety, strict) or a policy TOML file.",
)
@click.option(
    "--detector",
    "detectors",
    multiple=True,
    metavar="NAME",
    help=f"Image detector, repeatable [default: {', '.join(DEFAULT_DETECTORS)}]. One that "
    "can't be loaded stops the command: no image is checked without it.",
)
@click.option(
    "--age-backend",
    type=click.Choice(sorted(AGE_MODEL_OPTION)),
    help="Apparent-age model kind (needs --age-model). Without one, explicit nudity counts as "
    "a possible minor.",
)
@click.option(
    "--age-model",
    type=click.Path(exists=True, path_type=Path),
    help="The age model: an .onnx file, or a local transformers model folder.",
)
@click.option(
    "--no-provenance",
    is_flag=True,
    help="Don't read C2PA manifests or Stable Diffusion's invisible watermarks.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Larger images are not decoded; they get the policy's on_error decision.",
)
def image_check(
    paths: tuple[Path, ...],
    prompt: str | None,
    negative_prompt: str,
    policy: str,
    detectors: tuple[str, ...],
    age_backend: str | None,
    age_model: Path | None,
    no_provenance: bool,
    max_pixels: int,
) -> None:
    """Check images (files, or folders walked recursively): one JSON line per image.

    Each line is {"path", "decision", "categories", "category_scores", "findings"}. An image
    that could not be read or decoded gets {"path", "decision", "error"}, the decision being
    the policy's on_error (review or block); one that decoded but that a detector or the age
    model failed on gets the full record plus "error", and at least on_error. Exit status 0
    whatever the decisions.
    """
    if negative_prompt and prompt is None:
        raise click.UsageError("--negative-prompt needs --prompt")
    names = detectors or DEFAULT_DETECTORS
    loaded = [_detector(name) for name in names]
    estimator = _age_estimator(age_backend, age_model)
    readers: list[ProvenanceReader] = []
    notes: list[str] = []
    if not no_provenance:
        readers, notes = default_provenance_readers()
    try:
        guard = ImageGuard(
            loaded,
            age_estimator=estimator,
            policy=policy,
            max_pixels=max_pixels,
            provenance=readers,
        )
    except GardienError as exc:
        raise click.ClickException(str(exc)) from None
    _describe(guard, names, age_backend, notes)
    # The prompt is screened once (the guard screens it under its own policy), not per image.
    prompt_verdict = None if prompt is None else guard.screen_prompt(prompt, negative_prompt)
    files = list(iter_media_paths(paths))
    tally: Counter[str] = Counter()
    failed = 0
    with progress_bar(files, "checking") as bar:
        for path in bar:
            verdict = guard.check(path, prompt_verdict=prompt_verdict, name=str(path))
            record = _record(path, verdict)
            tally[record["decision"]] += 1
            partial = any(f.kind == "limit" and f.concept == "frames" for f in verdict.findings)
            failed += "error" in record or partial
            click.echo(dumps(record))
    counts = ", ".join(f"{d}: {tally[d]}" for d in ("allow", "review", "block") if tally[d])
    click.echo(
        f"checked {len(files)} images ({counts or 'none'}); {failed} could not be fully checked",
        err=True,
    )


def _detector(name: str) -> ImageDetector:
    try:
        return load_detector(name)
    except Exception as exc:  # an ImportError or a model error as much as a VisionError
        message = f"cannot load detector {name!r}: {exc}"
        extra = EXTRAS.get(name)
        if extra and f"gardien[{extra}]" not in message:
            message += f"; install it with: pip install 'gardien[{extra}]'"
        raise click.ClickException(
            f"{message}. No image was checked: gardien does not check images without the "
            "detectors it was asked to use (choose others with --detector NAME)."
        ) from None


def _age_estimator(backend: str | None, model: Path | None) -> AgeEstimator | None:
    if backend is None and model is None:
        return None
    if backend is None:
        raise click.UsageError("--age-model needs --age-backend onnx|transformers")
    if model is None:
        raise click.UsageError("--age-backend needs --age-model PATH")
    try:
        return load_age_estimator(backend, **{AGE_MODEL_OPTION[backend]: str(model)})
    except Exception as exc:
        raise click.ClickException(
            f"cannot load the {backend} age model {str(model)!r}: {exc}. No image was checked."
        ) from None


def _describe(guard: ImageGuard, names: tuple[str, ...], age: str | None, notes: list[str]) -> None:
    """Say on stderr what the images are checked with, so a reader of the output knows."""
    ages = (
        f"age model: {age}" if age else "no age model: explicit nudity counts as a possible minor"
    )
    readers = ", ".join(r.name for r in guard.provenance) or "none"
    click.echo(
        f"checking with detectors: {', '.join(names)}; {ages}; policy {guard.policy.name}; "
        f"provenance: {readers}",
        err=True,
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)


def _record(path: Path, verdict: Verdict) -> dict[str, Any]:
    errors = [f for f in verdict.findings if f.kind == "error"]
    message = "; ".join(f.detail for f in errors)
    if any(f.concept == "undecodable" for f in errors):
        return {"path": str(path), "decision": verdict.decision.value, "error": message}
    out = verdict.to_dict()
    del out["policy"]
    record: dict[str, Any] = {"path": str(path), **out}
    if errors:
        record["error"] = message
    return record
