"""gardien's command line: one CLI over the library. JSON on stdout, people's text on stderr."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

import click

from gardien import __version__
from gardien.core.errors import GardienError
from gardien.core.verdict import Decision, Verdict
from gardien.jsonl import dumps
from gardien.text.evaluation import LABELS, evaluate, read_examples
from gardien.text.guard import DEFAULT_MAX_CHARS, PromptGuard
from gardien.text.lexicon import bundled_lexicon_paths, load_lexicon_file

_COLOURS = {Decision.ALLOW: "green", Decision.REVIEW: "yellow", Decision.BLOCK: "red"}
T = TypeVar("T")


def _guard(policy: str, max_chars: int, lexicons: tuple[Path, ...] = ()) -> PromptGuard:
    try:
        return PromptGuard(policy, max_chars=max_chars, lexicons=list(lexicons) or None)
    except GardienError as exc:
        raise click.ClickException(str(exc)) from None


def progress_bar(items: Sequence[T], label: str) -> Any:
    """A progress bar on stderr: shown on a terminal, silent in pipes."""
    return click.progressbar(
        items, label=label, file=sys.stderr, show_pos=True, hidden=not sys.stderr.isatty()
    )


class _LazyGroup(click.Group):
    """Commands whose modules load only when used: the hashing commands bring numba, SQLAlchemy
    and python-threatexchange, and the image commands their models, which `gardien prompt` has
    no use for (0.4 s of start-up)."""

    #: command name -> (module in the gardien package, attribute)
    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "hash": ("cli_hashing", "hash_command"),
        "bank": ("cli_hashing", "bank"),
        "match": ("cli_hashing", "match"),
        "image": ("cli_image", "image"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name]
            command: click.Command = getattr(
                importlib.import_module(f"gardien.{module}"), attribute
            )
            return command
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gardien")
def main() -> None:
    """gardien: a child-safety engine for generative imagery."""


@main.group()
def prompt() -> None:
    """Screen text-to-image prompts."""


_policy_option = click.option(
    "--policy",
    default="child-safety",
    show_default=True,
    metavar="NAME|FILE",
    help="Built-in policy (child-safety, strict) or a policy TOML file.",
)
_max_chars_option = click.option(
    "--max-chars",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CHARS,
    show_default=True,
    help="Longest prompt screened; longer ones get 'review', never a partial scan.",
)
_lexicon_option = click.option(
    "--lexicon",
    "lexicons",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use these lexicon files instead of the bundled ones (repeatable).",
)


@prompt.command("check")
@click.argument("text", required=False)
@click.option("--negative", default="", help="The negative prompt.")
@click.option(
    "--jsonl",
    "jsonl",
    type=click.File("rb"),
    metavar="PATH|-",
    help='Screen a file of {"id", "prompt", "negative_prompt"?} lines; write JSON lines.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@_policy_option
@_max_chars_option
@_lexicon_option
def prompt_check(
    text: str | None,
    negative: str,
    jsonl: IO[bytes] | None,
    as_json: bool,
    policy: str,
    max_chars: int,
    lexicons: tuple[Path, ...],
) -> None:
    """Screen TEXT, or every line of --jsonl. Exit status is 0 whatever the decision."""
    if (text is None) == (jsonl is None):
        raise click.UsageError("give either TEXT or --jsonl PATH|-")
    guard = _guard(policy, max_chars, lexicons)
    if jsonl is not None:
        _check_jsonl(guard, jsonl)
        return
    assert text is not None
    verdict = guard.check(text, negative)
    if as_json:
        click.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        click.echo(_render(verdict, text, negative))


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """Numbered non-blank lines, each decoded on its own so one bad line can't end the run."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, exc
            continue
        if line.strip():
            yield number, line


def _check_line(guard: PromptGuard, number: int, line: str | UnicodeDecodeError) -> dict[str, Any]:
    if isinstance(line, UnicodeDecodeError):
        return {"line": number, "error": f"line {number}: not valid UTF-8 ({line.reason})"}
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"line": number, "error": f"line {number}: invalid JSON: {exc.msg}"}
    if not isinstance(obj, dict):
        return {"line": number, "error": f"line {number}: expected a JSON object"}
    ident = obj.get("id")
    where: dict[str, Any] = {"id": ident} if ident is not None else {"line": number}
    prompt_text = obj.get("prompt")
    if not isinstance(prompt_text, str):
        problem = "missing field 'prompt'" if prompt_text is None else "'prompt' must be a string"
        return {**where, "error": f"line {number}: {problem}"}
    neg = obj.get("negative_prompt")
    if neg is None:
        neg = ""
    if not isinstance(neg, str):
        return {**where, "error": f"line {number}: 'negative_prompt' must be a string"}
    verdict = guard.check(prompt_text, neg)
    out = verdict.to_dict()
    del out["policy"]
    return {"id": ident if ident is not None else number, **out}


