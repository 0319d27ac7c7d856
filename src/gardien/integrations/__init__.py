"""Guards where images are generated: diffusers pipelines and ComfyUI workflows.

Each integration is an optional extra and is imported on its own, so importing this package
needs nothing beyond gardien itself:

- :mod:`gardien.integrations.diffusers`: ``GardienSafetyChecker`` (a drop-in ``safety_checker``)
  and ``guard_pipeline`` (prompt screening before generation, image checks after, for any
  pipeline). Needs ``pip install 'gardien[diffusers]'``.
- :mod:`gardien.integrations.comfyui`: ComfyUI custom nodes (prompt guard, image guard, gate).

:func:`build_image_guard` builds the image guard both use when given none, from detector names
(GARDIEN_DETECTORS) and an age estimator with its model (GARDIEN_AGE_ESTIMATOR,
GARDIEN_AGE_MODEL).
"""

from gardien.integrations._common import IntegrationError, build_image_guard

__all__ = ["IntegrationError", "build_image_guard"]
