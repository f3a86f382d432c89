"""Where the checkout is, when the package runs from one (an editable install, or the source tree).

Scripts (``scripts/``) and the vLLM venv (``.venv-vllm``) live beside the package in a checkout;
an installed wheel has neither, and callers fall back to the environment or the current folder.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
