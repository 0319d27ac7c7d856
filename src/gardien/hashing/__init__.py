"""Hash matching: PDQ, MD5 and SHA-256 hashers, banks, match index, list import/export, exchanges.

The hashers are re-exported here so that ``from gardien.hashing import hash_file`` works.
"""

from gardien.hashing.hashers import (
    DIHEDRAL_ORDER,
    ImageHashes,
    hash_bytes,
    hash_file,
    pdq_dihedral_of_pixels,
    pdq_of_pixels,
    unletterbox,
)

__all__ = [
    "DIHEDRAL_ORDER",
    "ImageHashes",
    "hash_bytes",
    "hash_file",
    "pdq_dihedral_of_pixels",
    "pdq_of_pixels",
    "unletterbox",
]
