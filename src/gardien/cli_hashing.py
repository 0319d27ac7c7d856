"""The hashing commands: ``gardien hash``, ``gardien bank ...`` and ``gardien match``.

JSON lines go to stdout, one per input; people's summaries and progress bars go to stderr. A file
or line that can't be used gets its own error record and the run goes on; the exit status is 1
when any input failed, so scripts notice without parsing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from numpy.typing import NDArray

from gardien.cli import progress_bar as _progress
from gardien.core.errors import GardienError
from gardien.hashing.banks import (
    MAX_THRESHOLD,
    MIN_PDQ_QUALITY,
    BankMatcher,
    HashBanks,
    QueryResult,
    check_options,
    nearest_first,
)
from gardien.hashing.hashers import (
    file_digests,
    hashes_of,
    pdq_dihedral_of_pixels,
    pdq_of_pixels,
    unletterbox,
)
from gardien.hashing.signals import SIGNAL_BYTES, HashListError, LineError, read_text_list
from gardien.hashing.store import DB_FILE, KINDS, SIGNAL_TYPES, UNSET
from gardien.home import DATABASE_URL_ENV, HOME_ENV, gardien_database_url, gardien_home
from gardien.jsonl import dumps
from gardien.media import (
    DEFAULT_MAX_PIXELS,
    MediaError,
    decode_image,
    iter_media_paths,
    read_media,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
BATCH = 256

_home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=HOME_ENV,
    help=f"Where banks live [env {HOME_ENV}; default: the per-user data directory].",
)
_database_option = click.option(
    "--database-url",
    metavar="URL",
    envvar=DATABASE_URL_ENV,
    help="Keep the banks' metadata in this database (postgresql+psycopg://user@host/name) "
    "instead of SQLite in the home; hashes stay in the home [env "
    f"{DATABASE_URL_ENV}, the safer place for a password].",
)


def _store_options(command: Callable[..., None]) -> Callable[..., None]:
    """--home and --database-url: where a command finds the banks."""
    return _home_option(_database_option(command))


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@contextmanager
def _banks(home: Path | None, database_url: str | None) -> Iterator[HashBanks]:
    try:
        with HashBanks(home, database_url) as banks:
            yield banks
    except GardienError as exc:
        raise _fail(exc) from None


class _Stage:
    """A progress bar for a fixed number of steps, closed when the last one is done."""

    def __init__(self, label: str, steps: int) -> None:
        self._bar = _progress(range(steps), label)
        self._bar.__enter__()
        self._left = steps

    def __call__(self, done: int) -> None:
        self._bar.update(done)
        self._left -= done
        if self._left <= 0:
            self._bar.__exit__(None, None, None)


def _paths(paths: Sequence[Path]) -> list[Path]:
    return list(iter_media_paths(paths))


# -- gardien hash


@click.command("hash")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dihedral", is_flag=True, help="Also give PDQ of the 8 rotations and flips.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse larger images (decompression bombs).",
)
def hash_command(paths: tuple[Path, ...], dihedral: bool, max_pixels: int) -> None:
    """Hash images (files, or folders walked recursively): PDQ, MD5 and SHA-256 per file."""
    files = _paths(paths)
    failed = 0
    with _progress(files, "hashing") as bar:
        for path in bar:
            record: dict[str, Any] = {"path": str(path)}
            try:
                data = read_media(path)
                record.update(_hashes(data, path, max_pixels, dihedral))
            except MediaError as exc:
                record["error"] = str(exc)
                failed += 1
            click.echo(dumps(record))
    click.echo(f"hashed {len(files) - failed} of {len(files)} files; {failed} errors", err=True)
    if failed:
        sys.exit(1)


def _hashes(data: bytes, path: Path, max_pixels: int, dihedral: bool) -> dict[str, Any]:
    pixels = decode_image(data, name=str(path), max_pixels=max_pixels)  # decoded once
    out: dict[str, Any] = hashes_of(data, pixels).to_dict()
    if dihedral:
        out["pdq_dihedral"] = [h for h, _ in pdq_dihedral_of_pixels(pixels)]
    return out


# -- gardien bank


@click.group()
def bank() -> None:
    """Manage hash banks: named lists of PDQ, MD5 or SHA-256 hashes."""


def _bank_options(create: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                "--type",
                "signal_type",
                type=click.Choice(SIGNAL_TYPES),
                help="What the bank holds (required to create one: PDQ and SHA-256 lists "
                "both look like 64 hex digits).",
            ),
            click.option(
                "--kind",
                type=click.Choice(KINDS),
                help="block, or allow: a list of known-benign hashes whose hits suppress matches.",
            ),
            click.option("--source", help="Where the hashes come from (e.g. NCMEC)."),
            click.option("--category", help="e.g. known-csam, ai-generated-csam, ncii."),
            click.option(
                "--threshold",
                type=click.IntRange(0, MAX_THRESHOLD),
                help="PDQ distance for this bank (default 31).",
            ),
            click.option("--description", help="Free text."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def _bank_fields(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


@bank.command("create")
@click.argument("name")
@_bank_options(create=True)
@_store_options
def bank_create(
    name: str, signal_type: str | None, home: Path | None, database_url: str | None, **fields: Any
) -> None:
    """Create an empty bank NAME (--type is required)."""
    if not signal_type:
        raise click.UsageError("say what the bank holds: --type pdq|md5|sha256")
    with _banks(home, database_url) as banks:
        try:
            created = banks.create(name, signal_type, **_bank_fields(**fields))
        except GardienError as exc:
            raise _fail(exc) from None
        click.echo(dumps(created.to_dict()))


@bank.command("list")
@_store_options
def bank_list(home: Path | None, database_url: str | None) -> None:
    """List banks, one JSON line each."""
    with _banks(home, database_url) as banks:
        listed = banks.list_banks()
        for b in listed:
            click.echo(dumps(b.to_dict()))
            state = "enabled" if b.enabled else "disabled"
            click.echo(
                f"{b.name:<24} {b.signal_type:<6} {b.kind:<5} {b.count:>10} hashes  {state}"
                f"  {b.category}",
                err=True,
            )
        if not listed:
            click.echo("no banks yet: gardien bank import NAME FILE...", err=True)


def _looks_like_images(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


@bank.command("import")
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "text", "csv", "images"]),
    default="auto",
    show_default=True,
    help="auto: folders and image files are hashed; other files are text or CSV hash lists.",
)
@click.option("--skip-invalid", is_flag=True, help="Import the good lines and report the bad.")
@_bank_options(create=True)
@_store_options
def bank_import(
    name: str,
    files: tuple[Path, ...],
    fmt: str,
    skip_invalid: bool,
    signal_type: str | None,
    home: Path | None,
    database_url: str | None,
    **fields: Any,
) -> None:
    """Add hashes to bank NAME from hash lists or images, as one all-or-nothing import.

    A new bank is created when --type says what it holds. Every input is read and checked
    before anything is stored: one bad line or unusable image imports nothing, and each is
    reported with its file and line, unless --skip-invalid (then the exit status is still 1).
    """
    images = [f for f in files if fmt == "images" or (fmt == "auto" and _looks_like_images(f))]
    lists = [f for f in files if f not in images]
    create = {"signal_type": signal_type, **_bank_fields(**fields)}
    with _banks(home, database_url) as banks:
        try:
            todo = _paths(images) if images else []
            with _progress(todo, "hashing") as bar:
                report = banks.import_files(
                    name,
                    lists,
                    todo,
                    format="auto" if fmt in ("auto", "images") else fmt,
                    skip_invalid=skip_invalid,
                    progress=bar.update,
                    create=create,
                    indexing=lambda steps: _Stage("indexing", steps),
                )
        except HashListError as exc:
            _echo_errors(exc.errors, exc.total)
            raise click.ClickException(
                f"nothing imported: {exc.total} bad inputs (see above, or --skip-invalid)"
            ) from None
        except (GardienError, OSError) as exc:
            raise click.ClickException(f"nothing imported: {exc}") from None
    _echo_errors(report.errors, report.error_count)
    click.echo(dumps(report.to_dict()))
    click.echo(
        f"bank {name!r}: added {report.added} hashes; skipped {report.error_count}", err=True
    )
    if report.error_count:
        sys.exit(1)


def _echo_errors(errors: Sequence[LineError], total: int) -> None:
    """One JSON record per bad input; the count of any left out beyond the first ones."""
    for error in errors:
        record: dict[str, Any] = {"path": error.path}
        if error.line:
            record["line"] = error.line
        record["error"] = error.message
        click.echo(dumps(record))
    if total > len(errors):
        click.echo(f"... and {total - len(errors)} more bad inputs", err=True)


@bank.command("export")
@click.argument("name")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "csv"]), default="text", show_default=True
)
@click.option(
    "--prefix", is_flag=True, help="Text lines as 'pdq <hash>' (threatexchange's file exchange)."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default stdout).",
)
@_store_options
def bank_export(
    name: str,
    fmt: str,
    prefix: bool,
    output: Path | None,
    home: Path | None,
    database_url: str | None,
) -> None:
    """Write the live hashes of bank NAME as a text or CSV hash list."""
    with _banks(home, database_url) as banks:
        try:
            if fmt == "text":
                with _binary_out(output) as out:
                    count = banks.export_text(name, out, prefix=prefix)
            else:
                with _text_out(output) as text:
                    count = banks.export_csv(name, text)
        except GardienError as exc:
            raise _fail(exc) from None
        click.echo(f"exported {count} hashes from {name!r}", err=True)


@contextmanager
def _binary_out(path: Path | None) -> Iterator[Any]:
    if path is None:
        yield sys.stdout.buffer
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            yield out
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


@contextmanager
def _text_out(path: Path | None) -> Iterator[Any]:
    if path is None:
        yield sys.stdout
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


@bank.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Don't ask.")
@_store_options
def bank_remove(name: str, yes: bool, home: Path | None, database_url: str | None) -> None:
    """Delete bank NAME and its hashes."""
    with _banks(home, database_url) as banks:
        try:
            found = banks.get(name)
        except GardienError as exc:
            raise _fail(exc) from None
        if not yes:
            click.confirm(
                f"delete bank {name!r} and its {found.count} hashes?", abort=True, err=True
            )
        banks.remove(name)
        click.echo(f"removed bank {name!r}", err=True)


@bank.command("update")
@click.argument("name")
@click.option("--enable/--disable", default=None, help="Match against this bank or not.")
@click.option("--default-threshold", is_flag=True, help="Drop the bank's own threshold.")
@_bank_options(create=False)
@_store_options
def bank_update(
    name: str,
    enable: bool | None,
    default_threshold: bool,
    signal_type: str | None,
    threshold: int | None,
    home: Path | None,
    database_url: str | None,
    **fields: Any,
) -> None:
    """Change bank NAME: enable or disable it, its kind, threshold or descriptions."""
    if signal_type:
        raise click.UsageError("a bank's type can't change; create another bank")
    with _banks(home, database_url) as banks:
        chosen: Any = None if default_threshold else (UNSET if threshold is None else threshold)
        try:
            updated = banks.store.update_bank(
                name, enabled=enable, threshold=chosen, **_bank_fields(**fields)
            )
        except GardienError as exc:
            raise _fail(exc) from None
        click.echo(dumps(updated.to_dict()))


@bank.command("remove-hashes")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_store_options
def bank_remove_hashes(name: str, file: Path, home: Path | None, database_url: str | None) -> None:
    """Remove from bank NAME every hash listed in FILE (a text hash list)."""
    with _banks(home, database_url) as banks:
        try:
            listed = read_text_list(file, banks.get(name).signal_type)
            removed = banks.remove_hashes(name, listed.hashes)
        except HashListError as exc:
            raise click.ClickException(f"nothing removed: {exc}") from None
        except GardienError as exc:
            raise _fail(exc) from None
        click.echo(dumps({"bank": name, "removed": removed}))


@bank.command("compact")
@click.argument("name")
@_store_options
def bank_compact(name: str, home: Path | None, database_url: str | None) -> None:
    """Fold bank NAME's segments into one index, dropping removed hashes."""
    with _banks(home, database_url) as banks:
        try:
            before = len(banks.store.segments(name))
            banks.compact(name)
        except GardienError as exc:
            raise _fail(exc) from None
        click.echo(
            f"bank {name!r}: {before} segments -> {len(banks.store.segments(name))}", err=True
        )


