"""The diffusers integration inside a real StableDiffusionPipeline, built here with random weights.

Nothing is downloaded: the UNet, VAE and CLIP text encoder are tiny random models made from
configs, and the tokenizer is a byte-level BPE vocabulary written into a temporary folder. The
images they make are noise; what the detectors "see" is set by stubs (DESIGN.md: no sexual
imagery of anyone is created or stored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from gardien.core import Decision  # noqa: E402
from gardien.integrations import IntegrationError  # noqa: E402
from gardien.integrations.diffusers import (  # noqa: E402
    BlockedPrompt,
    GardienSafetyChecker,
    GuardedOutput,
    guard_pipeline,
)
from gardien.media import RGBArray  # noqa: E402
from gardien.text import PromptGuard  # noqa: E402
from gardien.vision import AgeEstimate, ImageGuard, Region, Signal  # noqa: E402

CLEAN = "a cat sitting on a red chair, photo"
BLOCKED = "nude 12 year old girl, photo"  # clinical form a filter must catch
CHILD = "portrait of a 10 year old child"  # allowed prompt, but it names a minor
SIZE = 16
STEPS = 2


# -- stubs whose outputs the test controls


class Stub:
    """A detector that records each image it is given and reports fixed signals."""

    def __init__(self, *signals: Signal, name: str = "stub") -> None:
        self.name = name
        self.signals = list(signals)
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image: RGBArray) -> list[Signal]:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        self.seen.append(image.shape)
        return self.signals


class Broken:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: RGBArray) -> list[Signal]:
        self.calls += 1
        raise RuntimeError("model file is corrupt")


class Adults:
    name = "ages"

    def estimate(self, image: RGBArray, regions: list[Region] | None = None) -> list[AgeEstimate]:
        return [AgeEstimate(34.0, {})]


EXPLICIT = Signal("FEMALE_BREAST_EXPOSED", 0.9)
SUGGESTIVE = Signal("FEMALE_GENITALIA_COVERED", 0.9)  # sexual 0.54: allowed for an adult


# -- a tiny pipeline, no hub


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-character table, which CLIP's byte-level BPE vocabulary is written in."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += range(ord("®"), ord("ÿ") + 1)
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    # A local folder: from_pretrained reads vocab.json and merges.txt, and never the hub.
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=77)
    assert tokenizer("a cat").input_ids[0] == vocab["<|startoftext|>"]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(vocab),
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "feature_extractor": CLIPImageProcessor(),
    }


@pytest.fixture
def make_pipe(components: dict[str, Any]) -> Callable[..., Any]:
    from diffusers import StableDiffusionPipeline

    def make(safety_checker: Any = None) -> Any:
        pipe = StableDiffusionPipeline(
            **components, safety_checker=safety_checker, requires_safety_checker=False
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return make


@pytest.fixture
def denoiser_calls(components: dict[str, Any]) -> Iterator[list[int]]:
    """How many times the UNet ran during the test."""
    calls: list[int] = []
    handle = components["unet"].register_forward_pre_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


@pytest.fixture(scope="module")
def prompt_guard() -> PromptGuard:
    return PromptGuard()


def generate(pipe: Any, prompt: Any = CLEAN, **kwargs: Any) -> Any:
    kwargs.setdefault("output_type", "np")
    return pipe(
        prompt,
        num_inference_steps=STEPS,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )


# -- the guarded pipeline


@pytest.mark.parametrize("mode", ["raise", "refuse"])
def test_blocked_prompt_never_reaches_the_denoiser(
    make_pipe: Callable[..., Any],
    denoiser_calls: list[int],
    prompt_guard: PromptGuard,
    mode: str,
) -> None:
    stub = Stub()
    guarded = guard_pipeline(
        make_pipe(), ImageGuard([stub]), prompt_guard=prompt_guard, on_blocked_prompt=mode
    )
    if mode == "raise":
        with pytest.raises(BlockedPrompt, match="refused the prompt before generation") as info:
            generate(guarded, BLOCKED)
        refusal = info.value
    else:
        out = generate(guarded, BLOCKED)
        assert out.refused and not out.allowed
        assert out.images == [] and out.verdicts == [] and out.output is None
        assert out.refusal is not None
        refusal = out.refusal
    assert refusal.verdict.decision is Decision.BLOCK
    assert refusal.verdict.categories["sexual/minors"]
    assert "sexual/minors" in str(refusal)
    assert denoiser_calls == [] and stub.seen == []
    generate(guarded, CLEAN)  # the hook does see a generation
    assert len(denoiser_calls) == STEPS


def test_one_blocked_prompt_in_a_batch_refuses_the_call(
    make_pipe: Callable[..., Any], denoiser_calls: list[int], prompt_guard: PromptGuard
) -> None:
    guarded = guard_pipeline(make_pipe(), ImageGuard([Stub()]), prompt_guard=prompt_guard)
    with pytest.raises(BlockedPrompt, match="prompt 1 of 2") as info:
        generate(guarded, [CLEAN, BLOCKED])
    assert [v.decision for v in info.value.verdicts] == [Decision.ALLOW, Decision.BLOCK]
    assert info.value.refused == [1]
    with pytest.raises(BlockedPrompt):
        generate(guarded, CLEAN, negative_prompt="adult, mature, grown woman", prompt_2=BLOCKED)
    assert denoiser_calls == []


def test_embeddings_without_text_cannot_be_screened(
    make_pipe: Callable[..., Any], denoiser_calls: list[int], prompt_guard: PromptGuard
) -> None:
    guarded = guard_pipeline(make_pipe(), ImageGuard([Stub()]), prompt_guard=prompt_guard)
    with pytest.raises(BlockedPrompt, match="prompt_embeds given in place of text"):
        generate(guarded, None, prompt_embeds=torch.zeros(1, 77, 32))
    assert denoiser_calls == []


def test_latent_output_is_refused_before_generation(
    make_pipe: Callable[..., Any], denoiser_calls: list[int], prompt_guard: PromptGuard
) -> None:
    guarded = guard_pipeline(make_pipe(), ImageGuard([Stub()]), prompt_guard=prompt_guard)
    with pytest.raises(IntegrationError, match="latent"):
        generate(guarded, CLEAN, output_type="latent")
    assert denoiser_calls == []


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_every_output_image_goes_through_the_guard(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard, output_type: str
) -> None:
    stub = Stub()
    guarded = guard_pipeline(make_pipe(), ImageGuard([stub]), prompt_guard=prompt_guard)
    out = generate(guarded, [CLEAN, "a dog"], num_images_per_prompt=2, output_type=output_type)
    assert isinstance(out, GuardedOutput) and out.allowed
    assert stub.seen == [(SIZE, SIZE, 3)] * 4
    assert len(out.verdicts) == 4 and len(out.prompt_verdicts) == 2
    assert out.withheld == [False] * 4
    assert out.output.gardien_verdicts == out.verdicts
    assert out.output.images is out.images
    if output_type == "pil":
        assert [im.size for im in out.images] == [(SIZE, SIZE)] * 4
    else:
        assert tuple(out.images.shape) in ((4, SIZE, SIZE, 3), (4, 3, SIZE, SIZE))


def test_each_image_carries_its_own_prompt(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard
) -> None:
    """Suggestive content of an adult is allowed, unless its prompt asked for a child."""
    guard = ImageGuard([Stub(SUGGESTIVE)], age_estimator=Adults())
    guarded = guard_pipeline(make_pipe(), guard, prompt_guard=prompt_guard, refuse_at="block")
    out = generate(guarded, [CLEAN, CHILD], num_images_per_prompt=2)
    assert [v.decision for v in out.prompt_verdicts] == [Decision.ALLOW, Decision.ALLOW]
    assert out.withheld == [False, False, True, True]
    assert out.verdicts[2].categories["sexual/minors"]
    assert any(f.concept == "prompt" for f in out.verdicts[2].findings)
    assert np.abs(out.images[:2]).sum() > 0 and not out.images[2:].any()


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_detector_failure_fails_closed(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard, output_type: str
) -> None:
    broken = Broken()
    guarded = guard_pipeline(make_pipe(), ImageGuard([broken]), prompt_guard=prompt_guard)
    out = generate(guarded, CLEAN, num_images_per_prompt=2, output_type=output_type)
    assert broken.calls == 2
    assert out.withheld == [True, True] and not out.allowed
    for verdict in out.verdicts:
        assert verdict.decision is Decision.BLOCK  # generation policy: on_error = block
        assert any(f.kind == "error" and "corrupt" in f.detail for f in verdict.findings)
    if output_type == "pil":
        assert all(not np.asarray(im).any() for im in out.images)
    else:
        assert not np.asarray(out.images).any()


def test_flagged_images_are_replaced_everywhere(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard
) -> None:
    guarded = guard_pipeline(make_pipe(), ImageGuard([Stub(EXPLICIT)]), prompt_guard=prompt_guard)
    out = generate(guarded, CLEAN, output_type="pil")
    assert out.withheld == [True]
    assert out.verdicts[0].categories["sexual/minors"]  # no age model: fails closed
    assert isinstance(out.images[0], Image.Image) and not np.asarray(out.images[0]).any()
    assert out.output.images[0] is out.images[0]


def test_a_guard_that_sees_nothing_is_refused(
    make_pipe: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    blind = ImageGuard([Stub()])
    blind.detectors.clear()  # ImageGuard([]) is refused at once; require_detectors still checks
    with pytest.raises(IntegrationError, match="no detectors"):
        guard_pipeline(make_pipe(), blind)
    monkeypatch.setenv("GARDIEN_DETECTORS", "no-such-detector")
    with pytest.raises(IntegrationError, match="no-such-detector"):
        guard_pipeline(make_pipe())


def test_guarded_pipeline_delegates_and_stays_guarded(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard
) -> None:
    pipe = make_pipe()
    guarded = guard_pipeline(pipe, ImageGuard([Stub()]), prompt_guard=prompt_guard)
    assert guarded.to("cpu") is guarded
    assert guarded.scheduler is pipe.scheduler
    scheduler = diffusers.PNDMScheduler.from_config(pipe.scheduler.config, skip_prk_steps=True)
    guarded.scheduler = scheduler
    assert pipe.scheduler is scheduler
    assert generate(guarded, CLEAN).allowed


class FakeFlux:
    """A pipeline shaped like Flux/SDXL (prompt and prompt_2), to test screening only."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        prompt_2: str | list[str] | None = None,
        negative_prompt: str | None = None,
        num_images_per_prompt: int = 1,
        return_dict: bool = True,
    ) -> Any:
        self.calls += 1
        count = (len(prompt) if isinstance(prompt, list) else 1) * num_images_per_prompt
        images = [Image.new("RGB", (8, 8), (120, 30, 200)) for _ in range(count)]
        return (images,) if not return_dict else type("Out", (), {"images": images})()


