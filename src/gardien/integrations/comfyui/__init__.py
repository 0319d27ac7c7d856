"""ComfyUI custom nodes for gardien: Prompt Guard, Image Guard and Gate.

ComfyUI finds nodes in ``NODE_CLASS_MAPPINGS``. Install gardien into ComfyUI's Python and copy or
symlink the repository's ``comfyui/gardien_nodes`` folder into ``ComfyUI/custom_nodes/``; that
folder only re-exports these mappings (see docs/integrations.md).
"""

from gardien.integrations.comfyui.nodes import (
    NODE_CLASS_MAPPINGS,
    NODE_DISPLAY_NAME_MAPPINGS,
    GardienBlocked,
    GardienGate,
    GardienImageGuard,
    GardienPromptGuard,
)

__all__ = [
    "NODE_CLASS_MAPPINGS",
    "NODE_DISPLAY_NAME_MAPPINGS",
    "GardienBlocked",
    "GardienGate",
    "GardienImageGuard",
    "GardienPromptGuard",
]