@bank.command("sync")
@click.argument("name")
@click.option("--exchange", help="ncmec, stopncii, threatexchange, file or sample.")
@click.option(
    "--collab",
    help='Collaboration config as JSON, e.g. \'{"name": "x", "filename": "/list.txt"}\'.',
)
@click.option(
    "--credentials-env", metavar="VAR", help="Environment variable holding the credentials."
)
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Let a full fetch empty the bank or shrink it by more than half.",
)
@_bank_options(create=True)
@_store_options
def bank_sync(
    name: str,
    exchange: str | None,
    collab: str | None,
    credentials_env: str | None,
    allow_shrink: bool,
    signal_type: str | None,
    home: Path | None,
    database_url: str | None,
    **fields: Any,
) -> None:
    """Fetch hashes from a signal exchange into bank NAME, resuming from its checkpoint.

    The bank belongs to the exchange: each full fetch replaces its contents. A new bank is
    created when --type says what it holds.
    """
    try:
        config = json.loads(collab) if collab else None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--collab") from None
    if (exchange is None) != (config is None):
        raise click.UsageError("give --exchange and --collab together (or neither, to resume)")
    credentials = None
    if credentials_env:
        credentials = os.environ.get(credentials_env)
        if not credentials:
            raise click.UsageError(f"environment variable {credentials_env} is empty or unset")
    options = {"signal_type": signal_type, **_bank_fields(**fields)}
    with _banks(home, database_url) as banks:
        created = False
        try:
            existing = {b.name: b for b in banks.list_banks()}
            if name in existing:
                check_options(existing[name], options)
            elif not signal_type:
                raise click.UsageError(f"no bank named {name!r}; to create it, give --type")
            else:
                banks.create(name, **options)
                created = True
            report = banks.sync(
                name, exchange, config, credentials=credentials, allow_shrink=allow_shrink
            )
        except GardienError as exc:
            if created:
                banks.remove(name)
            raise _fail(exc) from None
        click.echo(dumps(report))


