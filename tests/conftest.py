from __future__ import annotations

from pathlib import Path

import pytest

from gardien.text import PromptGuard

ROOT = Path(__file__).resolve().parent.parent
LABELLED = Path(__file__).resolve().parent / "data" / "labelled"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def guard() -> PromptGuard:
    return PromptGuard()


@pytest.fixture(scope="session")
def strict_guard() -> PromptGuard:
    return PromptGuard("strict")
