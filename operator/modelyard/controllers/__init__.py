"""kopf handlers, one module per resource kind, thin: parse -> build -> apply -> write status.

The desired state comes from :mod:`modelyard.builders`; what a model is comes from
:mod:`modelyard.registry`. :mod:`modelyard.controllers.handlers` registers kopf's handlers (one
``register`` per kind); :mod:`modelyard.controllers.app` runs them as one operator.
"""
