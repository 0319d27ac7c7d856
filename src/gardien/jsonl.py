"""JSON lines for the CLI: one record per line, safe for any text the record carries."""

from __future__ import annotations

import json
from typing import Any


def dumps(record: dict[str, Any]) -> str:
    """One JSON line, readable where it can be; ASCII-escaped where the text holds lone
    surrogates (undecodable file names, broken input) that no output encoding accepts."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record)
    return line
