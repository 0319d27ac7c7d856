"""What image detectors report, and the two small interfaces they implement.

A detector turns pixels into *signals*: a name from its own vocabulary (NudeNet's
``FEMALE_BREAST_EXPOSED``, an age model's ``age``), a score in [0, 1] and, where it has one, the
region of the image it refers to. The image guard, not the detector, decides what the signals mean
(``vision/signal_map.toml``), so a new detector is one class and one table.

Images reach detectors as :func:`gardien.media.decode_frames` gives them (each frame, and each
view of a frame that is not fully opaque): an ``H x W x 3`` uint8 RGB array, already checked
against the decoding limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gardien.core.errors import GardienError
from gardien.media import RGBArray


class VisionError(GardienError):
    """A detector or age model could not be loaded or run. The message names the model."""


@dataclass(frozen=True, slots=True)
class Region:
    """A box in image pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    def clipped(self, width: int, height: int) -> Region | None:
        """This box inside an image of ``width`` x ``height``, or None if nothing is left."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.width), min(height, self.y + self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Region(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True, slots=True)
class Signal:
    """One thing a detector saw: a name from its vocabulary, a score, and where."""

    name: str
    score: float
    region: Region | None = None
    detector: str = ""


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    """An apparent age for one person (or the whole image).

    ``age`` is the model's point estimate in years. ``p_under`` maps an age limit to the
    probability that the apparent age is below it; a regression model gives 1.0 or 0.0, a model
    over age bins gives the mass of the bins below the limit.
    """

    age: float
    p_under: dict[int, float]
    region: Region | None = None
    estimator: str = ""

    def probability_under(self, limit: int) -> float:
        if limit in self.p_under:
            return self.p_under[limit]
        return 1.0 if self.age < limit else 0.0


@runtime_checkable
class ImageDetector(Protocol):
    """Turns an RGB image into signals. Raises on failure; the guard turns that into a finding."""

    name: str

    def detect(self, image: RGBArray) -> list[Signal]: ...


@runtime_checkable
class AgeEstimator(Protocol):
    """Apparent ages of the people in an image, or in the given regions of it (faces)."""

    name: str

    def estimate(
        self, image: RGBArray, regions: list[Region] | None = None
    ) -> list[AgeEstimate]: ...
