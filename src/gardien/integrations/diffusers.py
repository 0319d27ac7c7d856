"""gardien in diffusers pipelines: a drop-in safety checker, and a guard around any pipeline.

Two ways in, for two needs:

- :class:`GardienSafetyChecker` replaces ``pipe.safety_checker`` in Stable Diffusion 1.x/2.x style
  pipelines (every pipeline whose ``run_safety_checker`` calls
  ``safety_checker(images=..., clip_input=...)`` and expects ``(images, has_nsfw_concept)``).
  It runs after the VAE, so it can't stop a prompt from being generated; it withholds images.
  Not for pipelines that unpack three values from their checker (DeepFloyd IF,
  ``StableDiffusionUpscalePipeline``): wrap those with :func:`guard_pipeline`.
- :func:`guard_pipeline` wraps any pipeline (SD, SDXL, SD3, Flux, ...): prompts are screened
  before the pipeline is called, so a refused prompt never reaches the UNet or transformer, and
  every output image is checked afterwards with its prompt's verdict.

Both fail closed: an image whose check failed (a detector raised, the output could not be read,
its pixels were of the wrong scale or NaN, it was over the size limit) is withheld like a blocked
one, and its verdict says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
from PIL import Image

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "gardien.integrations.diffusers needs torch and diffusers: pip install 'gardien[diffusers]'"
    ) from exc

from gardien.core.errors import GardienError
from gardien.core.verdict import Decision, Verdict
from gardien.integrations._common import (
    IntegrationError,
    PromptScreener,
    build_image_guard,
    check_image,
    check_size,
    check_withhold_at,
    describe,
    max_pixels_of,
    merge_verdicts,
    prompt_for_image,
    require_detectors,
    screen_prompt_fields,
    to_rgb,
    withheld,
)
from gardien.media import RGBArray
from gardien.vision.guard import ImageGuard

__all__ = [
    "BlockedPrompt",
    "GardienSafetyChecker",
    "GuardedOutput",
    "GuardedPipeline",
    "IntegrationError",
    "guard_pipeline",
]

logger = logging.getLogger("gardien.integrations")

OnBlockedPrompt = Literal["raise", "refuse"]


class BlockedPrompt(GardienError):
    """A prompt was refused before generation. ``verdicts`` has one verdict per prompt of the
    call; ``verdict`` merges those that were refused."""

    def __init__(self, verdicts: Sequence[Verdict], refuse_at: Decision = Decision.REVIEW) -> None:
        self.verdicts = list(verdicts)
        refused = [i for i, v in enumerate(self.verdicts) if withheld(v, refuse_at)]
        self.refused = refused
        self.verdict = merge_verdicts([self.verdicts[i] for i in refused] or self.verdicts)
        which = (
            "the prompt"
            if len(self.verdicts) == 1
            else f"prompt {', '.join(map(str, refused))} of {len(self.verdicts)}"
        )
        super().__init__(f"gardien refused {which} before generation: {describe(self.verdict)}")


# -- the drop-in safety checker


class GardienSafetyChecker(torch.nn.Module):
    """A ``safety_checker`` for diffusers pipelines that runs gardien's image guard.

    ``pipe.safety_checker = GardienSafetyChecker(guard)`` (the pipeline also needs a
    ``feature_extractor``, as for the original checker; a default ``CLIPImageProcessor()`` does).
    Called as the pipeline calls it, with ``images`` (a torch tensor ``[B, C, H, W]`` in [-1, 1]
    straight from the VAE, or numpy ``[B, H, W, C]`` in [0, 1], or a list of either) and
    ``clip_input`` (ignored: detectors see the full image, not CLIP's 224-pixel crop). Returns
    ``(images, has_nsfw_concept)``: withheld images are replaced by zeros of the same shape and
    dtype (black once diffusers post-processes them), and the flag is True for each.

    A ``torch.nn.Module`` with no parameters, so ``pipe.to(device, dtype)``, ``.device`` and
    ``.dtype`` work as diffusers expects; the detectors run where they were loaded.

    The prompt: the pipeline doesn't pass it to its checker, so give it with
    ``with checker.prompt_context(prompt, negative_prompt): pipe(prompt, ...)``; an image then
    carries its prompt's signals (a prompt naming a minor makes nudity ``sexual/minors``).
    :func:`guard_pipeline` does this itself.

    Verdicts: ``checker.last_verdicts`` holds the verdicts of the last call in the current thread
    (or asyncio task): they live in a ``ContextVar``, so concurrent generations don't overwrite
    each other's. ``on_verdicts`` is called with every batch's verdicts, from the thread that ran
    the pipeline, for logging or review queues across threads.
    """

    _placement: torch.Tensor

    def __init__(
        self,
        guard: ImageGuard | None = None,
        *,
        prompt_guard: PromptScreener | None = None,
        withhold_at: Decision | str = Decision.REVIEW,
        signed_tensors: bool = True,
        on_verdicts: Callable[[list[Verdict]], None] | None = None,
    ) -> None:
        super().__init__()
        self.guard = require_detectors(guard if guard is not None else build_image_guard())
        self.prompt_guard = prompt_guard
        self.withhold_at = check_withhold_at(withhold_at)
        #: Tensors hold [-1, 1] (what ``run_safety_checker`` passes, before denormalising).
        self.signed_tensors = signed_tensors
        self.on_verdicts = on_verdicts
        # An empty buffer follows .to(device, dtype), so .device and .dtype answer like a model's.
        self.register_buffer("_placement", torch.zeros(0), persistent=False)
        self._prompts: ContextVar[tuple[Verdict, ...]] = ContextVar(
            f"gardien_prompts_{id(self)}", default=()
        )
        self._last: ContextVar[tuple[Verdict, ...]] = ContextVar(
            f"gardien_verdicts_{id(self)}", default=()
        )

    @property
    def device(self) -> torch.device:
        return self._placement.device

    @property
    def dtype(self) -> torch.dtype:
        return self._placement.dtype

    @property
    def last_verdicts(self) -> list[Verdict]:
        """The verdicts of this context's last call, one per image."""
        return list(self._last.get())

    def screen_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        **fields: Any,
    ) -> list[Verdict]:
        """One verdict per prompt (``prompt_2``, ``negative_prompt_2``... may be given too)."""
        if self.prompt_guard is None:
            from gardien.text import PromptGuard

            self.prompt_guard = PromptGuard()
        fields = {"prompt": prompt, "negative_prompt": negative_prompt, **fields}
        return screen_prompt_fields(self.prompt_guard, fields)

    @contextlib.contextmanager
    def prompt_context(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        *,
        verdicts: Sequence[Verdict] | None = None,
        **fields: Any,
    ) -> Iterator[list[Verdict]]:
        """Within the block, images are checked with these prompts' verdicts (screened here, or
        given). Yields the verdicts, so a caller can refuse before generating."""
        if verdicts is None:
            verdicts = self.screen_prompt(prompt, negative_prompt, **fields)
        token = self._prompts.set(tuple(verdicts))
        try:
            yield list(verdicts)
        finally:
            self._prompts.reset(token)

    @torch.no_grad()
    def forward(self, clip_input: Any = None, images: Any = None) -> tuple[Any, list[bool]]:
        if images is None:
            raise TypeError("GardienSafetyChecker was called without images")
        verdicts = check_all(
            self.guard, images, self._prompts.get(), signed_tensors=self.signed_tensors
        )
        flags = [withheld(v, self.withhold_at) for v in verdicts]
        self._last.set(tuple(verdicts))
        if self.on_verdicts is not None:
            self.on_verdicts(list(verdicts))
        _log_withheld(verdicts, flags)
        return with_placeholders(images, flags), flags


