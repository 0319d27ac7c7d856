"""Detectors and age estimators registered by name, loaded from local files only.

``gardien image check --detector nudenet`` and the integrations name what they want; each name
maps to a factory that takes keyword options (a model path, a provider). A backend whose optional
dependency is missing is still registered, and says which extra to install when loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gardien.vision.signals import AgeEstimator, ImageDetector, VisionError

DetectorFactory = Callable[..., ImageDetector]
EstimatorFactory = Callable[..., AgeEstimator]

_DETECTORS: dict[str, DetectorFactory] = {}
_ESTIMATORS: dict[str, EstimatorFactory] = {}


def register_detector(name: str, factory: DetectorFactory) -> None:
    _DETECTORS[name] = factory


def register_age_estimator(name: str, factory: EstimatorFactory) -> None:
    _ESTIMATORS[name] = factory


def detector_names() -> list[str]:
    _load_builtins()
    return sorted(_DETECTORS)


def age_estimator_names() -> list[str]:
    _load_builtins()
    return sorted(_ESTIMATORS)


def load_detector(name: str, **options: Any) -> ImageDetector:
    _load_builtins()
    factory = _DETECTORS.get(name)
    if factory is None:
        raise VisionError(f"unknown detector {name!r}; known: {', '.join(sorted(_DETECTORS))}")
    return factory(**options)


def load_age_estimator(name: str, **options: Any) -> AgeEstimator:
    _load_builtins()
    factory = _ESTIMATORS.get(name)
    if factory is None:
        raise VisionError(
            f"unknown age estimator {name!r}; known: {', '.join(sorted(_ESTIMATORS))}"
        )
    return factory(**options)


_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import the bundled backends, which register themselves (their heavy imports are lazy)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import importlib

    for module in ("nudity", "age_onnx", "age_transformers"):
        try:
            importlib.import_module(f"gardien.vision.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gardien.vision.{module}":
                raise