def test_prompts_split_across_text_encoders_are_read_together(prompt_guard: PromptGuard) -> None:
    fake = FakeFlux()
    guarded = guard_pipeline(fake, ImageGuard([Stub()]), prompt_guard=prompt_guard)
    assert [v.decision for v in guarded.screen_prompts("nude")] == [Decision.ALLOW]
    assert [v.decision for v in guarded.screen_prompts("12 year old girl")] == [Decision.ALLOW]
    verdicts = guarded.screen_prompts("nude", prompt_2="12 year old girl")
    assert verdicts[0].decision is Decision.BLOCK
    assert any(f.field and "joined" in f.field for f in verdicts[0].findings)
    with pytest.raises(BlockedPrompt):
        guarded(prompt="nude, photo", prompt_2="12 year old girl")
    with pytest.raises(BlockedPrompt):
        guarded(CLEAN, BLOCKED)  # prompt_2 given positionally
    assert fake.calls == 0
    out = guarded([CLEAN, "a dog"], num_images_per_prompt=3, return_dict=False)
    assert fake.calls == 1 and len(out.verdicts) == 6 and out.allowed
    assert isinstance(out.output, tuple) and out.output[0] is out.images


# -- the drop-in safety checker


def test_safety_checker_flags_inside_the_real_pipeline(make_pipe: Callable[..., Any]) -> None:
    stub = Stub(EXPLICIT)
    seen: list[list[Any]] = []
    checker = GardienSafetyChecker(ImageGuard([stub]), on_verdicts=seen.append)
    pipe = make_pipe(safety_checker=checker)
    assert pipe.to("cpu", torch.float32) is pipe and pipe.dtype == torch.float32
    out = generate(pipe, [CLEAN, "a dog"])
    assert out.nsfw_content_detected == [True, True]
    assert out.images.shape == (2, SIZE, SIZE, 3) and not out.images.any()
    assert stub.seen == [(SIZE, SIZE, 3)] * 2
    assert [v.decision for v in checker.last_verdicts] == [Decision.BLOCK] * 2
    assert seen == [checker.last_verdicts]


