"""Category names, following OpenAI's moderation API where they overlap."""

from typing import Final

SEXUAL: Final = "sexual"
SEXUAL_MINORS: Final = "sexual/minors"
#: A minor is present, with no sexual content. Not an OpenAI category; needed to explain verdicts.
MINORS: Final = "minors"

CATEGORIES: Final[tuple[str, ...]] = (SEXUAL, SEXUAL_MINORS, MINORS)

#: A category is flagged (``categories[name] is True``) when its score reaches this value.
FLAG_THRESHOLD: Final = 0.5
