"""Image detectors (nudity, apparent age), provenance, and the image guard."""

from gardien.vision.guard import ImageGuard, SignalMapError, load_signal_map
from gardien.vision.registry import (
    age_estimator_names,
    detector_names,
    load_age_estimator,
    load_detector,
    register_age_estimator,
    register_detector,
)
from gardien.vision.signals import (
    AgeEstimate,
    AgeEstimator,
    ImageDetector,
    Region,
    Signal,
    VisionError,
)

__all__ = [
    "AgeEstimate",
    "AgeEstimator",
    "ImageDetector",
    "ImageGuard",
    "Region",
    "Signal",
    "SignalMapError",
    "VisionError",
    "age_estimator_names",
    "detector_names",
    "load_age_estimator",
    "load_detector",
    "load_signal_map",
    "register_age_estimator",
    "register_detector",
]