def test_safety_checker_leaves_clean_images_unchanged(make_pipe: Callable[..., Any]) -> None:
    reference = generate(make_pipe(), CLEAN).images
    pipe = make_pipe()
    pipe.safety_checker = GardienSafetyChecker(ImageGuard([Stub()]))
    out = generate(pipe, CLEAN)
    assert out.nsfw_content_detected == [False]
    np.testing.assert_array_equal(out.images, reference)
    assert reference.any()


def test_safety_checker_failure_fails_closed(make_pipe: Callable[..., Any]) -> None:
    pipe = make_pipe(safety_checker=GardienSafetyChecker(ImageGuard([Broken()])))
    out = generate(pipe, CLEAN, output_type="pil")
    assert out.nsfw_content_detected == [True]
    assert not np.asarray(out.images[0]).any()
    verdict = pipe.safety_checker.last_verdicts[0]
    assert verdict.decision is not Decision.ALLOW
    assert any("corrupt" in f.detail for f in verdict.findings)


def test_safety_checker_reads_the_prompt_from_its_context(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard
) -> None:
    guard = ImageGuard([Stub(SUGGESTIVE)], age_estimator=Adults())
    checker = GardienSafetyChecker(guard, prompt_guard=prompt_guard)
    pipe = make_pipe(safety_checker=checker)
    assert generate(pipe, CHILD).nsfw_content_detected == [False]  # no prompt: an adult's image
    with checker.prompt_context(CHILD) as verdicts:
        assert verdicts[0].decision is Decision.ALLOW
        assert generate(pipe, CHILD).nsfw_content_detected == [True]
    assert checker.last_verdicts[0].categories["sexual/minors"]
    # guard_pipeline hands its prompt verdicts to a gardien checker it finds on the pipeline
    guarded = guard_pipeline(
        pipe, ImageGuard([Stub()]), prompt_guard=prompt_guard, refuse_at="block"
    )
    out = generate(guarded, CHILD)
    assert out.output.nsfw_content_detected == [True]
    assert not out.images.any()  # the checker's placeholder comes through
    # ...and so does its verdict: the wrapper's own check saw only the black placeholder
    assert out.withheld == [True] and not out.allowed
    assert out.verdicts[0].decision is Decision.BLOCK
    assert out.verdicts[0].categories["sexual/minors"]