# -- any pipeline


@dataclass(frozen=True)
class GuardedOutput:
    """What a guarded pipeline returns.

    ``images`` are the pipeline's images in its ``output_type`` (a list of PIL images, a numpy
    ``[B, H, W, C]`` array or a torch ``[B, C, H, W]`` tensor) with withheld ones replaced by
    black placeholders; ``verdicts`` and ``withheld`` have one entry per image;
    ``prompt_verdicts`` one per prompt. ``output`` is the pipeline's own output object (its images
    replaced too, and a ``gardien_verdicts`` attribute where it takes one). A refused prompt gives
    no images, no ``output``, and ``refusal`` says why.
    """

    images: Any
    verdicts: list[Verdict]
    prompt_verdicts: list[Verdict]
    withheld: list[bool]
    refusal: BlockedPrompt | None = None
    output: Any = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    @property
    def allowed(self) -> bool:
        """True when the prompt was accepted and no image was withheld."""
        return self.refusal is None and not any(self.withheld)


class GuardedPipeline:
    """A diffusers pipeline whose prompts are screened before generation and images after.

    Call it like the pipeline. Prompts are read from ``prompt``, ``negative_prompt``,
    ``prompt_2``, ``negative_prompt_2``, ``prompt_3``, ``negative_prompt_3`` (strings or lists,
    positional or keyword); a request whose verdict is at or above ``refuse_at`` (``review`` by
    default) raises :class:`BlockedPrompt`, or with ``on_blocked_prompt="refuse"`` returns a
    :class:`GuardedOutput` with ``refusal`` set, without calling the pipeline. Embeddings passed
    instead of text (``prompt_embeds``; or ``image_embeds`` and other ``*_embeds`` /
    ``*_embeddings`` with no prompt text) can't be screened and count as a failed check.

    When the pipeline's ``safety_checker`` is a :class:`GardienSafetyChecker`, it gets the prompt
    verdicts, and its verdicts on the images it saw (before blacking any out) are merged into the
    wrapper's own.

    Other attributes are the pipeline's, to read and to set (``guarded.scheduler = ...``), and
    ``guarded.to(...)`` moves the pipeline and returns the guarded one. Like the pipeline itself,
    one instance should not run two generations at once.
    """

    def __init__(
        self,
        pipe: Any,
        guard: ImageGuard | None = None,
        *,
        prompt_guard: PromptScreener | None = None,
        on_blocked_prompt: OnBlockedPrompt = "raise",
        refuse_at: Decision | str = Decision.REVIEW,
        withhold_at: Decision | str = Decision.REVIEW,
    ) -> None:
        if on_blocked_prompt not in ("raise", "refuse"):
            raise ValueError(
                f"on_blocked_prompt must be 'raise' or 'refuse', not {on_blocked_prompt!r}"
            )
        self.pipe = pipe
        self.guard = require_detectors(guard if guard is not None else build_image_guard())
        if prompt_guard is None:
            from gardien.text import PromptGuard

            prompt_guard = PromptGuard()
        self.prompt_guard = prompt_guard
        self.on_blocked_prompt = on_blocked_prompt
        self.refuse_at = check_withhold_at(refuse_at)
        self.withhold_at = check_withhold_at(withhold_at)
        try:
            self._signature: inspect.Signature | None = inspect.signature(pipe.__call__)
        except (TypeError, ValueError):
            self._signature = None

    _OWN = frozenset(
        {"pipe", "guard", "prompt_guard", "on_blocked_prompt", "refuse_at", "withhold_at"}
    )

    def __getattr__(self, name: str) -> Any:
        if name == "pipe":  # not set yet (copying, unpickling): don't recurse
            raise AttributeError(name)
        return getattr(self.pipe, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """The wrapper's own settings stay here; anything else (``guarded.scheduler = ...``)
        goes to the pipeline, as it would without the wrapper."""
        if name in self._OWN or name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.pipe, name, value)

    def to(self, *args: Any, **kwargs: Any) -> GuardedPipeline:
        """Move the pipeline, and return the guarded one (``pipe.to`` returns the bare pipeline)."""
        self.pipe.to(*args, **kwargs)
        return self

    def screen_prompts(self, *args: Any, **kwargs: Any) -> list[Verdict]:
        """The prompt verdicts a call with these arguments would get, one per prompt."""
        return screen_prompt_fields(self.prompt_guard, self._arguments(args, kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> GuardedOutput:
        arguments = self._arguments(args, kwargs)
        if arguments.get("output_type") == "latent":
            raise IntegrationError(
                "output_type='latent' returns latents, which gardien can't check; guard the "
                "pipeline that decodes them (for SDXL, the refiner) instead"
            )
        prompt_verdicts = screen_prompt_fields(self.prompt_guard, arguments)
        if any(withheld(v, self.refuse_at) for v in prompt_verdicts):
            refusal = BlockedPrompt(prompt_verdicts, self.refuse_at)
            logger.warning("%s", refusal)
            if self.on_blocked_prompt == "raise":
                raise refusal
            return GuardedOutput([], [], prompt_verdicts, [], refusal=refusal)
        checker = getattr(self.pipe, "safety_checker", None)
        if not isinstance(checker, GardienSafetyChecker):
            checker = None
        context: contextlib.AbstractContextManager[Any] = (
            checker.prompt_context(verdicts=prompt_verdicts)
            if checker is not None
            else contextlib.nullcontext()
        )
        with context:
            if checker is not None:
                checker._last.set(())  # what it finds in this call, not in an earlier one
            output = self.pipe(*args, **kwargs)
            checked = checker.last_verdicts if checker is not None else []
        images = _output_images(output)
        # After post-processing, tensors ("pt") hold [0, 1] like numpy arrays.
        verdicts = check_all(self.guard, images, prompt_verdicts, signed_tensors=False)
        flags = [withheld(v, self.withhold_at) for v in verdicts]
        if checked and checker is not None:
            # The checker saw the images before they were blacked out; this check may have seen
            # only its placeholders. Each image keeps the stricter of both verdicts.
            verdicts, flags = _with_checker_verdicts(
                verdicts, flags, checked, checker.withhold_at, self.withhold_at
            )
        _log_withheld(verdicts, flags)
        images = with_placeholders(images, flags)
        output = _replace_images(output, images)
        with contextlib.suppress(AttributeError, TypeError):
            output.gardien_verdicts = verdicts
        return GuardedOutput(images, verdicts, prompt_verdicts, flags, output=output)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, wherever they were given."""
        if self._signature is None:
            return {"prompt": args[0], **kwargs} if args else dict(kwargs)
        bound = self._signature.bind_partial(*args, **kwargs)
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                out[name] = value
        return out


def guard_pipeline(
    pipe: Any,
    guard: ImageGuard | None = None,
    *,
    prompt_guard: PromptScreener | None = None,
    on_blocked_prompt: OnBlockedPrompt = "raise",
    refuse_at: Decision | str = Decision.REVIEW,
    withhold_at: Decision | str = Decision.REVIEW,
) -> GuardedPipeline:
    """Wrap ``pipe`` so prompts are screened before generation and images checked after.

    Without ``guard``, detectors are loaded by name from GARDIEN_DETECTORS (default
    ``nudenet``); if none loads, this raises rather than guard nothing.
    """
    return GuardedPipeline(
        pipe,
        guard,
        prompt_guard=prompt_guard,
        on_blocked_prompt=on_blocked_prompt,
        refuse_at=refuse_at,
        withhold_at=withhold_at,
    )


# -- images in and out


def check_all(
    guard: ImageGuard,
    images: Any,
    prompt_verdicts: Sequence[Verdict],
    *,
    signed_tensors: bool,
) -> list[Verdict]:
    """One verdict per image of a batch, each with the verdict of the prompt that produced it."""
    count = len(images)
    return [
        check_image(
            guard,
            partial(_pixels, images, i, signed_tensors, max_pixels_of(guard)),
            prompt_verdict=prompt_for_image(i, count, prompt_verdicts),
            name=f"image {i}",
        )
        for i in range(count)
    ]


def with_placeholders(images: Any, flags: Sequence[bool]) -> Any:
    """``images`` with each flagged one replaced by zeros (black) of the same shape and dtype.

    The caller's batch is copied, not changed in place. A flagged image of a kind that has no
    placeholder raises: it is never returned as it was.
    """
    if not any(flags):
        return images
    if isinstance(images, torch.Tensor):
        out_t = images.clone()
        for i, flag in enumerate(flags):
            if flag:
                out_t[i] = 0
        return out_t
    if isinstance(images, np.ndarray):
        out_a = images.copy()
        for i, flag in enumerate(flags):
            if flag:
                out_a[i] = 0
        return out_a
    if isinstance(images, list | tuple):
        replaced = [_placeholder(x) if flag else x for x, flag in zip(images, flags, strict=True)]
        return type(images)(replaced) if isinstance(images, tuple) else replaced
    raise IntegrationError(f"cannot withhold images held in a {type(images).__name__}")


def _placeholder(image: Any) -> Any:
    if isinstance(image, torch.Tensor):
        return torch.zeros_like(image)
    if isinstance(image, np.ndarray):
        return np.zeros_like(image)
    if isinstance(image, Image.Image):
        return Image.new(image.mode if image.mode in ("RGB", "RGBA", "L") else "RGB", image.size)
    raise IntegrationError(f"cannot make a placeholder for a {type(image).__name__}")


def _pixels(images: Any, index: int, signed_tensors: bool, max_pixels: int) -> RGBArray:
    """Image ``index`` of a batch as H x W x 3 uint8. Torch tensors are channels-first.

    The size is checked from the shape before anything is converted, and torch tensors must hold
    floats: an integer tensor is neither [0, 1] nor [-1, 1], and casting it would check the
    wrong pixels.
    """
    item = images[index]
    if isinstance(item, Image.Image):
        check_size(item.height, item.width, max_pixels, name=f"image {index}")
        return to_rgb(np.asarray(item.convert("RGB")))
    if isinstance(item, torch.Tensor):
        if not item.is_floating_point():
            raise IntegrationError(
                f"image {index} is a {item.dtype} tensor; pipelines give float tensors in "
                "[-1, 1] or [0, 1], and an integer one can't be read as either"
            )
        _check_shape_size(tuple(item.shape), True, max_pixels, index)
        array = item.detach().to(device="cpu", dtype=torch.float32).numpy()
        return to_rgb(_channels_last(array, channels_first=True), signed=signed_tensors)
    array = np.asarray(item)
    _check_shape_size(array.shape, False, max_pixels, index)
    return to_rgb(_channels_last(array, channels_first=False))


def _check_shape_size(
    shape: tuple[int, ...], channels_first: bool, max_pixels: int, index: int
) -> None:
    """The size check on an unconverted array or tensor, from its shape."""
    if len(shape) == 2:
        check_size(shape[0], shape[1], max_pixels, name=f"image {index}")
    elif len(shape) == 3:
        first, last = shape[0] in (1, 3, 4), shape[-1] in (1, 3, 4)
        h, w = (shape[1], shape[2]) if first and (channels_first or not last) else shape[:2]
        check_size(h, w, max_pixels, name=f"image {index}")


def _channels_last(array: np.ndarray[Any, Any], *, channels_first: bool) -> np.ndarray[Any, Any]:
    if array.ndim != 3:
        return array
    first, last = array.shape[0] in (1, 3, 4), array.shape[-1] in (1, 3, 4)
    if first and (channels_first or not last):
        return array.transpose(1, 2, 0)
    return array


def _output_images(output: Any) -> Any:
    images = getattr(output, "images", None)
    if images is not None:
        return images
    if isinstance(output, tuple) and output:
        return output[0]
    raise IntegrationError(
        f"cannot find the images in the pipeline's output ({type(output).__name__}); "
        "gardien can't check them, so none is returned"
    )


def _replace_images(output: Any, images: Any) -> Any:
    if getattr(output, "images", None) is not None:
        output.images = images
        return output
    return (images, *output[1:])


def _with_checker_verdicts(
    verdicts: Sequence[Verdict],
    flags: Sequence[bool],
    checked: Sequence[Verdict],
    checker_withhold_at: Decision,
    withhold_at: Decision,
) -> tuple[list[Verdict], list[bool]]:
    """The wrapper's verdicts merged with those of a :class:`GardienSafetyChecker` on the same
    pipeline, image by image (or, when the counts differ, all of the checker's into each).

    An image is withheld when the merged verdict reaches ``withhold_at``, or when the checker
    withheld it: the caller then holds a black image, whatever the second check said of it.
    """
    merged, held = [], []
    for i, (verdict, flag) in enumerate(zip(verdicts, flags, strict=True)):
        theirs = [checked[i]] if len(checked) == len(verdicts) else list(checked)
        combined = merge_verdicts([verdict, *theirs])
        # Both carry the prompt's findings: keep each finding once.
        combined = dataclasses.replace(combined, findings=tuple(dict.fromkeys(combined.findings)))
        merged.append(combined)
        held.append(
            flag
            or withheld(combined, withhold_at)
            or any(withheld(v, checker_withhold_at) for v in theirs)
        )
    return merged, held


def _log_withheld(verdicts: Sequence[Verdict], flags: Sequence[bool]) -> None:
    for i, (verdict, flag) in enumerate(zip(verdicts, flags, strict=True)):
        if flag:
            logger.warning("gardien withheld image %d: %s", i, describe(verdict))
