"""The prompt guard: screens text-to-image prompts in every language, however disguised."""

from gardien.text.classifier import Classification, PromptClassifier
from gardien.text.guard import DEFAULT_MAX_CHARS, PromptGuard

__all__ = ["DEFAULT_MAX_CHARS", "Classification", "PromptClassifier", "PromptGuard"]
