"""The hashing CLI: JSON lines on stdout, one per input; errors get records and the run goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    result = _run("bank", "import", "known", str(listed), "--category", "known-csam")
    assert result.exit_code == 0, result.output
    assert _records(result)[0]["added"] == 20
    (bank,) = _records(_run("bank", "list"))
    assert (bank["name"], bank["count"], bank["category"]) == ("known", 20, "known-csam")

    queries = write_list(
        tmp_path / "q.txt", [flip_bits(stored[3], list(range(10))), random_hashes(2, 1)[0]]
    )
    (tmp_path / "q.txt").write_text((tmp_path / "q.txt").read_text() + "zz\n")
    result = _run("match", "--hashes", str(queries))
    assert result.exit_code == 1  # the bad line is an error record
    records = _records(result)
    bad = [r for r in records if "error" in r]
    assert bad == [{"line": 3, "error": bad[0]["error"]}]
    hits = {r["query"]: r["matches"] for r in records if "query" in r}
    (match,) = hits[bytes(flip_bits(stored[3], list(range(10)))).hex()]
    assert match == {
        "bank": "known",
        "hash": bytes(stored[3]).hex(),
        "distance": 10,
        "metadata": {"category": "known-csam"},
    }
    assert hits[bytes(random_hashes(2, 1)[0]).hex()] == []
    strict = _records(_run("match", "--hashes", str(queries), "--threshold", "5"))
    assert all(r.get("matches") in ([], None) for r in strict)

    exported = _run("bank", "export", "known", "--prefix")
    assert exported.stdout.split("\n")[0] == f"pdq {bytes(stored[0]).hex()}"
    assert _run("bank", "update", "known", "--disable").exit_code == 0
    assert _records(_run("match", "--hashes", str(listed)))[0]["matches"] == []
    assert _run("bank", "remove", "known", "--yes").exit_code == 0
    assert _records(_run("bank", "list")) == []


def test_import_is_atomic_and_names_bad_lines(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"{bytes(random_hashes(3, 1)[0]).hex()}\nnope\n")
    result = _run("bank", "import", "b", str(path))
    assert result.exit_code == 1 and "nothing imported" in result.stderr
    assert _records(result) == [
        {"line": 2, "path": str(path), "error": _records(result)[0]["error"]}
    ]
    (bank,) = _records(_run("bank", "list"))
    assert bank["count"] == 0
    result = _run("bank", "import", "b", str(path), "--skip-invalid")
    assert result.exit_code == 0 and _records(result)[0]["added"] == 1


def test_match_images_finds_near_duplicates(home: Path, tmp_path: Path) -> None:
    known = tmp_path / "known"
    known.mkdir()
    pixels = scene(5)
    save(pixels, known / "k.png")
    assert _run("bank", "import", "img", str(known)).exit_code == 0
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


def test_match_without_banks_warns(home: Path, tmp_path: Path) -> None:
    path = write_list(tmp_path / "q.txt", random_hashes(4, 1))
    result = _run("match", "--hashes", str(path))
    assert "no enabled bank" in result.stderr
    assert _records(result)[0]["matches"] == []


def test_md5_bank_matches_an_image_file_exactly(home: Path, tmp_path: Path) -> None:
    image = save(scene(7), tmp_path / "a.png")
    digest = hash_file(image).md5
    (tmp_path / "md5.txt").write_text(digest + "\n")
    assert _run("bank", "import", "sums", str(tmp_path / "md5.txt"), "--type", "md5").exit_code == 0
    (record,) = _records(_run("match", str(image)))
    assert record["matches"] == [{"bank": "sums", "hash": digest, "distance": 0, "metadata": {}}]


def test_usage_errors_are_clear(home: Path, tmp_path: Path) -> None:
    assert "one of them" in _run("match").output
    result = _run("bank", "export", "ghost")
    assert result.exit_code == 1 and "no bank named 'ghost'" in result.stderr