def _check_jsonl(guard: PromptGuard, stream: IO[bytes]) -> None:
    tally: Counter[str] = Counter()

    def screen(lines: Iterable[tuple[int, str | UnicodeDecodeError]]) -> None:
        for number, line in lines:
            record = _check_line(guard, number, line)
            tally[record.get("decision", "error")] += 1
            click.echo(dumps(record))

    if sys.stderr.isatty() and stream is not sys.stdin.buffer:
        with click.progressbar(_lines(stream), label="screening", file=sys.stderr) as bar:
            screen(bar)
    else:
        screen(_lines(stream))
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "no input"
    click.echo(f"screened {sum(tally.values())} lines ({summary})", err=True)


def _highlight(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for start, end in sorted(set(spans)):
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(click.style(f"[{text[start:end]}]", fg="red", bold=True))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _render(verdict: Verdict, text: str, negative: str) -> str:
    decision = click.style(verdict.decision.value.upper(), fg=_COLOURS[verdict.decision], bold=True)
    lines = [f"{decision}  (policy {verdict.policy})"]
    fields = {"prompt": text, "negative_prompt": negative}
    for name, value in fields.items():
        if not value:
            continue
        spans = [
            (f.start, f.end)
            for f in verdict.findings
            if f.field == name and f.start is not None and f.end is not None
        ]
        lines.append(f"  {name}: {_highlight(value, spans)}")
    flagged = [c for c, on in verdict.categories.items() if on]
    scores = ", ".join(f"{c}={s:.2f}" for c, s in verdict.category_scores.items())
    lines.append(f"  flagged: {', '.join(flagged) or 'none'}  ({scores})")
    for f in verdict.findings:
        where = f" [{f.field} {f.start}:{f.end} {f.text!r}]" if f.start is not None else ""
        via = f" via {f.via}" if f.via and f.via != "base" else ""
        cat = f"{f.category}: " if f.category else ""
        lines.append(f"  - {cat}{f.detail}{where}{via}")
    return "\n".join(lines)


@prompt.command("demo")
@_policy_option
def prompt_demo(policy: str) -> None:
    """Screen the bundled sample prompts and show the verdicts."""
    guard = _guard(policy, DEFAULT_MAX_CHARS)
    sample = resources.files("gardien.data").joinpath("sample_prompts.jsonl")
    tally: Counter[str] = Counter()
    for line in sample.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        verdict = guard.check(obj["prompt"], obj.get("negative_prompt", ""))
        tally[verdict.decision.value] += 1
        click.echo(f"#{obj['id']}  ({obj.get('note', '')})")
        click.echo(_render(verdict, obj["prompt"], obj.get("negative_prompt", "")))
        click.echo()
    click.echo("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))


@main.group("eval")
def eval_group() -> None:
    """Measure a guard on labelled data."""


@eval_group.command("prompts")
@click.argument("labelled", type=click.File("r", encoding="utf-8"), metavar="LABELLED.jsonl")
@_policy_option
@_max_chars_option
@_lexicon_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--show-misses", default=20, show_default=True, help="Misses to list.")
def eval_prompts(
    labelled: IO[str],
    policy: str,
    max_chars: int,
    lexicons: tuple[Path, ...],
    as_json: bool,
    show_misses: int,
) -> None:
    """Recall and false-positive rates by label, language and obfuscation.

    Each line: {"id", "label", "prompt", "negative_prompt"?, "language"?, "obfuscation"?}, with
    label one of sexual_minors, benign_child, polysemy, adult_sexual, benign.
    """
    guard = _guard(policy, max_chars, lexicons)
    try:
        report = evaluate(guard, read_examples(labelled, labelled.name))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{labelled.name}: not valid UTF-8: {exc.reason}") from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"policy {guard.policy.name}; counted = what each label measures:")
    for label, meaning in LABELS.items():
        if label in report.by_label:
            click.echo(f"  {label}: {meaning}")
    for title, table in (
        ("label", report.by_label),
        ("language", report.by_language),
        ("obfuscation", report.by_obfuscation),
    ):
        click.echo(f"\nby {title}:")
        for key, t in sorted(table.items()):
            name = key if isinstance(key, str) else " / ".join(key)
            click.echo(f"  {name:<40} {t.counted:>6}/{t.total:<6} {100 * t.rate:6.2f}%")
    if report.misses and show_misses:
        click.echo(
            f"\nmisses ({len(report.misses)}; first {min(show_misses, len(report.misses))}):"
        )
        for ex, v in report.misses[:show_misses]:
            click.echo(f"  {ex.id} [{ex.label}] {v.decision.value}: {ex.prompt[:100]!r}")
    for err in report.errors:
        click.echo(f"error: {err}", err=True)


@main.group()
def lexicon() -> None:
    """Inspect and validate lexicon files."""


@lexicon.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def lexicon_check(files: tuple[Path, ...]) -> None:
    """Validate lexicon FILES (default: the bundled ones) and list their sizes."""
    failed = False
    for path in files or tuple(bundled_lexicon_paths()):
        try:
            lex = load_lexicon_file(path)
        except GardienError as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
            continue
        terms = sum(len(getattr(lex.terms, c)) for c in type(lex.terms).model_fields)
        ages = "ages" if lex.ages else "no ages"
        click.echo(
            f"{lex.language:<7} {lex.name:<28} {terms:>5} terms, {ages}, "
            f"{len(lex.exceptions)} exceptions  ({path.name})"
        )
    if failed:
        raise SystemExit(1)
