"""kopf handlers, one module per resource kind, thin: parse -> build -> apply -> write status.

The desired state comes from :mod:`modelyard.builders`; what a model is comes from
:mod:`modelyard.registry`. :mod:`modelyard.controllers.handlers` registers kopf's handlers (one
``register`` per kind); :mod:`modelyard.controllers.app` runs them as one operator.
"""

import sys


def _import_kopf_without_the_kubernetes_package() -> None:
    """Import kopf while ``kubernetes`` cannot be imported. kopf imports the client's model
    classes when the package is installed, only to recognise its objects (the operator hands
    kopf plain dicts); that import alone was about 13 MiB of the operator's memory. The
    operator's own calls go through :mod:`.cluster`. Other code of the process (a test, say)
    can import ``kubernetes`` afterwards as ever."""
    if "kopf" in sys.modules or "kubernetes" in sys.modules:
        return
    sys.modules["kubernetes"] = None  # type: ignore[assignment]  # makes `import kubernetes` fail
    try:
        import kopf  # noqa: F401
    finally:
        if sys.modules.get("kubernetes", 0) is None:
            del sys.modules["kubernetes"]


_import_kopf_without_the_kubernetes_package()
