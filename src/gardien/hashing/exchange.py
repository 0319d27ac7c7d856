"""Sync hash banks from hash-sharing exchanges through python-threatexchange.

The library's ``SignalExchangeAPI`` already knows how to talk to NCMEC hash sharing,
StopNCII and Meta ThreatExchange, and how to checkpoint a sync. This module turns its
output into what a gardien bank stores: ``(signal type, value)`` pairs in gardien's
three types (``pdq``, ``md5``, ``sha256``), JSON-able metadata and a JSON-able
checkpoint.

Why the library's ``naive_convert_to_signal_type`` is not used as is: it drops
deletions (the whole point of a sync), drops malformed values with only a log line (we
count them), merges NCMEC entries by hash (losing the entry ids needed to apply NCMEC's
deletions, which carry no hashes) and ignores NCMEC image MD5s and untagged
ThreatExchange ``HASH_MD5`` records. The conversions here follow each exchange's
update-record format instead.

MD5 / SHA-256 mapping: the library has no image MD5 or SHA-256 type, only
``VideoMD5Signal`` ("video_md5") and ``VideoSHA256Signal`` ("video_sha256"). Both are
plain digests of the file bytes (``hashlib.md5``/``sha256`` over the file), exactly
what gardien's ``md5``/``sha256`` are, and an exact-bytes digest does not care about
the media type, so they map to ``md5``/``sha256``. A video's digest simply never
matches an image upload; the original type is kept in ``metadata["source_type"]`` so a
bank can filter it out if it wants.

Applying batches: every signal carries ``metadata["record"]``, the exchange's own key
for the record it came from. A store that keys rows by ``(record, type, value)``
handles every exchange exactly: apply ``reset`` (drop the collaboration), then drop
every row whose record is in ``replaced_records``, then insert the signals that are not
``deleted``. A store keyed only by ``(type, value)`` can upsert, and delete on
``deleted``; that is exact for file, sample, StopNCII and ThreatExchange, but misses
NCMEC deletions (they name only the entry) and hash changes inside an NCMEC entry.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from threatexchange.exchanges.auth import CredentialHelper, SignalExchangeWithAuth
from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryType, NCMECEntryUpdate
from threatexchange.exchanges.clients.stopncii.api import (
    StopNCIIAPI,
    StopNCIICaseStatus,
    StopNCIISignalType,
)
from threatexchange.exchanges.collab_config import CollaborationConfigBase
from threatexchange.exchanges.fetch_state import (
    FetchCheckpointBase,
    FetchDelta,
    FetchedSignalMetadata,
    SignalOpinion,
)
from threatexchange.exchanges.impl.fb_threatexchange_api import FBThreatExchangeSignalExchangeAPI
from threatexchange.exchanges.impl.fb_threatexchange_signal import (
    HasFbThreatExchangeIndicatorType,
)
from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI
from threatexchange.exchanges.impl.ncmec_api import (
    NCMECCollabConfig,
    NCMECSignalExchangeAPI,
    NCMECSignalMetadata,
)
from threatexchange.exchanges.impl.static_sample import StaticSampleSignalExchangeAPI
from threatexchange.exchanges.impl.stop_ncii_api import (
    StopNCIICheckpoint,
    StopNCIISignalExchangeAPI,
    StopNCIISignalMetadata,
)
from threatexchange.exchanges.signal_exchange_api import (
    AnySignalExchangeAPI,
    SignalExchangeAPIWithSimpleUpdates,
)
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
from threatexchange.signal_type.signal_base import SignalType
from threatexchange.utils.dataclass_json import dataclass_load_dict

from gardien.core.errors import GardienError

__all__ = [
    "CREDENTIAL_FORMATS",
    "EXCHANGES",
    "SIGNAL_TYPES",
    "ExchangeBatch",
    "ExchangeError",
    "ExchangeSignal",
    "checkpoint_from_dict",
    "checkpoint_to_dict",
    "fetch",
    "is_valid_signal",
]


class ExchangeError(GardienError):
    """An exchange could not be configured or fetched from; the message names it."""


#: Exchange names a bank may be configured with, mapped to the library's API classes.
EXCHANGES: dict[str, type[AnySignalExchangeAPI]] = {
    "ncmec": NCMECSignalExchangeAPI,
    "stopncii": StopNCIISignalExchangeAPI,
    "threatexchange": FBThreatExchangeSignalExchangeAPI,
    "file": LocalFileSignalExchangeAPI,
    "sample": StaticSampleSignalExchangeAPI,
}

#: What ``credentials`` must look like, per API class. These are the strings the library
#: itself reads from TX_NCMEC_CREDENTIALS, TX_STOPNCII_KEYS and TX_ACCESS_TOKEN.
CREDENTIAL_FORMATS: dict[type[AnySignalExchangeAPI], str] = {
    NCMECSignalExchangeAPI: "'user:password'",
    StopNCIISignalExchangeAPI: "'fetch_function_key,subscription_key[,base_url_override]'",
    FBThreatExchangeSignalExchangeAPI: "a Meta app access token 'app_id|secret'",
}

#: gardien's signal types: PDQ of the image, MD5 and SHA-256 of the file bytes.
SIGNAL_TYPES: tuple[str, ...] = ("pdq", "md5", "sha256")

_VALID = {
    "pdq": re.compile(r"[0-9a-f]{64}"),
    "md5": re.compile(r"[0-9a-f]{32}"),
    "sha256": re.compile(r"[0-9a-f]{64}"),
}

# Library signal types asked for, and what they become (see the module docstring).
_LIBRARY_TYPES: dict[type[SignalType], str] = {
    PdqSignal: "pdq",
    VideoMD5Signal: "md5",
    VideoSHA256Signal: "sha256",
}

# Keys of SimpleUpdates exchanges name library types; gardien's own names are accepted
# too, so a local file may say "md5 <hex>".
_TYPE_NAMES: dict[str, str] = {st.get_name(): name for st, name in _LIBRARY_TYPES.items()} | {
    name: name for name in SIGNAL_TYPES
}

# NCMEC fingerprint names (lower-cased XML tags) per entry type.
_NCMEC_FINGERPRINTS: dict[tuple[NCMECEntryType, str], str] = {
    (NCMECEntryType.image, "pdq"): "pdq",
    (NCMECEntryType.image, "md5"): "md5",
    (NCMECEntryType.video, "md5"): "md5",
    (NCMECEntryType.image, "sha256"): "sha256",
    (NCMECEntryType.video, "sha256"): "sha256",
}

_STOPNCII_TYPES: dict[StopNCIISignalType, str] = {
    StopNCIISignalType.ImagePDQ: PdqSignal.get_name(),
    StopNCIISignalType.VideoMD5: VideoMD5Signal.get_name(),
}


def _indicator_types() -> dict[str, str]:
    """ThreatExchange indicator type → gardien type, from the library's own hints.

    Tag conditions (e.g. HASH_MD5 only when tagged media_type_video) are ignored on
    purpose: a file digest matches the same bytes whatever the media type.
    """
    out: dict[str, str] = {}
    for st, name in _LIBRARY_TYPES.items():
        if not issubclass(st, HasFbThreatExchangeIndicatorType):
            continue
        declared = st.INDICATOR_TYPE
        names = [declared] if isinstance(declared, str) else list(declared)
        for indicator in names:
            out[indicator] = name
    return out


_INDICATOR_TYPES = _indicator_types()


@dataclass(frozen=True)
class ExchangeSignal:
    """One hash added, updated or (``deleted``) withdrawn by an exchange."""

    signal_type: str
    value: str
    deleted: bool
    # JSON-able; excluded from the hash so signals stay hashable.
    metadata: dict[str, Any] = field(hash=False)


@dataclass
class ExchangeBatch:
    """One fetch step: apply it, then store ``checkpoint`` to resume after it.

    ``reset``: this is the first batch of a fetch from scratch (no checkpoint, a stale
    one, or an exchange that always returns its whole list), so drop everything the
    collaboration synced before applying it. ``replaced_records``: the exchange records
    this batch rewrote or deleted; see the module docstring.
    """

    signals: list[ExchangeSignal]
    checkpoint: dict[str, Any] | None
    skipped: Counter[str]
    reset: bool = False
    replaced_records: list[str] = field(default_factory=list)


def is_valid_signal(signal_type: str, value: str) -> bool:
    """Whether ``value`` is a well-formed, normalised (lowercase hex) gardien signal."""
    pattern = _VALID.get(signal_type)
    return pattern is not None and pattern.fullmatch(value) is not None


def _api_cls(exchange: str) -> type[AnySignalExchangeAPI]:
    try:
        return EXCHANGES[exchange]
    except KeyError:
        known = ", ".join(sorted(EXCHANGES))
        raise ExchangeError(f"unknown exchange {exchange!r} (known: {known})") from None


# --- JSON forms -----------------------------------------------------------------------


def _jsonable(value: Any, *, enum_names: bool = True) -> Any:
    """Plain dicts/lists/strings for dataclasses, enums, sets and the like."""
    if isinstance(value, enum.Enum):
        return value.name if enum_names else _jsonable(value.value, enum_names=enum_names)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name), enum_names=enum_names)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, enum_names=enum_names) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v, enum_names=enum_names) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [_jsonable(v, enum_names=enum_names) for v in value]
    return str(value)


def checkpoint_to_dict(checkpoint: FetchCheckpointBase) -> dict[str, Any]:
    """The checkpoint as plain JSON, to be stored and handed back to ``fetch``.

    Field-less checkpoints (``NoCheckpointing``, the file exchange's) become ``{}``.
    Enums are stored by value, as the library's own dataclass_json loader expects.
    """
    data = _jsonable(checkpoint, enum_names=False)
    return data if isinstance(data, dict) else {}


def checkpoint_from_dict(exchange: str, data: Mapping[str, Any]) -> FetchCheckpointBase:
    """Rebuild the exchange's checkpoint object from ``checkpoint_to_dict`` output."""
    cls = _api_cls(exchange).get_checkpoint_cls()
    if not isinstance(data, Mapping):
        raise ExchangeError(f"exchange {exchange!r}: checkpoint must be a JSON object")
    try:
        checkpoint: FetchCheckpointBase = dataclass_load_dict(dict(data), cls)
    except Exception as exc:
        raise ExchangeError(f"exchange {exchange!r}: bad checkpoint: {exc}") from exc
    return checkpoint


# --- collaboration config -------------------------------------------------------------


def _describe(hint: Any) -> str:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(m.name for m in hint)
    return getattr(hint, "__name__", str(hint))


def _coerce(exchange: str, name: str, hint: Any, value: Any) -> Any:
    """Turn a JSON value into the type the config dataclass declares, or fail clearly."""

    def bad(expected: str) -> ExchangeError:
        return ExchangeError(
            f"exchange {exchange!r}: collab field {name!r} must be {expected}, "
            f"got {type(value).__name__}"
        )

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        return _coerce(exchange, name, others[0], value) if len(others) == 1 else value
    if origin in (set, frozenset, list):
        if not isinstance(value, list | tuple | set | frozenset):
            raise bad(f"a list of {_describe(args[0]) if args else 'values'}")
        items = [_coerce(exchange, name, args[0] if args else Any, v) for v in value]
        return origin(items)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        for member in hint:
            if value in (member.name, member.value):
                return member
        raise bad(_describe(hint))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad("a boolean")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise bad("an integer")
    if hint is str:
        if isinstance(value, str):
            return value
        raise bad("a string")
    return value


def _build_collab(
    exchange: str, api_cls: type[AnySignalExchangeAPI], collab: Mapping[str, Any]
) -> CollaborationConfigBase:
    """The exchange's collab config dataclass, from JSON-ish fields.

    ``api`` and ``enabled`` default to the exchange's name and True, since every
    config class has them but only the library's own storage uses them.
    """
    if not isinstance(collab, Mapping):
        raise ExchangeError(f"exchange {exchange!r}: collab must be a mapping of fields")
    config_cls: type[CollaborationConfigBase] = api_cls.get_config_cls()
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    settable = [n for n, f in fields.items() if f.init]
    for key in collab:
        if key not in fields:
            raise ExchangeError(
                f"exchange {exchange!r}: unknown collab field {key!r} "
                f"(known: {', '.join(settable)})"
            )
        if not fields[key].init:
            raise ExchangeError(
                f"exchange {exchange!r}: collab field {key!r} is fixed by the exchange"
            )
    values = dict(collab)
    if "api" in settable:
        values.setdefault("api", api_cls.get_name())
    if "enabled" in settable:
        values.setdefault("enabled", True)
    kwargs: dict[str, Any] = {}
    for name in settable:
        f = fields[name]
        if name not in values:
            no_default = f.default is dataclasses.MISSING
            if no_default and f.default_factory is dataclasses.MISSING:
                raise ExchangeError(f"exchange {exchange!r}: missing collab field {name!r}")
            continue
        kwargs[name] = _coerce(exchange, name, hints.get(name, Any), values[name])
    try:
        return config_cls(**kwargs)
    except Exception as exc:  # a config class with its own validation
        raise ExchangeError(f"exchange {exchange!r}: bad collab config: {exc}") from exc


# --- credentials ----------------------------------------------------------------------


def _credentials(
    exchange: str, api_cls: type[AnySignalExchangeAPI], credentials: str | None
) -> CredentialHelper | None:
    """Parse ``credentials`` with the library's own parser for the exchange.

    Only explicit credentials are used: the library's fallbacks (environment variables,
    files in the home directory) would make a bank's behaviour depend on the host.
    Messages never echo the credentials.
    """
    if not issubclass(api_cls, SignalExchangeWithAuth):
        if credentials is not None:
            raise ExchangeError(f"exchange {exchange!r} takes no credentials")
        return None
    expected = CREDENTIAL_FORMATS.get(api_cls, "the exchange's credential string")
    if credentials is None or not credentials.strip():
        raise ExchangeError(f"exchange {exchange!r} requires credentials: {expected}")
    cred_cls: type[CredentialHelper] = api_cls.get_credential_cls()
    parsed: CredentialHelper | None = None
    try:
        parsed = cred_cls._from_str(credentials)
        valid = parsed is not None and parsed._are_valid()
    except Exception:  # e.g. StopNCII's ValueError on a wrong number of parts
        valid = False
    if parsed is None or not valid:
        raise ExchangeError(f"exchange {exchange!r}: malformed credentials, expected {expected}")
    return parsed


def _secrets(credentials: str | None) -> list[str]:
    """Pieces of the credentials to blank out of library error messages (URLs, ...)."""
    if not credentials:
        return []
    parts = {credentials, credentials.strip(), *re.split(r"[:,|]", credentials)}
    return sorted((p for p in parts if len(p) >= 4), key=len, reverse=True)


def _redact(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


# --- conversion -----------------------------------------------------------------------


class _Builder:
    """Collects one batch: validated signals, skip counts, touched records."""

    def __init__(self) -> None:
        self.signals: list[ExchangeSignal] = []
        self.skipped: Counter[str] = Counter()
        self.records: list[str] = []

    def add(
        self,
        source_type: str,
        signal_type: str | None,
        value: str,
        *,
        deleted: bool,
        metadata: dict[str, Any],
    ) -> None:
        if signal_type is None:
            self.skipped[source_type] += 1
            return
        normal = value.strip().lower()
        if not is_valid_signal(signal_type, normal):
            self.skipped[f"invalid {signal_type}"] += 1
            return
        self.signals.append(ExchangeSignal(signal_type, normal, deleted, metadata))


def _opinion_metadata(record: FetchedSignalMetadata) -> dict[str, Any]:
    """Category (aggregate opinion), tags and the individual opinions, as plain data."""
    opinions: list[SignalOpinion] = list(record.get_as_opinions())
    out: dict[str, Any] = {"opinions": [_jsonable(o) for o in opinions]}
    if opinions:
        aggregate = record.get_as_aggregate_opinion()
        out["category"] = aggregate.category.name
        out["tags"] = sorted(aggregate.tags)
    else:
        out["category"] = None
        out["tags"] = []
    return out


def _convert_keyed(
    builder: _Builder,
    updates: Mapping[tuple[str, str], FetchedSignalMetadata | None],
    names: Mapping[str, str],
) -> None:
    """Exchanges keyed by (type name, value): file, sample, StopNCII, ThreatExchange."""
    for (type_name, value), record in updates.items():
        key = f"{type_name} {value}"
        builder.records.append(key)
        metadata: dict[str, Any] = {"record": key, "source_type": type_name}
        if record is not None:
            metadata |= _opinion_metadata(record)
            if isinstance(record, StopNCIISignalMetadata):
                metadata["feedbacks"] = _jsonable(record.feedbacks)
        builder.add(
            type_name, names.get(type_name), value, deleted=record is None, metadata=metadata
        )


def _convert_ncmec(
    builder: _Builder, collab: NCMECCollabConfig, updates: Mapping[str, NCMECEntryUpdate]
) -> None:
    """NCMEC: one record per (member, entry), each holding several fingerprints."""
    for key, entry in updates.items():
        builder.records.append(key)
        if not entry.deleted and collab.only_esp_ids and entry.member_id not in collab.only_esp_ids:
            builder.skipped["other esp"] += len(entry.fingerprints)
            continue
        tags = {entry.classification} if entry.classification else set()
        opinions = _opinion_metadata(NCMECSignalMetadata({entry.member_id: tags}))
        for fingerprint, value in entry.fingerprints.items():
            metadata: dict[str, Any] = {
                "record": key,
                "source_type": f"{entry.entry_type.value} {fingerprint}",
                "entry_id": entry.id,
                "member_id": entry.member_id,
                "entry_type": entry.entry_type.value,
                "classification": entry.classification,
            }
            feedback = entry.feedback.get(fingerprint) or entry.feedback.get(fingerprint.upper())
            if feedback:
                metadata["feedback"] = _jsonable(feedback)
            if not entry.deleted:
                metadata |= opinions
            builder.add(
                fingerprint,
                _NCMEC_FINGERPRINTS.get((entry.entry_type, fingerprint.lower())),
                value,
                deleted=entry.deleted,
                metadata=metadata,
            )


def _convert(
    api: AnySignalExchangeAPI, collab: CollaborationConfigBase, updates: Mapping[Any, Any]
) -> _Builder:
    builder = _Builder()
    if isinstance(api, NCMECSignalExchangeAPI):
        assert isinstance(collab, NCMECCollabConfig)
        _convert_ncmec(builder, collab, updates)
    elif isinstance(api, FBThreatExchangeSignalExchangeAPI):
        _convert_keyed(builder, updates, _INDICATOR_TYPES)
    elif isinstance(api, SignalExchangeAPIWithSimpleUpdates):
        _convert_keyed(builder, updates, _TYPE_NAMES)
    else:  # pragma: no cover - every class in EXCHANGES is handled above
        raise TypeError(f"no conversion for {type(api).__name__}")
    return builder


def _stopncii_fetch_iter(
    api: StopNCIISignalExchangeAPI, checkpoint: StopNCIICheckpoint | None
) -> Iterator[FetchDelta[tuple[str, str], StopNCIISignalMetadata, StopNCIICheckpoint]]:
    """StopNCII's fetch, honouring withdrawn and deleted cases.

    threatexchange 1.2.17 compares the hash *value* with the case status, so it never
    reports a deletion and withdrawn NCII hashes would stay in the bank forever.
    """
    start = StopNCIIAPI.DEFAULT_START_TIME if checkpoint is None else checkpoint.update_time
    gone = (StopNCIICaseStatus.Withdrawn, StopNCIICaseStatus.Deleted)
    for response in api.api.fetch_hashes_iter(start_timestamp=start):
        updates: dict[tuple[str, str], StopNCIISignalMetadata | None] = {}
        for record in response.hashRecords:
            type_name = _STOPNCII_TYPES.get(record.signalType, record.signalType.value)
            metadata = (
                None if record.hashStatus in gone else StopNCIISignalMetadata(record.CSPFeedbacks)
            )
            updates[type_name, record.hashValue] = metadata
        yield FetchDelta(updates, StopNCIICheckpoint.from_stopncii_fetch(response))


def _batches(
    exchange: str,
    api: AnySignalExchangeAPI,
    collab: CollaborationConfigBase,
    start: FetchCheckpointBase | None,
    *,
    reset: bool,
    secrets: list[str],
) -> Iterator[ExchangeBatch]:
    """Drive the library's fetch iterator, converting and wrapping its errors."""
    deltas: Iterator[FetchDelta[Any, Any, Any]]
    if isinstance(api, StopNCIISignalExchangeAPI):
        assert start is None or isinstance(start, StopNCIICheckpoint)
        deltas = _stopncii_fetch_iter(api, start)
    else:
        deltas = api.fetch_iter(list(_LIBRARY_TYPES), start)
    try:
        while True:
            try:
                delta = next(deltas)
                built = _convert(api, collab, delta.updates)
                checkpoint = checkpoint_to_dict(delta.checkpoint)
            except StopIteration:
                break
            except GardienError:
                raise
            except Exception as exc:
                message = _redact(f"{type(exc).__name__}: {exc}", secrets)
                raise ExchangeError(f"exchange {exchange!r}: fetch failed: {message}") from None
            yield ExchangeBatch(built.signals, checkpoint, built.skipped, reset, built.records)
            reset = False
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()
    if reset:  # a fetch from scratch that returned nothing: the list is now empty
        yield ExchangeBatch([], None, Counter(), reset=True)


def fetch(
    exchange: str,
    collab: dict[str, Any],
    *,
    credentials: str | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> Iterator[ExchangeBatch]:
    """Fetch what changed on ``exchange`` since ``checkpoint``, one batch at a time.

    ``collab`` holds the fields of the exchange's collaboration config (``name`` always;
    ``filename`` for "file", ``environment`` for "ncmec", ``privacy_group`` for
    "threatexchange", ...). ``credentials`` is the string format of
    ``CREDENTIAL_FORMATS``. Configuration and credential errors are raised here, before
    any request; fetch errors are raised as ``ExchangeError`` while iterating. Store each
    batch's ``checkpoint`` after applying it and pass it back next time.
    """
    api_cls = _api_cls(exchange)
    config = _build_collab(exchange, api_cls, collab)
    parsed = _credentials(exchange, api_cls, credentials)
    start = None if checkpoint is None else checkpoint_from_dict(exchange, checkpoint)
    if start is not None and start.is_stale():
        start = None
    # Without fields a checkpoint cannot say where to resume: each fetch is a full list.
    full = start is None or not dataclasses.fields(api_cls.get_checkpoint_cls())
    secrets = _secrets(credentials)
    try:
        if parsed is not None and issubclass(api_cls, SignalExchangeWithAuth):
            api: AnySignalExchangeAPI = api_cls.for_collab(config, parsed)
        else:
            api = api_cls.for_collab(config)
    except Exception as exc:
        message = _redact(f"{type(exc).__name__}: {exc}", secrets)
        raise ExchangeError(f"exchange {exchange!r}: could not connect: {message}") from None
    return _batches(exchange, api, config, start, reset=full, secrets=secrets)
