"""The answer of an index search: parallel arrays, so 10k queries cost no per-hit Python objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Hits:
    """Pairs (query row, stored position) within range, with their Hamming distance."""

    query: NDArray[np.int64]
    position: NDArray[np.int64]
    distance: NDArray[np.int16]

    def __len__(self) -> int:
        return int(self.query.shape[0])

    @staticmethod
    def empty() -> Hits:
        return Hits(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16))

    def sorted(self) -> Hits:
        """Ordered by query, distance, then position: stable output for people and tests."""
        order = np.lexsort((self.position, self.distance, self.query))
        return self.take(order)

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> Hits:
        return Hits(self.query[rows], self.position[rows], self.distance[rows])
