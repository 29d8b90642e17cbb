"""The status API: the Model Garden registry REST API over the cluster's ModelEntries, the
endpoints and training jobs beside it, an event stream, and a dashboard, all read-only.

    cache = statusapi.Cache()               # fed by upsert(obj) / delete(kind, namespace, name)
    app = statusapi.create_app(statusapi.StatusApiSettings(token=None), cache)

See docs/status-api.md for the routes.
"""

from modelyard.statusapi.app import create_app
from modelyard.statusapi.cache import Cache
from modelyard.statusapi.settings import StatusApiSettings

__all__ = ["Cache", "StatusApiSettings", "create_app"]
