"""Core types shared by every guard: verdicts, findings, categories, policies, errors."""

from gardien.core.categories import CATEGORIES, MINORS, SEXUAL, SEXUAL_MINORS
from gardien.core.errors import GardienError, InputError, LexiconError, PolicyError
from gardien.core.policy import Policy, load_policy
from gardien.core.verdict import Decision, Finding, Verdict

__all__ = [
    "CATEGORIES",
    "MINORS",
    "SEXUAL",
    "SEXUAL_MINORS",
    "Decision",
    "Finding",
    "GardienError",
    "InputError",
    "LexiconError",
    "Policy",
    "PolicyError",
    "Verdict",
    "load_policy",
]
