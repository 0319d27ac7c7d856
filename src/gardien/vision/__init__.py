"""Image detectors (nudity, apparent age), provenance, and the image guard."""

from gardien.vision.guard import ImageGuard, SignalMapError, load_signal_map
from gardien.vision.provenance import (
    C2PAReader,
    ProvenanceReader,
    StableDiffusionWatermarkReader,
    default_provenance_readers,
    read_provenance,
)
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
    "C2PAReader",
    "ImageDetector",
    "ImageGuard",
    "ProvenanceReader",
    "Region",
    "Signal",
    "SignalMapError",
    "StableDiffusionWatermarkReader",
    "VisionError",
    "age_estimator_names",
    "default_provenance_readers",
    "detector_names",
    "load_age_estimator",
    "load_detector",
    "load_signal_map",
    "read_provenance",
    "register_age_estimator",
    "register_detector",
]
