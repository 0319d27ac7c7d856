"""gardien's ComfyUI nodes: copy or symlink this folder into ``ComfyUI/custom_nodes/``.

The nodes live in the installed gardien package (``gardien.integrations.comfyui``); this folder
only re-exports them, so ComfyUI and Python code share one copy of the nodes and their settings.
Install gardien, and a detector backend, into the Python that runs ComfyUI first.
"""

try:
    from gardien.integrations.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ImportError as exc:  # pragma: no cover - depends on ComfyUI's environment
    raise ImportError(
        "gardien's ComfyUI nodes need the gardien package in ComfyUI's Python environment: "
        "run `python -m pip install gardien` with the Python that runs ComfyUI"
    ) from exc

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
