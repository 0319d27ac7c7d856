"""The command line: readable verdicts, JSON lines that survive bad input, evaluation reports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gardien.cli import main


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_check_text_highlights_matches() -> None:
    code, out, _ = run("prompt", "check", "a photo, nude 12 year old girl")
    assert code == 0
    assert out.startswith("BLOCK")
    assert "[nude]" in out and "[12 year old]" in out
    assert "sexual/minors" in out


def test_check_text_json_and_negative_prompt() -> None:
    code, out, _ = run(
        "prompt", "check", "1girl, nude, petite", "--negative", "adult, mature", "--json"
    )
    verdict = json.loads(out)
    assert code == 0
    assert verdict["decision"] == "block"
    assert any(f.get("field") == "negative_prompt" for f in verdict["findings"])


def test_check_policy_by_name_and_bad_policy() -> None:
    assert run("prompt", "check", "nude woman", "--policy", "strict")[1].startswith("BLOCK")
    code, _, err = run("prompt", "check", "x", "--policy", "no-such-policy")
    assert code != 0
    assert "no-such-policy" in err


def test_jsonl_goes_on_after_bad_lines() -> None:
    lines = "\n".join(
        [
            json.dumps({"id": "a", "prompt": "a red fox"}),
            "{not json",
            json.dumps({"id": "b"}),
            json.dumps({"id": "c", "prompt": 42}),
            json.dumps({"id": "d", "prompt": "nude child", "negative_prompt": ["x"]}),
            json.dumps(["not", "an", "object"]),
            "",
            json.dumps({"id": "e", "prompt": "naked child", "negative_prompt": "blurry"}),
        ]
    )
    code, out, err = run("prompt", "check", "--jsonl", "-", input=lines)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0] == {**records[0], "id": "a", "decision": "allow"}
    assert set(records[0]) == {"id", "decision", "categories", "category_scores", "findings"}
    assert records[1]["line"] == 2 and "invalid JSON" in records[1]["error"]
    assert records[2]["id"] == "b" and "missing field 'prompt'" in records[2]["error"]
    assert records[3]["id"] == "c" and "'prompt' must be a string" in records[3]["error"]
    assert records[4]["id"] == "d" and "negative_prompt" in records[4]["error"]
    assert records[5]["line"] == 6
    assert records[6]["id"] == "e" and records[6]["decision"] == "block"
    assert "screened 7 lines" in err


def test_jsonl_survives_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'{"id": 1, "prompt": "a red fox"}\n{"id": 2, "prompt": "\xff\xfe"}\n'
        b'{"id": 3, "prompt": "nude child"}\n'
    )
    code, out, _ = run("prompt", "check", "--jsonl", str(path))
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert records[0]["decision"] == "allow"
    assert records[1] == {"line": 2, "error": records[1]["error"]}
    assert "not valid UTF-8" in records[1]["error"]
    assert records[2]["decision"] == "block"


def test_jsonl_survives_lone_surrogates(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "prompt": "nude child\\ud800"}\n{"id": 2, "prompt": "a fox"}\n')
    code, out, _ = run("prompt", "check", "--jsonl", str(path))
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["decision"] for r in records] == ["block", "allow"]


def test_eval_names_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\xff\xfe\n")
    code, _, err = run("eval", "prompts", str(path))
    assert code == 1
    assert "bad.jsonl: not valid UTF-8" in err


def test_jsonl_from_file(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "kid goat"}) + "\n", encoding="utf-8")
    code, out, _ = run("prompt", "check", "--jsonl", str(path))
    assert code == 0 and json.loads(out)["decision"] == "allow"


def test_text_or_jsonl_is_required() -> None:
    code, _, err = run("prompt", "check")
    assert code == 2
    assert "either TEXT or --jsonl" in err


def test_eval_prompts_reports_rates(tmp_path: Path) -> None:
    rows = [
        {
            "id": "1",
            "label": "sexual_minors",
            "language": "en",
            "obfuscation": "none",
            "prompt": "nude child",
        },
        {
            "id": "2",
            "label": "sexual_minors",
            "language": "en",
            "obfuscation": "leet",
            "prompt": "a red fox",
        },
        {"id": "3", "label": "benign_child", "language": "fr", "prompt": "enfant au parc"},
        {"id": "4", "label": "polysemy", "language": "en", "prompt": "naked eye"},
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{bad\n", encoding="utf-8")
    code, out, err = run("eval", "prompts", str(path))
    assert code == 0
    assert "sexual_minors" in out and "1/2" in out and "50.00%" in out
    assert "sexual_minors / leet" in out
    assert "benign_child / fr" in out
    assert "misses (1" in out
    assert "labelled.jsonl:5: invalid JSON" in err
    code, out, _ = run("eval", "prompts", str(path), "--json")
    report = json.loads(out)
    assert report["by_label"]["sexual_minors"] == {"total": 2, "counted": 1, "rate": 0.5}


def test_demo_screens_the_bundled_samples() -> None:
    code, out, _ = run("prompt", "demo")
    assert code == 0
    assert "summary: allow" in out and "block" in out


def test_lexicon_check(tmp_path: Path) -> None:
    code, out, _ = run("lexicon", "check")
    assert code == 0 and "ja" in out and "ru" in out
    bad = tmp_path / "xx.toml"
    bad.write_text('language = "xx"\nname = "x"\n[terms]\nminor = [""]\n', encoding="utf-8")
    code, _, err = run("lexicon", "check", str(bad))
    assert code == 1
    assert "terms.minor[0]" in err
