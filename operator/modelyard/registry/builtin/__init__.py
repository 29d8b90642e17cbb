"""The built-in catalog: the ModelEntry manifests shipped with the package.

``catalog.yaml`` holds one ``modelyard.io/v1alpha1`` ModelEntry per YAML document: the
model-server catalog (embedding, chat, vision-language and Whisper models) and Model Garden's
example, with requirements worked out in comments above each entry. It is data, not code:
read it with :mod:`modelyard.registry.manifests` or apply it with kubectl.
"""

from __future__ import annotations

import pathlib

CATALOG = pathlib.Path(__file__).with_name("catalog.yaml")
"""Path of the built-in catalog file."""

__all__ = ["CATALOG"]
