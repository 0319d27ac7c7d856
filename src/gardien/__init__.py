"""gardien: an open-source child-safety engine for generative imagery."""

from gardien.core import Decision, Finding, Policy, Verdict
from gardien.text import PromptGuard

__all__ = ["Decision", "Finding", "Policy", "PromptGuard", "Verdict"]
__version__ = "0.1.0"
