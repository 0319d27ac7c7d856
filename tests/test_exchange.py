"""The threatexchange adapter: local exchanges for real, remote ones with fetch faked.

No test may reach the network: sockets refuse to connect for the whole module.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryType, NCMECEntryUpdate
from threatexchange.exchanges.clients.stopncii.api import (
    FetchHashesResponse,
    StopNCIIAPI,
    StopNCIICaseStatus,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIIHashRecord,
    StopNCIISignalType,
)
from threatexchange.exchanges.fetch_state import (
    FetchCheckpointBase,
    FetchDelta,
    NoCheckpointing,
    SignalOpinionCategory,
)
from threatexchange.exchanges.impl.fb_threatexchange_api import (
    FBThreatExchangeCheckpoint,
    FBThreatExchangeIndicatorRecord,
    FBThreatExchangeOpinion,
    FBThreatExchangeSignalExchangeAPI,
)
from threatexchange.exchanges.impl.ncmec_api import (
    NCMECCheckpoint,
    NCMECSignalExchangeAPI,
    _NCMECPagingInfo,
)
from threatexchange.exchanges.impl.stop_ncii_api import StopNCIICheckpoint
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from gardien.core.errors import GardienError
from gardien.hashing.exchange import (
    EXCHANGES,
    ExchangeBatch,
    ExchangeError,
    ExchangeSignal,
    checkpoint_from_dict,
    checkpoint_to_dict,
    fetch,
    is_valid_signal,
)

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "0" * 63 + "1"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
FB_TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _all(batches: Iterator[ExchangeBatch]) -> list[ExchangeBatch]:
    return list(batches)


def _live(batch: ExchangeBatch) -> set[tuple[str, str]]:
    return {(s.signal_type, s.value) for s in batch.signals if not s.deleted}


def _file(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "hashes.txt"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


# --- local exchanges ------------------------------------------------------------------


def test_file_with_default_type_reads_bare_hashes(tmp_path: Path) -> None:
    filename = _file(tmp_path, PDQ_A, PDQ_B.upper(), "not-a-hash", f"pdq {PDQ_A[::-1]}", "")
    batches = _all(fetch("file", {"name": "f", "filename": filename, "signal_type": "pdq"}))
    assert len(batches) == 1
    (batch,) = batches
    # Upper-case hex is normalised; the library takes a whole line as the hash when the
    # collab names a type, so a typed line is an invalid PDQ there, like "not-a-hash".
    assert _live(batch) == {("pdq", PDQ_A), ("pdq", PDQ_B)}
    assert batch.skipped == Counter({"invalid pdq": 2})
    assert batch.reset is True  # the file is the whole list every time
    assert batch.checkpoint == {}
    signal = next(s for s in batch.signals if s.value == PDQ_A)
    assert signal.metadata["record"] == f"pdq {PDQ_A}"
    assert signal.metadata["source_type"] == "pdq"
    json.dumps(signal.metadata)


def test_file_with_typed_lines(tmp_path: Path) -> None:
    filename = _file(
        tmp_path,
        f"pdq {PDQ_A}",
        f"video_md5 {MD5}",
        f"sha256 {SHA256}",
        "url https://example.com/",
        "pdq 1234",
        "md5 xyz",
    )
    (batch,) = _all(fetch("file", {"name": "f", "filename": filename}))
    assert _live(batch) == {("pdq", PDQ_A), ("md5", MD5), ("sha256", SHA256)}
    assert batch.skipped == Counter({"url": 1, "invalid pdq": 1, "invalid md5": 1})
    md5 = next(s for s in batch.signals if s.signal_type == "md5")
    assert md5.metadata["source_type"] == "video_md5"
    assert len(batch.replaced_records) == 6


def test_missing_file_is_an_exchange_error(tmp_path: Path) -> None:
    batches = fetch("file", {"name": "f", "filename": str(tmp_path / "nope.txt")})
    with pytest.raises(ExchangeError, match="exchange 'file': fetch failed"):
        next(batches)


def test_sample_exchange_yields_valid_samples() -> None:
    (batch,) = _all(fetch("sample", {"name": "sample"}))
    pdqs = {s.value for s in batch.signals if s.signal_type == "pdq"}
    assert pdqs == set(PdqSignal.get_examples())
    assert all(is_valid_signal("pdq", v) and len(v) == 64 for v in pdqs)
    assert {s.value for s in batch.signals if s.signal_type == "md5"} == set(
        VideoMD5Signal.get_examples()
    )
    assert {s.value for s in batch.signals if s.signal_type == "sha256"} == set(
        VideoSHA256Signal.get_examples()
    )
    assert not batch.skipped
    assert batch.reset is True
    assert checkpoint_from_dict("sample", batch.checkpoint or {}) == NoCheckpointing()
    assert all(s.metadata["category"] == "INVESTIGATION_SEED" for s in batch.signals)
    json.dumps([s.metadata for s in batch.signals])


def test_signals_are_hashable() -> None:
    signal = ExchangeSignal("pdq", PDQ_A, False, {"tags": ["a"]})
    assert signal in {signal}
    assert signal != ExchangeSignal("pdq", PDQ_A, False, {"tags": ["b"]})


# --- configuration errors ------------------------------------------------------------


def test_missing_collab_field_is_named() -> None:
    with pytest.raises(ExchangeError, match="exchange 'file': missing collab field 'filename'"):
        fetch("file", {"name": "f"})
    with pytest.raises(ExchangeError, match="exchange 'sample': missing collab field 'name'"):
        fetch("sample", {})
    with pytest.raises(ExchangeError, match="missing collab field 'environment'"):
        fetch("ncmec", {"name": "n"}, credentials="user:pass")


def test_unknown_collab_field_is_named() -> None:
    with pytest.raises(ExchangeError, match=r"unknown collab field 'filenmae'.*filename"):
        fetch("file", {"name": "f", "filenmae": "x"})
    with pytest.raises(ExchangeError, match="collab field 'api' is fixed"):
        fetch("ncmec", {"name": "n", "environment": "Industry", "api": "x"}, credentials="u:p")


def test_collab_values_are_checked() -> None:
    with pytest.raises(ExchangeError, match="'environment' must be one of Industry"):
        fetch("ncmec", {"name": "n", "environment": "Moon"}, credentials="u:p")
    with pytest.raises(ExchangeError, match="'privacy_group' must be an integer"):
        fetch("threatexchange", {"name": "t", "privacy_group": "abc"}, credentials=FB_TOKEN)
    with pytest.raises(ExchangeError, match="'only_esp_ids' must be a list of int"):
        fetch(
            "ncmec",
            {"name": "n", "environment": "Industry", "only_esp_ids": 5},
            credentials="u:p",
        )


def test_unknown_exchange_lists_the_known_ones() -> None:
    with pytest.raises(ExchangeError, match="unknown exchange 'ncmce'") as info:
        fetch("ncmce", {"name": "x"})
    for name in EXCHANGES:
        assert name in str(info.value)
    assert isinstance(info.value, GardienError)


@pytest.mark.parametrize(
    ("exchange", "collab", "env"),
    [
        ("ncmec", {"name": "n", "environment": "Industry"}, "TX_NCMEC_CREDENTIALS"),
        ("stopncii", {"name": "s"}, "TX_STOPNCII_KEYS"),
        ("threatexchange", {"name": "t", "privacy_group": 123}, "TX_ACCESS_TOKEN"),
    ],
)
def test_credentials_are_required(
    exchange: str, collab: dict[str, Any], env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library would fall back to this variable; gardien only takes explicit ones.
    monkeypatch.setenv(env, "a:b,c|d")
    with pytest.raises(ExchangeError, match=f"exchange '{exchange}' requires credentials"):
        fetch(exchange, collab)
    with pytest.raises(ExchangeError, match=f"exchange '{exchange}' requires credentials"):
        fetch(exchange, collab, credentials="   ")


@pytest.mark.parametrize(
    ("exchange", "collab", "secret"),
    [
        ("ncmec", {"name": "n", "environment": "Industry"}, "onlyausername"),
        ("stopncii", {"name": "s"}, "one,two,three,four"),
        ("threatexchange", {"name": "t", "privacy_group": 1}, "notatoken-secretvalue"),
    ],
)
def test_malformed_credentials_are_rejected_without_echo(
    exchange: str, collab: dict[str, Any], secret: str
) -> None:
    with pytest.raises(ExchangeError, match="malformed credentials, expected") as info:
        fetch(exchange, collab, credentials=secret)
    assert secret not in str(info.value)


def test_local_exchanges_take_no_credentials(tmp_path: Path) -> None:
    with pytest.raises(ExchangeError, match="exchange 'sample' takes no credentials"):
        fetch("sample", {"name": "s"}, credentials="u:p")


# --- checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "checkpoint"),
    [
        ("ncmec", NCMECCheckpoint(1_700_000_000)),
        (
            "ncmec",
            NCMECCheckpoint(
                1_700_000_000,
                _NCMECPagingInfo("https://example.invalid/next?start=1", 1_700_000_500, 5),
            ),
        ),
        ("threatexchange", FBThreatExchangeCheckpoint(1_700_000_000, 1_700_000_100)),
        ("stopncii", StopNCIICheckpoint(1_700_000_000, 1_700_000_100)),
        ("sample", NoCheckpointing()),
        ("file", FetchCheckpointBase()),
    ],
)
def test_checkpoint_round_trips_through_json(
    exchange: str, checkpoint: FetchCheckpointBase
) -> None:
    stored = json.loads(json.dumps(checkpoint_to_dict(checkpoint)))
    restored = checkpoint_from_dict(exchange, stored)
    assert type(restored) is type(checkpoint)
    assert restored == checkpoint


def test_bad_checkpoint_is_an_exchange_error() -> None:
    with pytest.raises(ExchangeError, match="exchange 'stopncii': bad checkpoint"):
        checkpoint_from_dict("stopncii", {"update_time": "soon"})
    with pytest.raises(ExchangeError, match="exchange 'ncmec': bad checkpoint"):
        fetch(
            "ncmec",
            {"name": "n", "environment": "Industry"},
            credentials="u:p",
            checkpoint={},
        )


# --- remote exchanges, with the library's fetch_iter faked ---------------------------


def _entry(
    entry_id: str,
    member: int,
    entry_type: NCMECEntryType,
    fingerprints: dict[str, str],
    *,
    deleted: bool = False,
) -> NCMECEntryUpdate:
    return NCMECEntryUpdate(
        id=entry_id,
        member_id=member,
        entry_type=entry_type,
        deleted=deleted,
        classification=None if deleted else "A1",
        fingerprints=fingerprints,
        feedback={},
    )


def test_ncmec_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    entries = [
        _entry("e1", 7, NCMECEntryType.image, {"md5": MD5, "pdq": PDQ_A, "pdna": "1,2,3"}),
        _entry("e2", 7, NCMECEntryType.video, {"md5": MD5.upper(), "tmk_pdqf": "x"}),
        _entry("e3", 9, NCMECEntryType.image, {"pdq": PDQ_B}),
        _entry("e4", 7, NCMECEntryType.image, {}, deleted=True),
    ]

    def fake_fetch_iter(
        self: NCMECSignalExchangeAPI, types: Any, checkpoint: NCMECCheckpoint | None
    ) -> Iterator[FetchDelta[str, NCMECEntryUpdate, NCMECCheckpoint]]:
        seen["user"], seen["password"] = self._username, self._password
        seen["checkpoint"] = checkpoint
        yield FetchDelta({f"{e.member_id}-{e.id}": e for e in entries}, NCMECCheckpoint(1234))

    monkeypatch.setattr(NCMECSignalExchangeAPI, "fetch_iter", fake_fetch_iter)
    collab = {"name": "n", "environment": "Industry", "only_esp_ids": [7]}
    batches = _all(
        fetch("ncmec", collab, credentials="user:pa:ss", checkpoint={"get_entries_max_ts": 99})
    )
    assert seen["user"] == "user" and seen["password"] == "pa:ss"
    assert seen["checkpoint"] == NCMECCheckpoint(99)
    (batch,) = batches
    assert batch.reset is False
    assert batch.checkpoint == {"get_entries_max_ts": 1234, "paging_info": None}
    assert [(s.signal_type, s.value, s.metadata["record"]) for s in batch.signals] == [
        ("md5", MD5, "7-e1"),
        ("pdq", PDQ_A, "7-e1"),
        ("md5", MD5, "7-e2"),
    ]
    assert batch.skipped == Counter({"pdna": 1, "tmk_pdqf": 1, "other esp": 1})
    assert batch.replaced_records == ["7-e1", "7-e2", "9-e3", "7-e4"]
    meta = batch.signals[1].metadata
    assert meta["entry_id"] == "e1" and meta["member_id"] == 7
    assert meta["entry_type"] == "image" and meta["classification"] == "A1"
    assert meta["category"] == "POSITIVE_CLASS" and meta["tags"] == ["A1"]
    assert meta["opinions"][0]["esp_id"] == 7
    json.dumps(meta)


def test_threatexchange_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    def opinion(category: SignalOpinionCategory, tags: set[str]) -> FBThreatExchangeOpinion:
        return FBThreatExchangeOpinion(False, category, tags, 42, 1001)

    positive = FBThreatExchangeIndicatorRecord(
        [opinion(SignalOpinionCategory.POSITIVE_CLASS, {"csam"})]
    )
    disputed = FBThreatExchangeIndicatorRecord(
        [
            opinion(SignalOpinionCategory.POSITIVE_CLASS, set()),
            opinion(SignalOpinionCategory.NEGATIVE_CLASS, {"false_positive"}),
        ]
    )
    seen: dict[str, Any] = {}

    def fake_fetch_iter(
        self: FBThreatExchangeSignalExchangeAPI, types: Any, checkpoint: Any
    ) -> Iterator[FetchDelta[tuple[str, str], FBThreatExchangeIndicatorRecord, Any]]:
        seen["token"] = self.client.api_token
        seen["checkpoint"] = checkpoint
        yield FetchDelta(
            {
                ("HASH_PDQ", PDQ_A): positive,
                ("HASH_MD5", MD5): disputed,  # no media_type_video tag: the library drops it
                ("HASH_SHA256", SHA256): None,
                ("URI", "https://example.com"): positive,
            },
            FBThreatExchangeCheckpoint(555),
        )

    monkeypatch.setattr(FBThreatExchangeSignalExchangeAPI, "fetch_iter", fake_fetch_iter)
    stale = checkpoint_to_dict(FBThreatExchangeCheckpoint(100, int(time.time()) - 90 * 86400))
    (batch,) = _all(
        fetch(
            "threatexchange",
            {"name": "t", "privacy_group": "303"},
            credentials=FB_TOKEN,
            checkpoint=stale,
        )
    )
    assert seen["token"] == FB_TOKEN
    assert seen["checkpoint"] is None  # stale: refetch everything ...
    assert batch.reset is True  # ... and tell the store to drop what it had
    assert _live(batch) == {("pdq", PDQ_A), ("md5", MD5)}
    assert [(s.signal_type, s.value) for s in batch.signals if s.deleted] == [("sha256", SHA256)]
    assert batch.skipped == Counter({"URI": 1})
    by_type = {s.signal_type: s.metadata for s in batch.signals}
    assert by_type["pdq"]["category"] == "POSITIVE_CLASS"
    assert by_type["pdq"]["tags"] == ["csam"]
    assert by_type["pdq"]["opinions"][0]["owner_app_id"] == 42
    assert by_type["md5"]["category"] == "DISPUTED"
    assert by_type["sha256"] == {"record": f"HASH_SHA256 {SHA256}", "source_type": "HASH_SHA256"}
    assert batch.checkpoint is not None and batch.checkpoint["update_time"] == 555


def test_fetch_errors_never_show_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(self: Any, types: Any, checkpoint: Any) -> Iterator[Any]:
        raise RuntimeError(f"403 for url https://graph.example/x?access_token={FB_TOKEN}")
        yield  # pragma: no cover

    monkeypatch.setattr(FBThreatExchangeSignalExchangeAPI, "fetch_iter", failing)
    batches = fetch("threatexchange", {"name": "t", "privacy_group": 1}, credentials=FB_TOKEN)
    with pytest.raises(ExchangeError, match="exchange 'threatexchange': fetch failed") as info:
        next(batches)
    assert FB_TOKEN not in str(info.value)
    assert "abcdefghijklmnopqrstuvwxyz0123" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_stopncii_withdrawn_cases_are_deletions(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def record(
        signal_type: StopNCIISignalType, value: str, status: StopNCIICaseStatus
    ) -> StopNCIIHashRecord:
        feedback = StopNCIICSPFeedback(StopNCIICSPFeedbackValue.Blocked, {"ncii"}, "SomeCSP")
        return StopNCIIHashRecord(1, signal_type, value, status, {"c1": status}, [feedback])

    def fake_fetch_hashes_iter(
        self: StopNCIIAPI, start_timestamp: int = 10
    ) -> Iterator[FetchHashesResponse]:
        seen["start"] = start_timestamp
        seen["keys"] = (self._function_keys, self._subscription_key, self._base_url)
        yield FetchHashesResponse(
            count=4,
            nextPageToken=None,
            nextSetTimestamp=777,
            hasMoreRecords=False,
            hashRecords=[
                record(StopNCIISignalType.ImagePDQ, PDQ_A, StopNCIICaseStatus.Active),
                record(StopNCIISignalType.ImagePDQ, PDQ_B, StopNCIICaseStatus.Withdrawn),
                record(StopNCIISignalType.VideoMD5, MD5, StopNCIICaseStatus.Deleted),
                record(StopNCIISignalType.VideoTMK, "abc", StopNCIICaseStatus.Active),
            ],
        )

    monkeypatch.setattr(StopNCIIAPI, "fetch_hashes_iter", fake_fetch_hashes_iter)
    checkpoint = checkpoint_to_dict(StopNCIICheckpoint(500, int(time.time())))
    (batch,) = _all(
        fetch(
            "stopncii",
            {"name": "s"},
            credentials="fetchkey,subkey,https://stopncii.invalid",
            checkpoint=checkpoint,
        )
    )
    assert seen["start"] == 500
    function_keys, subscription_key, base_url = seen["keys"]
    assert list(function_keys.values()) == ["fetchkey"]
    assert subscription_key == "subkey" and base_url == "https://stopncii.invalid"
    assert batch.reset is False
    assert _live(batch) == {("pdq", PDQ_A)}
    assert {(s.signal_type, s.value) for s in batch.signals if s.deleted} == {
        ("pdq", PDQ_B),
        ("md5", MD5),
    }
    assert batch.skipped == Counter({"VideoTMK": 1})
    live = next(s for s in batch.signals if not s.deleted)
    assert live.metadata["feedbacks"] == [
        {"feedbackValue": "Blocked", "tags": ["ncii"], "source": "SomeCSP"}
    ]
    assert live.metadata["category"] == "POSITIVE_CLASS"
    assert batch.checkpoint is not None and batch.checkpoint["update_time"] == 777


def test_empty_fetch_from_scratch_still_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(self: Any, types: Any, checkpoint: Any) -> Iterator[Any]:
        return iter(())

    monkeypatch.setattr(FBThreatExchangeSignalExchangeAPI, "fetch_iter", nothing)
    batches = _all(fetch("threatexchange", {"name": "t", "privacy_group": 1}, credentials=FB_TOKEN))
    assert batches == [ExchangeBatch([], None, Counter(), reset=True)]