def test_safety_checker_takes_numpy_batches_and_lists() -> None:
    checker = GardienSafetyChecker(ImageGuard([Stub(EXPLICIT)]), withhold_at="block")
    batch = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    images, flags = checker(images=batch, clip_input=None)
    assert flags == [True, True] and images.dtype == np.float32 and not images.any()
    assert batch.any()  # the caller's array is not changed in place
    tensors = [torch.rand(3, 8, 8) * 2 - 1 for _ in range(2)]
    images, flags = checker(images=tensors, clip_input=None)
    assert flags == [True, True] and all(not t.any() for t in images)
    clean = GardienSafetyChecker(ImageGuard([Stub()]))
    images, flags = clean(images=batch, clip_input=None)
    assert flags == [False, False] and images is batch


def test_safety_checker_rejects_allow_as_a_threshold() -> None:
    with pytest.raises(ValueError, match="withhold"):
        GardienSafetyChecker(ImageGuard([Stub()]), withhold_at="allow")


def test_unreadable_output_is_withheld() -> None:
    checker = GardienSafetyChecker(ImageGuard([Stub()]))
    odd = np.ones((2, 5, 5, 7), dtype=np.float32)  # seven channels: not an image
    images, flags = checker(images=odd, clip_input=None)
    assert flags == [True, True] and not images.any()
    assert "cannot read the image" in checker.last_verdicts[0].findings[0].detail


# -- pixels outside the expected range, and sizes


class NonBlack:
    """Reports explicit nudity in any image that isn't all black (a stand-in for a model)."""

    name = "nonblack"

    def detect(self, image: RGBArray) -> list[Signal]:
        return [EXPLICIT] if image.max() > 0 else []


@pytest.mark.parametrize(
    ("images", "reason"),
    [
        (torch.full((1, 3, 8, 8), 128, dtype=torch.uint8), "torch.uint8 tensor"),
        (torch.full((1, 3, 8, 8), 128.0), "outside the expected"),  # 0..255 in a float tensor
        (torch.full((1, 3, 8, 8), float("nan")).half(), "NaN or infinite"),  # fp16 VAE overflow
        (np.full((1, 8, 8, 3), 200.0, np.float32), "outside the expected"),
        (np.full((1, 8, 8, 3), -0.5, np.float32), "outside the expected"),  # [-1, 1] in numpy
    ],
)
def test_safety_checker_refuses_pixels_outside_the_range(images: Any, reason: str) -> None:
    stub = Stub()  # sees nothing: would allow whatever it is shown
    checker = GardienSafetyChecker(ImageGuard([stub]))
    out, flags = checker(images=images, clip_input=None)
    assert flags == [True] and not out.any()
    verdict = checker.last_verdicts[0]
    assert verdict.decision is Decision.BLOCK  # the generation policy's on_error
    assert reason in verdict.findings[0].detail and verdict.findings[0].kind == "error"
    assert stub.seen == []


