"""Import Gradio with its phoning home switched off, or say how to install it.

Set before the import, because Gradio reads it then: no analytics, no version check. The theme uses
system fonts only, so the page fetches no font, script or style from outside (the browser test checks).
"""

from __future__ import annotations

import os

from difflab.errors import UserError

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no usage reports to api.gradio.app
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads from the Hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

try:
    import gradio
except ImportError:
    raise UserError("difflab studio needs Gradio; fix: pip install -e '.[studio]' (or pip install gradio)") from None

SANS = ("ui-sans-serif", "system-ui", "sans-serif")  # fonts the system has: nothing to fetch
MONO = ("ui-monospace", "monospace")


def theme():
    """Gradio's base theme on system fonts (a GoogleFont would be fetched from fonts.googleapis.com)."""
    return gradio.themes.Base(font=list(SANS), font_mono=list(MONO))


__all__ = ["gradio", "theme"]
