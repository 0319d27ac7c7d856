"""The hashing CLI: JSON lines on stdout, one per input; errors get records and the run goes on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gardien.cli import main
from gardien.hashing.hashers import hash_bytes, hash_file
from tests.hashing_fixtures import flip_bits, near_duplicate, random_hashes, save, scene, write_list


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("GARDIEN_HOME", str(path))
    return path


def _run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _records(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_hash_reports_every_file_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    good = save(scene(1), folder / "sub" / "a.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    result = _run("hash", str(folder), str(tmp_path / "missing.png"))
    assert result.exit_code == 1
    records = {Path(r["path"]).name: r for r in _records(result)}
    assert set(records) == {"a.png", "empty.jpg", "notes.txt", "missing.png"}
    assert records["a.png"] == {"path": str(good), **hash_file(good).to_dict()}
    for name in ("empty.jpg", "notes.txt", "missing.png"):
        assert name in records[name]["error"]
    assert "1 of 4 files" in result.stderr


def test_hash_dihedral_lists_eight_variants(tmp_path: Path) -> None:
    path = save(scene(2), tmp_path / "a.png")
    (record,) = _records(_run("hash", "--dihedral", str(path)))
    assert len(record["pdq_dihedral"]) == 8 and record["pdq_dihedral"][0] == record["pdq"]


def test_import_match_export_remove(home: Path, tmp_path: Path) -> None:
    stored = random_hashes(1, 20)
    listed = write_list(tmp_path / "list.txt", stored)
    result = _run(
        "bank", "import", "known", str(listed), "--type", "pdq", "--category", "known-csam"
    )
    assert result.exit_code == 0, result.output
    assert _records(result)[0]["added"] == 20
    (bank,) = _records(_run("bank", "list"))
    assert (bank["name"], bank["count"], bank["category"]) == ("known", 20, "known-csam")

    queries = write_list(
        tmp_path / "q.txt", [flip_bits(stored[3], list(range(10))), random_hashes(2, 1)[0]]
    )
    (tmp_path / "q.txt").write_text((tmp_path / "q.txt").read_text() + "zz\n")
    result = _run("match", "--hashes", str(queries), "--type", "pdq")
    assert result.exit_code == 1  # the bad line is an error record
    records = _records(result)
    bad = [r for r in records if "error" in r]
    assert bad == [{"path": str(queries), "line": 3, "error": bad[0]["error"]}]
    hits = {r["query"]: r["matches"] for r in records if "query" in r}
    (match,) = hits[bytes(flip_bits(stored[3], list(range(10)))).hex()]
    assert match == {
        "bank": "known",
        "hash": bytes(stored[3]).hex(),
        "distance": 10,
        "metadata": {"category": "known-csam"},
    }
    assert hits[bytes(random_hashes(2, 1)[0]).hex()] == []
    strict = _records(_run("match", "--hashes", str(queries), "--type", "pdq", "--threshold", "5"))
    assert all(r.get("matches") in ([], None) for r in strict)

    exported = _run("bank", "export", "known", "--prefix")
    assert exported.stdout.split("\n")[0] == f"pdq {bytes(stored[0]).hex()}"
    assert _run("bank", "update", "known", "--disable").exit_code == 0
    disabled = _run("match", "--hashes", str(listed), "--type", "pdq")
    assert disabled.exit_code == 1 and "no enabled block bank" in disabled.stderr
    assert _run("bank", "remove", "known", "--yes").exit_code == 0
    assert _records(_run("bank", "list")) == []


def test_import_is_atomic_and_names_bad_lines(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"{bytes(random_hashes(3, 1)[0]).hex()}\nnope\n")
    good = write_list(tmp_path / "good.txt", random_hashes(4, 3))
    result = _run("bank", "import", "b", str(good), str(path), str(good), "--type", "pdq")
    assert result.exit_code == 1 and "nothing imported" in result.stderr
    (record,) = _records(result)
    assert (record["path"], record["line"]) == (str(path), 2) and "64 hex" in record["error"]
    assert _records(_run("bank", "list")) == []  # the bank was not even created
    assert not list(home.rglob("*.npy"))  # and no index file was left behind
    result = _run("bank", "import", "b", str(good), str(path), "--skip-invalid", "--type", "pdq")
    assert result.exit_code == 1  # something was skipped, though the rest was imported
    records = _records(result)
    assert records[0]["line"] == 2 and records[-1]["added"] == 4 and records[-1]["skipped"] == 1
    (bank,) = _records(_run("bank", "list"))
    assert bank["count"] == 4


def test_import_refuses_to_guess_or_ignore_bank_options(home: Path, tmp_path: Path) -> None:
    path = write_list(tmp_path / "l.txt", random_hashes(5, 2))
    result = _run("bank", "import", "new", str(path))
    assert result.exit_code == 1 and "--type" in result.stderr
    assert _run("bank", "import", "b", str(path), "--type", "sha256").exit_code == 0
    result = _run("bank", "import", "b", str(path), "--type", "pdq")
    assert result.exit_code == 1 and "signal_type='sha256'" in result.stderr
    result = _run("bank", "import", "b", str(path), "--kind", "allow")
    assert result.exit_code == 1 and "bank update" in result.stderr


def test_match_images_finds_near_duplicates(home: Path, tmp_path: Path) -> None:
    known = tmp_path / "known"
    known.mkdir()
    pixels = scene(5)
    save(pixels, known / "k.png")
    assert _run("bank", "import", "img", str(known), "--type", "pdq").exit_code == 0
    upload = tmp_path / "upload.jpg"
    upload.write_bytes(near_duplicate(pixels))
    other = save(scene(6), tmp_path / "other.png")
    result = _run("match", str(upload), str(other))
    records = {Path(r["path"]).name: r for r in _records(result)}
    assert records["upload.jpg"]["pdq"] == hash_bytes(upload.read_bytes()).pdq
    (hit,) = records["upload.jpg"]["matches"]
    assert hit["bank"] == "img" and hit["distance"] <= 31
    assert hit["metadata"]["file"] == "k.png"
    assert records["other.png"]["matches"] == []


def test_match_fails_when_nothing_could_match(home: Path, tmp_path: Path) -> None:
    """A mistyped home, or banks of another type, is an error, never a clean "no matches"."""
    path = write_list(tmp_path / "q.txt", random_hashes(4, 1))
    assert "--type" in _run("match", "--hashes", str(path)).output  # never guessed
    result = _run("match", "--hashes", str(path), "--type", "pdq")
    assert result.exit_code == 1 and "no banks under" in result.stderr
    assert not home.exists()  # matching did not create an empty store
    sums = write_list(tmp_path / "s.txt", random_hashes(5, 1, 16))
    assert _run("bank", "import", "sums", str(sums), "--type", "md5").exit_code == 0
    result = _run("match", "--hashes", str(path), "--type", "pdq")
    assert result.exit_code == 1 and "holds pdq hashes" in result.stderr and "md5" in result.stderr
    assert _records(result) == []


def test_md5_bank_matches_an_image_file_exactly(home: Path, tmp_path: Path) -> None:
    image = save(scene(7), tmp_path / "a.png")
    digest = hash_file(image).md5
    (tmp_path / "md5.txt").write_text(digest + "\n")
    assert _run("bank", "import", "sums", str(tmp_path / "md5.txt"), "--type", "md5").exit_code == 0
    (record,) = _records(_run("match", str(image)))
    assert record["matches"] == [{"bank": "sums", "hash": digest, "distance": 0, "metadata": {}}]


def test_allow_list_suppresses_only_what_it_is_nearer_to(home: Path, tmp_path: Path) -> None:
    bad = random_hashes(6, 1)[0]
    benign = flip_bits(bad, list(range(40)))  # 40 bits from the block-listed hash
    assert (
        _run(
            "bank", "import", "blk", str(write_list(tmp_path / "b.txt", [bad])), "--type", "pdq"
        ).exit_code
        == 0
    )
    allow = write_list(tmp_path / "a.txt", [benign])
    assert (
        _run("bank", "import", "ok", str(allow), "--type", "pdq", "--kind", "allow").exit_code == 0
    )
    query = write_list(tmp_path / "q.txt", [bad, flip_bits(benign, [0])])
    # --threshold widens block banks only: the allow bank keeps 31 and can't reach `bad`
    first, second = _records(
        _run("match", "--hashes", str(query), "--type", "pdq", "--threshold", "45")
    )
    assert [m["bank"] for m in first["matches"]] == ["blk"] and "allowed_by" not in first
    # the second query is 1 bit from the allow-listed hash and 39 from the block-listed one:
    assert second["matches"] == [] and second["allowed_by"][0]["distance"] == 1
    assert second["suppressed"][0]["bank"] == "blk"


def test_low_quality_images_are_not_matched_by_pdq(home: Path, tmp_path: Path) -> None:
    flat = save(np.full((64, 64, 3), 128, np.uint8), tmp_path / "flat.png")
    result = _run("bank", "import", "img", str(flat), "--type", "pdq")
    assert result.exit_code == 1 and "PDQ quality 0 is under 50" in _records(result)[0]["error"]
    good = save(scene(8), tmp_path / "good.png")
    assert _run("bank", "import", "img", str(good), "--type", "pdq").exit_code == 0
    (record,) = _records(_run("match", str(flat)))
    assert record["matches"] == [] and "under 50" in record["warnings"][0]


def test_sync_owns_its_bank_and_refuses_an_empty_feed(home: Path, tmp_path: Path) -> None:
    feed = write_list(tmp_path / "feed.txt", random_hashes(7, 3), prefix="pdq ")
    collab = json.dumps({"name": "local", "filename": str(feed)})
    listed = write_list(tmp_path / "l.txt", random_hashes(8, 2))
    assert _run("bank", "import", "mine", str(listed), "--type", "pdq").exit_code == 0
    result = _run("bank", "sync", "mine", "--exchange", "file", "--collab", collab)
    assert result.exit_code == 1 and "bank of its own" in result.stderr
    result = _run("bank", "sync", "fed", "--exchange", "file", "--collab", collab, "--type", "pdq")
    assert result.exit_code == 0 and _records(result)[0]["added"] == 3
    feed.write_text("")
    result = _run("bank", "sync", "fed")
    assert result.exit_code == 1 and "refusing to empty" in result.stderr
    counts = {b["name"]: b["count"] for b in _records(_run("bank", "list"))}
    assert counts == {"fed": 3, "mine": 2}
    assert _run("bank", "sync", "fed", "--allow-shrink").exit_code == 0
    assert {b["name"]: b["count"] for b in _records(_run("bank", "list"))}["fed"] == 0
    result = _run("bank", "import", "fed", str(listed))
    assert result.exit_code == 1 and "fed by an exchange" in result.stderr


def test_usage_errors_are_clear(home: Path, tmp_path: Path) -> None:
    assert "one of them" in _run("match").output
    result = _run("bank", "export", "ghost")
    assert result.exit_code == 1 and "no bank named 'ghost'" in result.stderr


def test_an_allow_listed_rotation_does_not_clear_the_image_itself(
    home: Path, tmp_path: Path
) -> None:
    image = save(scene(9), tmp_path / "img.png")
    (hashed,) = _records(_run("hash", "--dihedral", str(image)))
    rotated = hashed["pdq_dihedral"][1]
    (tmp_path / "b.txt").write_text(hashed["pdq"] + "\n")
    (tmp_path / "a.txt").write_text(rotated + "\n")
    assert _run("bank", "import", "blk", str(tmp_path / "b.txt"), "--type", "pdq").exit_code == 0
    args = ("bank", "import", "ok", str(tmp_path / "a.txt"), "--type", "pdq", "--kind", "allow")
    assert _run(*args).exit_code == 0
    (record,) = _records(_run("match", "--dihedral", str(image)))
    assert [(m["bank"], m["distance"]) for m in record["matches"]] == [("blk", 0)]
    assert [m["hash"] for m in record["allowed_by"]] == [rotated]


def test_unletterbox_finds_a_copy_with_bars(home: Path, tmp_path: Path) -> None:
    pixels = scene(10)
    save(pixels, tmp_path / "known.png")
    assert (
        _run("bank", "import", "img", str(tmp_path / "known.png"), "--type", "pdq").exit_code == 0
    )
    barred = np.zeros((pixels.shape[0] + 120, pixels.shape[1], 3), np.uint8)
    barred[60:-60] = pixels  # black bars above and below, as a re-post adds
    upload = save(barred, tmp_path / "upload.png")
    (plain,) = _records(_run("match", str(upload)))
    assert plain["matches"] == []
    (cropped,) = _records(_run("match", "--unletterbox", str(upload)))
    assert [m["distance"] for m in cropped["matches"]] == [0]


def test_undecodable_files_are_still_matched_by_digest(home: Path, tmp_path: Path) -> None:
    blob = tmp_path / "clip.bin"
    blob.write_bytes(b"not an image, but its MD5 is listed")
    (tmp_path / "md5.txt").write_text(hashlib.md5(blob.read_bytes()).hexdigest() + "\n")
    assert _run("bank", "import", "sums", str(tmp_path / "md5.txt"), "--type", "md5").exit_code == 0
    result = _run("match", str(blob))
    (record,) = _records(result)
    assert result.exit_code == 1  # the file could not be decoded: an error, and still matched
    assert "MD5 and SHA-256 only" in record["error"] and record["matches"][0]["bank"] == "sums"


def test_only_allow_banks_means_nothing_can_match(home: Path, tmp_path: Path) -> None:
    image = save(scene(11), tmp_path / "a.png")
    assert (
        _run("bank", "import", "ok", str(image), "--type", "pdq", "--kind", "allow").exit_code == 0
    )
    result = _run("match", str(image))
    assert result.exit_code == 1 and "no enabled block bank" in result.stderr


def test_a_padded_copy_is_matched_through_its_cropped_variant(home: Path, tmp_path: Path) -> None:
    pixels = scene(12)
    save(pixels, tmp_path / "known.png")
    assert (
        _run("bank", "import", "img", str(tmp_path / "known.png"), "--type", "pdq").exit_code == 0
    )
    padded = np.zeros((pixels.shape[0] + 24000, pixels.shape[1], 3), np.uint8)
    padded[12000:-12000] = pixels  # so much padding that the whole image's PDQ is unusable
    (record,) = _records(_run("match", "--unletterbox", str(save(padded, tmp_path / "p.png"))))
    assert record["pdq_quality"] < 50 and "variants were matched" in record["warnings"][0]
    assert [m["distance"] for m in record["matches"]] == [0]


def test_a_pdq_allow_hit_does_not_clear_an_exact_digest_match(home: Path, tmp_path: Path) -> None:
    image = save(scene(13), tmp_path / "a.png")
    assert _run("bank", "import", "exact", str(image), "--type", "md5").exit_code == 0
    assert (
        _run("bank", "import", "ok", str(image), "--type", "pdq", "--kind", "allow").exit_code == 0
    )
    (record,) = _records(_run("match", str(image)))
    assert [m["bank"] for m in record["matches"]] == ["exact"]
    assert [m["bank"] for m in record["allowed_by"]] == ["ok"]


def test_sync_refuses_a_feed_cut_to_under_half(home: Path, tmp_path: Path) -> None:
    rows = random_hashes(17, 4)
    feed = write_list(tmp_path / "feed.txt", rows, prefix="pdq ")
    collab = json.dumps({"name": "local", "filename": str(feed)})
    args = ("bank", "sync", "fed", "--exchange", "file", "--collab", collab, "--type", "pdq")
    assert _run(*args).exit_code == 0
    write_list(feed, rows[:1], prefix="pdq ")  # a truncated download
    result = _run("bank", "sync", "fed")
    assert result.exit_code == 1 and "more than half" in result.stderr
    write_list(feed, rows[:3], prefix="pdq ")  # a normal withdrawal of one hash
    assert _run("bank", "sync", "fed").exit_code == 0
