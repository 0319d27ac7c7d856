"""Provenance readers: C2PA manifests and Stable Diffusion's invisible watermarks.

Images are benign synthetic scenes (tests.hashing_fixtures.scene). C2PA manifests are signed in
the test with a certificate chain made on the spot (an ES256 test root and signer, trusted by
nobody), so nothing is downloaded. Watermarks are embedded with invisible-watermark itself, the
library the Stable Diffusion scripts use; those tests skip where it is not installed.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import io
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gardien.core.verdict import Finding
from gardien.media import RGBArray, decode_image
from gardien.vision import (
    C2PAReader,
    ImageGuard,
    Region,
    Signal,
    StableDiffusionWatermarkReader,
    default_provenance_readers,
    read_provenance,
)
from gardien.vision.provenance import (
    MIN_PIXELS,
    SDXL_MESSAGE,
    STABLE_DIFFUSION_WATERMARKS,
    _c2pa_findings,
    decode_bits,
    dwtdct_block_bits,
    max_bit_errors,
    u_channel,
)
from tests.hashing_fixtures import scene

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def encode(pixels: RGBArray, fmt: str = "PNG", **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **options)
    return buf.getvalue()


def clean_images() -> list[RGBArray]:
    """Benign pictures with no watermark: scenes, textures, noise, flat grey, stripes, a ramp."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:300, 0:400]
    stripes = np.repeat(((x // 3) % 2 * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    gradient = np.stack([x * 255 // 400, y * 255 // 300, (x + y) % 256], -1).astype(np.uint8)
    return [
        *(scene(seed, (512, 512)) for seed in range(6)),
        *(textured(seed) for seed in range(100, 140)),
        (rng.random((256, 256, 3)) * 255).astype(np.uint8),
        np.full((256, 320, 3), 128, dtype=np.uint8),
        stripes,
        gradient,
    ]


# -- Stable Diffusion's invisible watermark


def textured(seed: int, size: tuple[int, int] = (256, 256)) -> RGBArray:
    """A gradient under grain, in mid-tones.

    dwtDct hides each bit in the largest coefficient of a 4x4 block; in flat areas, and where
    colours clip, the reference encoder loses it (its own decoder reads noise there too), so a
    flat synthetic scene keeps too little of the mark for a test. Generated images have texture.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 160 / w, y * 160 / h, (x + y) * 80 / (w + h)], -1) + 48
    return np.clip(base + rng.uniform(-40, 40, base.shape), 0, 255).astype(np.uint8)


def embed(pixels: RGBArray, label: str) -> RGBArray:
    """Mark RGB pixels as the Stable Diffusion scripts do (BGR into the encoder, dwtDct)."""
    imwatermark = pytest.importorskip("imwatermark")
    encoder = imwatermark.WatermarkEncoder()
    if label == "SDXL":  # diffusers' StableDiffusionXLWatermarker
        encoder.set_watermark("bits", [int(b) for b in bin(SDXL_MESSAGE)[2:]])
    else:
        text = b"StableDiffusionV1" if label.startswith("SD 1") else b"SDV2"
        encoder.set_watermark("bytes", text)
    bgr = encoder.encode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDct")
    return np.ascontiguousarray(bgr[:, :, ::-1])


LABELS = [mark.label for mark in STABLE_DIFFUSION_WATERMARKS]


@pytest.mark.parametrize("label", LABELS)
def test_stable_diffusion_watermark_is_found_in_a_png(label: str) -> None:
    data = encode(embed(textured(1), label))
    found = StableDiffusionWatermarkReader().read(data, decode_image(data))
    assert [f.concept for f in found] == ["sd_watermark"]
    assert found[0].kind == "provenance" and found[0].category is None
    assert f"invisible watermark of Stable Diffusion ({label}) found" in found[0].detail
    assert found[0].score >= 0.8  # random bits would match about half


def test_clean_images_have_no_watermark() -> None:
    reader = StableDiffusionWatermarkReader()
    for pixels in clean_images():
        assert reader.read(None, pixels) == []


def test_small_images_are_skipped_silently() -> None:
    reader = StableDiffusionWatermarkReader()
    for shape in [(255, 256, 3), (100, 100, 3), (1, 70000, 3), (8, 8192, 3)]:
        assert shape[0] * shape[1] < MIN_PIXELS or shape[0] < 16
        assert reader.read(None, np.zeros(shape, dtype=np.uint8)) == []


def test_the_decoder_matches_invisible_watermark_bit_for_bit() -> None:
    imwatermark = pytest.importorskip("imwatermark")
    rng = np.random.default_rng(3)
    images = [
        embed(textured(2, (700, 530)), "SDXL"),  # more than one stripe of rows, odd sizes
        embed(textured(3, (259, 263)), "SD 1.x reference scripts"),
        scene(4, (520, 640)),
        (rng.random((1100, 300, 3)) * 255).astype(np.uint8),
        np.full((256, 256, 3), 250, dtype=np.uint8),
    ]
    for pixels in images:
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        blocks = dwtdct_block_bits(pixels)
        for kind, n in (("bytes", 136), ("bytes", 32), ("bits", 48)):
            theirs = imwatermark.WatermarkDecoder(kind, n).decode(bgr, "dwtDct")
            if kind == "bytes":
                theirs = np.unpackbits(np.frombuffer(theirs, dtype=np.uint8))
            assert np.array_equal(np.asarray(theirs, dtype=bool), decode_bits(blocks, n))


def test_u_channel_matches_opencv_for_every_colour() -> None:
    cv2 = pytest.importorskip("cv2")
    values = np.arange(256, dtype=np.uint8)
    for red in range(0, 256, 64):  # 64 planes of red at a time: 4M colours per step
        r, g, b = np.meshgrid(values[red : red + 64], values, values, indexing="ij")
        rgb = np.ascontiguousarray(np.stack([r, g, b], -1).reshape(64 * 256, 256, 3))
        assert np.array_equal(u_channel(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)[:, :, 1])


def test_tolerated_bit_errors_keep_random_matches_rare() -> None:
    assert [max_bit_errors(n) for n in (32, 48, 136)] == [1, 5, 35]
    rng = np.random.default_rng(11)
    random_bits = rng.random((2000, 48)) < 0.5
    sdxl = np.array([b == "1" for b in bin(SDXL_MESSAGE)[2:]])
    assert ((random_bits != sdxl).sum(axis=1) <= max_bit_errors(48)).sum() == 0


def test_jpeg_recompression_erases_the_mark_without_a_false_finding() -> None:
    """dwtDct does not survive JPEG; what is left must not be mistaken for another message."""
    marked = embed(textured(4, (512, 512)), "SDXL")
    data = encode(marked, "JPEG", quality=80)
    found = StableDiffusionWatermarkReader().read(data, decode_image(data))
    assert all("SDXL" in f.detail for f in found)


# -- C2PA


@pytest.fixture(scope="module")
def signer_pem() -> tuple[bytes, bytes]:
    """An ES256 signer certificate chain (signer, then a test root) and its private key."""
    pytest.importorskip("c2pa")
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> Any:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gardien tests"),
            ]
        )

    def usage(sign: bool) -> Any:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not sign,
            crl_sign=not sign,
            encipher_only=False,
            decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, issuer: Any, public: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage(sign=not ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
        return builder.sign(root_key, hashes.SHA256())

    root = certificate("gardien test root", name("gardien test root"), root_key.public_key(), True)
    leaf = certificate("gardien test signer", root.subject, key.public_key(), False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root))
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return chain, private


def sign(
    signer_pem: tuple[bytes, bytes],
    data: bytes,
    mime: str,
    source: str = TRAINED,
    generator: str = "synthetic-generator",
    agent: str | None = None,
    remote_url: str | None = None,
) -> bytes:
    import c2pa

    action: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": source}
    if agent:
        action["softwareAgent"] = {"name": agent}
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, signer_pem[0], signer_pem[1], None)
    builder = c2pa.Builder(manifest, context=context)
    if remote_url:
        builder.set_no_embed()
        builder.set_remote_url(remote_url)
    out = io.BytesIO()
    builder.sign(c2pa.Signer.from_info(info), mime, io.BytesIO(data), out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime", "source", "kind"),
    [
        ("PNG", "image/png", TRAINED, "trainedAlgorithmicMedia"),
        ("JPEG", "image/jpeg", COMPOSITE, "compositeWithTrainedAlgorithmicMedia"),
    ],
)
def test_c2pa_manifest_of_a_generative_model_is_reported(
    signer_pem: tuple[bytes, bytes], fmt: str, mime: str, source: str, kind: str
) -> None:
    data = sign(signer_pem, encode(scene(5), fmt), mime, source, agent="Some Model XL")
    (found,) = C2PAReader().read(data, decode_image(data))
    assert found.kind == "provenance" and found.concept == "c2pa_generated"
    assert found.detail.startswith("C2PA: made by a generative model")
    assert "claim generator 'synthetic-generator 1.0'" in found.detail
    assert kind in found.detail and "software agent 'Some Model XL'" in found.detail
    assert "signature valid" in found.detail


def test_c2pa_manifest_of_a_camera_is_noted_not_called_generated(
    signer_pem: tuple[bytes, bytes],
) -> None:
    data = sign(signer_pem, encode(scene(6)), "image/png", CAPTURE, generator="Camera App")
    (found,) = C2PAReader().read(data, decode_image(data))
    assert found.concept == "c2pa_manifest"
    assert "'Camera App 1.0'" in found.detail and "no generative model" in found.detail


def test_no_manifest_no_finding() -> None:
    pytest.importorskip("c2pa")
    reader = C2PAReader()
    pixels = scene(7)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"):
        assert reader.read(encode(pixels, fmt), pixels) == [], fmt
    assert reader.read(None, pixels) == []


def test_garbage_and_corrupt_manifests_never_raise(signer_pem: tuple[bytes, bytes]) -> None:
    reader = C2PAReader()
    pixels = scene(8)
    for data in (b"garbage", b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"\xff\xd8\xff\xe0junk"):
        found = reader.read(data, pixels)
        assert all(f.kind == "provenance" and f.category is None for f in found)
    signed = sign(signer_pem, encode(pixels), "image/png")
    start = signed.index(b"caBX")  # the PNG chunk that holds the manifest store
    seen = set()
    for offset in (40, 200, 600):
        damaged = bytearray(signed)
        damaged[start + offset] ^= 0xFF
        found = reader.read(bytes(damaged), pixels)
        assert len(found) == 1 and found[0].kind == "provenance"
        seen.add(found[0].concept)
        if found[0].concept != "c2pa_unreadable":
            assert "fails validation" in found[0].detail
    assert seen  # damage is reported, as unreadable or invalid, never as an exception


class _Listener(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - one listener per test

    def do_GET(self) -> None:
        _Listener.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[str]:
    _Listener.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/manifest.c2pa"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_manifests_are_never_fetched(signer_pem: tuple[bytes, bytes], listener: str) -> None:
    import c2pa

    data = sign(signer_pem, encode(scene(9)), "image/png", remote_url=listener)
    (found,) = C2PAReader().read(data, decode_image(data))
    assert found.concept == "c2pa_remote" and "not fetched" in found.detail
    assert _Listener.hits == []
    # Control: the same file read with c2pa's default settings does fetch, so it is the
    # reader's offline settings that kept it from doing so.
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("image/png", io.BytesIO(data))
    assert _Listener.hits == ["/manifest.c2pa"]


def test_manifest_text_is_made_safe_to_show(signer_pem: tuple[bytes, bytes]) -> None:
    hostile = "\x1b[31mEvil\x07 Gen\n" + "A" * 500
    data = sign(signer_pem, encode(scene(10)), "image/png", generator=hostile)
    (found,) = C2PAReader().read(data, decode_image(data))
    assert "\x1b" not in found.detail and "\x07" not in found.detail and "\n" not in found.detail
    assert "[31mEvil Gen AAA" in found.detail and len(found.detail) < 400


def test_an_ingredient_made_by_a_model_is_reported() -> None:
    store = {
        "active_manifest": "urn:edit",
        "manifests": {
            "urn:edit": {
                "claim_generator": "Photo Editor/2.0",
                "assertions": [
                    {"label": "c2pa.actions.v2", "data": {"actions": [{"action": "c2pa.opened"}]}}
                ],
            },
            "urn:gen": {
                "claim_generator_info": [{"name": "Image Model"}],
                "assertions": [
                    {
                        "label": "c2pa.actions",
                        "data": {
                            "actions": [{"action": "c2pa.created", "digitalSourceType": TRAINED}]
                        },
                    }
                ],
            },
        },
        "validation_state": "Invalid",
        "validation_status": [{"code": "assertion.dataHash.mismatch"}],
    }
    (found,) = _c2pa_findings(store, "c2pa")
    assert found.concept == "c2pa_generated_ingredient"
    assert "'Image Model'" in found.detail and "'Photo Editor/2.0'" in found.detail
    assert "fails validation: assertion.dataHash.mismatch" in found.detail


# -- in the image guard: findings only, the same decision


class Stub:
    name = "stub"

    def __init__(self, *signals: Signal) -> None:
        self.signals = list(signals)

    def detect(self, image: RGBArray) -> list[Signal]:
        return self.signals


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[bytes | None, tuple[int, ...]]] = []

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]:
        self.seen.append((data, pixels.shape))
        return [Finding(kind="provenance", category=None, score=1.0, detail="seen")]


class Failing:
    name = "failing"

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]:
        raise RuntimeError("broken reader")


class Nonsense:
    name = "nonsense"

    def read(self, data: bytes | None, pixels: RGBArray) -> Any:
        return ["not a finding"]


class Overreaching:
    name = "overreaching"

    def read(self, data: bytes | None, pixels: RGBArray) -> list[Finding]:
        return [Finding(kind="rule", category="sexual/minors", score=1.0, detail="says so")]


EXPOSED = Signal("FEMALE_BREAST_EXPOSED", 0.9, Region(1, 2, 3, 4))


@pytest.mark.parametrize("signals", [(), (EXPOSED,)])
@pytest.mark.parametrize("policy", ["generation", "child-safety"])
def test_provenance_never_changes_the_decision(signals: tuple[Signal, ...], policy: str) -> None:
    readers = [StableDiffusionWatermarkReader(), Recorder(), Failing(), Nonsense(), Overreaching()]
    if default_provenance_readers()[0][0].name == "c2pa":
        readers.append(C2PAReader())
    images = [encode(scene(11)), encode(np.zeros((300, 300, 3), dtype=np.uint8)), b"not an image"]
    with contextlib.suppress(pytest.skip.Exception):  # without invisible-watermark
        images.append(encode(embed(textured(12), "SDXL")))
    for image in images:
        without = ImageGuard([Stub(*signals)], policy=policy).check(image)
        with_readers = ImageGuard([Stub(*signals)], policy=policy, provenance=readers)
        verdict = with_readers.check(image)
        assert verdict.decision is without.decision
        assert verdict.category_scores == without.category_scores
        assert verdict.categories == without.categories
        assert verdict.findings[: len(without.findings)] == without.findings
        extra = verdict.findings[len(without.findings) :]
        assert all(f.kind == "provenance" and f.category is None for f in extra)


def test_readers_get_the_file_bytes_or_none_for_an_array() -> None:
    recorder = Recorder()
    guard = ImageGuard([Stub()], provenance=[recorder])
    data = encode(scene(13))
    guard.check(data)
    guard.check(scene(13))
    guard.check(b"undecodable")  # readers are not run on what didn't decode
    assert recorder.seen == [(data, (240, 320, 3)), (None, (240, 320, 3))]


def test_failing_readers_become_findings() -> None:
    found = read_provenance([Failing(), Nonsense(), Overreaching()], None, scene(14))
    assert [f.concept for f in found] == ["provenance_error"] * 3
    assert "broken reader" in found[0].detail and "nonsense" in found[1].detail
    assert "'overreaching'" in found[2].detail and "no category" in found[2].detail


def test_default_readers_say_what_is_missing() -> None:
    readers, missing = default_provenance_readers()
    names = [r.name for r in readers]
    assert "sd-watermark" in names
    try:
        import c2pa  # noqa: F401
    except ImportError:
        assert "c2pa" not in names and any("c2pa-python" in m for m in missing)
    else:
        assert "c2pa" in names and missing == []