# -- gardien match


@click.command("match")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--hashes",
    "hash_file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Match a text hash list instead of images (needs --type).",
)
@click.option(
    "--type",
    "signal_type",
    type=click.Choice(SIGNAL_TYPES),
    help="Type of the --hashes list (PDQ and SHA-256 both look like 64 hex digits).",
)
@click.option(
    "--threshold",
    type=click.IntRange(0, MAX_THRESHOLD),
    help="PDQ distance for every block bank, instead of each bank's own (default 31).",
)
@click.option("--dihedral", is_flag=True, help="Also match images' 8 rotations and flips.")
@click.option(
    "--unletterbox", "unletterboxed", is_flag=True, help="Also match images with borders cropped."
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Larger images are matched by MD5 and SHA-256 only.",
)
@_store_options
def match(
    paths: tuple[Path, ...],
    hash_file_: Path | None,
    signal_type: str | None,
    threshold: int | None,
    dihedral: bool,
    unletterboxed: bool,
    max_pixels: int,
    home: Path | None,
    database_url: str | None,
) -> None:
    """Match images (PATH...) or a hash list (--hashes FILE --type T) against the enabled banks.

    Fails, rather than report clean results, when nothing could match: no store at the home, or
    no enabled block bank holding hashes of the type(s) matched.
    """
    if bool(paths) == bool(hash_file_):
        raise click.UsageError("give image PATHs or --hashes FILE (one of them)")
    if hash_file_ and not signal_type:
        raise click.UsageError("say what --hashes holds: --type pdq|md5|sha256")
    where = gardien_home(home)
    on_sqlite = gardien_database_url(database_url) is None
    if on_sqlite and not (where / DB_FILE).is_file():
        raise click.ClickException(
            f"no banks under {where} (set GARDIEN_HOME or --home, or import a bank first); "
            "nothing could match"
        )
    with _banks(home, database_url) as banks:
        place = f"under {where}" if on_sqlite else f"in {banks.store.database}"
        try:
            matcher = banks.matcher(threshold=threshold)
        except GardienError as exc:
            raise _fail(exc) from None
        wanted = {signal_type} if signal_type and hash_file_ else set(SIGNAL_BYTES)
        usable = matcher.block_types()
        if not wanted & usable:
            raise click.ClickException(
                f"nothing can match: no enabled block bank {place} holds "
                f"{' or '.join(sorted(wanted))} hashes (block banks hold: "
                f"{', '.join(sorted(usable)) or 'none'})"
            )
        if not hash_file_ and usable != set(SIGNAL_BYTES):
            click.echo(
                f"matching by {', '.join(sorted(usable))} only (no other block bank)", err=True
            )
        if hash_file_ and signal_type:
            failed, matched, total = _match_hashes(matcher, hash_file_, signal_type)
        else:
            options = _Variants(dihedral, unletterboxed, max_pixels)
            failed, matched, total = _match_images(matcher, list(paths), options)
    click.echo(f"{matched} of {total} inputs matched; {failed} errors", err=True)
    if failed:
        sys.exit(1)


