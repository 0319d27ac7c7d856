"""Alembic migrations of the bank store schema (run by :class:`gardien.hashing.store.BankStore`)."""