def test_safety_checker_reads_a_vae_overshoot() -> None:
    stub = Stub()
    checker = GardienSafetyChecker(ImageGuard([stub]))
    raw = torch.linspace(-1.4, 1.4, 3 * 8 * 8).reshape(1, 3, 8, 8)  # unclamped VAE output
    out, flags = checker(images=raw, clip_input=None)
    assert flags == [False] and out is raw and stub.seen == [(8, 8, 3)]


def test_oversized_images_are_refused_before_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    from gardien.integrations import diffusers as integration

    converted: list[tuple[int, ...]] = []
    real = integration.to_rgb

    def to_rgb(image: Any, **kwargs: Any) -> RGBArray:
        converted.append(tuple(np.asarray(image).shape))
        return real(image, **kwargs)

    monkeypatch.setattr(integration, "to_rgb", to_rgb)
    checker = GardienSafetyChecker(ImageGuard([Stub()], max_pixels=100))
    for big in (
        torch.zeros(1, 3, 16, 16),
        np.zeros((1, 16, 16, 3), np.float32),
        [Image.new("RGB", (16, 16))],
    ):
        _, flags = checker(images=big, clip_input=None)
        assert flags == [True]
        assert "16x16 exceeds 100 pixels" in checker.last_verdicts[0].findings[0].detail
    assert converted == []
    _, flags = checker(images=torch.zeros(1, 3, 8, 8), clip_input=None)
    assert flags == [False] and converted == [(8, 8, 3)]


# -- a guarded pipeline whose safety_checker is gardien's


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_guarded_pipeline_keeps_its_checkers_verdicts(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard, output_type: str
) -> None:
    guard = ImageGuard([NonBlack()])
    checker = GardienSafetyChecker(guard)
    guarded = guard_pipeline(make_pipe(safety_checker=checker), guard, prompt_guard=prompt_guard)
    out = generate(guarded, [CLEAN, "a dog"], output_type=output_type)
    # the checker blacked both images out; checked again, black images alone would be allowed
    assert out.output.nsfw_content_detected == [True, True]
    assert out.withheld == [True, True] and not out.allowed
    assert [v.decision for v in out.verdicts] == [Decision.BLOCK] * 2
    assert all(any("nonblack" in f.detail for f in v.findings) for v in out.verdicts)
    assert out.output.gardien_verdicts == out.verdicts
    # a clean image: both checks allow it, and it is returned
    clean = GardienSafetyChecker(ImageGuard([Stub()]))
    guarded = guard_pipeline(make_pipe(safety_checker=clean), ImageGuard([Stub()]))
    out = generate(guarded, CLEAN, output_type=output_type)
    assert out.allowed and [v.decision for v in out.verdicts] == [Decision.ALLOW]


def test_guarded_pipeline_withholds_what_its_checker_withheld(
    make_pipe: Callable[..., Any], prompt_guard: PromptGuard
) -> None:
    # the checker withholds from review, the wrapper only from block: the image is black either
    # way, so the caller is told it was withheld
    guard = ImageGuard([Broken()], policy="child-safety")  # a failed check: review
    checker = GardienSafetyChecker(guard, withhold_at="review")
    guarded = guard_pipeline(
        make_pipe(safety_checker=checker),
        ImageGuard([Stub()]),
        prompt_guard=prompt_guard,
        withhold_at="block",
    )
    out = generate(guarded, CLEAN)
    assert out.output.nsfw_content_detected == [True] and not out.images.any()
    assert out.withheld == [True] and out.verdicts[0].decision is Decision.REVIEW
    assert any("corrupt" in f.detail for f in out.verdicts[0].findings)


# -- conditioning given as other embeddings


class DecoderLike:
    """The signature of an image-embeddings decoder (Kandinsky 2.2, unCLIP)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, image_embeds: Any, negative_image_embeds: Any = None, output_type: str = "np"
    ) -> Any:
        self.calls += 1
        return (np.zeros((len(image_embeds), 8, 8, 3), np.float32),)


def test_image_embeddings_without_text_are_refused(prompt_guard: PromptGuard) -> None:
    pipe = DecoderLike()
    guarded = guard_pipeline(pipe, ImageGuard([Stub()]), prompt_guard=prompt_guard)
    with pytest.raises(BlockedPrompt, match="image_embeds given in place of text"):
        guarded(torch.zeros(2, 1280))
    with pytest.raises(BlockedPrompt, match="image_embeds, negative_image_embeds given"):
        guarded(image_embeds=torch.zeros(1, 1280), negative_image_embeds=torch.zeros(1, 1280))
    assert pipe.calls == 0
