"""kopf handlers, one module per resource kind, thin: parse -> build -> apply -> write status.

The desired state comes from :mod:`modelyard.builders`; what a model is comes from
:mod:`modelyard.registry`. :mod:`modelyard.controllers.app` wires them into one operator.
"""
