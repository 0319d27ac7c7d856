"""Errors raised by gardien. Each names the file, line or field at fault."""


class GardienError(Exception):
    """Base class for gardien's errors."""


class InputError(GardienError, ValueError):
    """An input could not be read: bad JSON, a missing field, a wrong type."""


class LexiconError(GardienError):
    """A lexicon data file is malformed."""


class PolicyError(GardienError):
    """A policy is malformed, or tries to relax what no policy may relax."""