def _match_hashes(matcher: BankMatcher, path: Path, signal_type: str) -> tuple[int, int, int]:
    try:
        listed = read_text_list(path, signal_type, skip_invalid=True)
    except GardienError as exc:
        raise _fail(exc) from None
    _echo_errors(listed.errors, listed.error_count)
    matched = 0
    for start in range(0, listed.hashes.shape[0], 4096):
        chunk = listed.hashes[start : start + 4096]
        for row, result in zip(chunk, matcher.match(signal_type, chunk), strict=True):
            record = {"query": bytes(row).hex(), **result.to_dict()}
            matched += bool(result.matches)
            click.echo(dumps(record))
    total = int(listed.hashes.shape[0]) + listed.error_count
    return listed.error_count, matched, total


@dataclass(frozen=True)
class _Variants:
    dihedral: bool
    unletterboxed: bool
    max_pixels: int


@dataclass
class _Item:
    """One file to match: its digests (always, when it could be read), its PDQ (when it
    decodes, with usable quality), the PDQ of its variants, and what went wrong."""

    path: Path
    md5: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    variants: list[str] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path)}
        for key in ("pdq", "pdq_quality", "md5", "sha256", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def _match_images(
    matcher: BankMatcher, paths: list[Path], options: _Variants
) -> tuple[int, int, int]:
    files = _paths(paths)
    failed = matched = 0
    with _progress(files, "matching") as bar:
        batch: list[_Item] = []
        for path in bar:
            item = _hash_for_match(path, options)
            failed += item.error is not None
            batch.append(item)
            if len(batch) >= BATCH:
                matched += _emit_image_batch(matcher, batch)
                batch = []
        matched += _emit_image_batch(matcher, batch)
    return failed, matched, len(files)


def _hash_for_match(path: Path, options: _Variants) -> _Item:
    """Digests first, since they need no decoding: a file that can't be decoded (or is over
    the pixel limit) is still matched by MD5 and SHA-256. Then PDQ, when its quality is usable,
    and the variants asked for, each kept only if its own quality is usable."""
    item = _Item(path)
    try:
        data = read_media(path)
    except MediaError as exc:
        item.error = str(exc)
        return item
    item.md5, item.sha256 = file_digests(data)
    try:
        pixels = decode_image(data, name=str(path), max_pixels=options.max_pixels)
    except MediaError as exc:
        item.error = f"{exc}; matched by MD5 and SHA-256 only"
        return item
    item.pdq, item.pdq_quality = pdq_of_pixels(pixels)
    if item.pdq_quality < MIN_PDQ_QUALITY:
        item.warnings.append(
            f"PDQ quality {item.pdq_quality} is under {MIN_PDQ_QUALITY}: too flat or small to "
            "match by PDQ"
            + ("; its variants were matched" if options.dihedral or options.unletterboxed else "")
        )
    if options.dihedral:
        item.variants += [h for h, q in pdq_dihedral_of_pixels(pixels)[1:] if q >= MIN_PDQ_QUALITY]
    if options.unletterboxed:
        cropped = unletterbox(pixels)
        if cropped.shape != pixels.shape and min(cropped.shape[:2]) >= 16:
            value, quality = pdq_of_pixels(np.ascontiguousarray(cropped))
            if quality >= MIN_PDQ_QUALITY:
                item.variants.append(value)
    return item


def _rows(signal_type: str, values: list[str]) -> NDArray[np.uint8]:
    width = SIGNAL_BYTES[signal_type]
    return np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(-1, width).copy()


def _emit_image_batch(matcher: BankMatcher, batch: list[_Item]) -> int:
    """Match a batch of files on every signal type, one JSON line per file, in input order.

    Each signal type is judged on its own (an allow hit suppresses block matches of its type
    no nearer than it), and each PDQ variant on its own; a file whose exact MD5 or SHA-256 is
    allow-listed is known benign, so all its matches are suppressed.
    """
    if not batch:
        return 0
    results = [QueryResult() for _ in batch]
    exact_allow = [False] * len(batch)
    types = matcher.signal_types()
    for signal_type in ("md5", "sha256"):
        if signal_type not in types:
            continue
        owners = [i for i, item in enumerate(batch) if getattr(item, signal_type)]
        values = [getattr(batch[i], signal_type) for i in owners]
        if not values:
            continue
        found = matcher.match(signal_type, _rows(signal_type, values))
        for i, result in zip(owners, found, strict=True):
            exact_allow[i] = exact_allow[i] or bool(result.allowed_by)
            _merge(results[i], result)
    if "pdq" in types:
        owners = []
        values = []
        for i, item in enumerate(batch):
            if item.pdq and item.pdq_quality is not None and item.pdq_quality >= MIN_PDQ_QUALITY:
                owners.append(i)
                values.append(item.pdq)
            owners.extend(i for _ in item.variants)
            values.extend(item.variants)
        if values:
            for i, result in zip(owners, matcher.match("pdq", _rows("pdq", values)), strict=True):
                _merge(results[i], result)
    matched = 0
    for item, result, allowed in zip(batch, results, exact_allow, strict=True):
        final = QueryResult(
            matches=[] if allowed else nearest_first(result.matches),
            allowed_by=nearest_first(result.allowed_by),
            more=result.more,
        )
        kept = {(m.bank, m.hash) for m in final.matches}
        final.suppressed = [
            m
            for m in nearest_first([*result.suppressed, *(result.matches if allowed else [])])
            if (m.bank, m.hash) not in kept
        ]
        matched += bool(final.matches)
        record = {**item.record(), **final.to_dict()}
        if item.warnings:
            record["warnings"] = item.warnings
        click.echo(dumps(record))
    return matched


def _merge(target: QueryResult, result: QueryResult) -> None:
    target.matches.extend(result.matches)
    target.allowed_by.extend(result.allowed_by)
    target.suppressed.extend(result.suppressed)
    target.more += result.more
