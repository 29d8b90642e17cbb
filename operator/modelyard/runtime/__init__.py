"""The model server inside runtime pods: handlers, providers, engines and the HTTP API.

Layout (each module says why it exists):

- ``cli``        ``modelyard runtime`` (serve) and ``modelyard runtime download``
- ``options``    what to serve (ModelSpec) and how (ServerSettings)
- ``loader``     names -> specs -> loaded handlers (catalog, config.json detection)
- ``protocols``  the handler protocols (ChatModel, EmbeddingModel, SpeechModel, RerankModel)
- ``handlers/``  built-in transformers handlers; class-path resolution; ``batchgen`` (continuous
                 batching of chat) and ``prefixcache`` (KV of recent prompt prefixes)
- ``providers/`` where weights come from (huggingface, local, custom)
- ``serving/``   ``create_app(settings, models)`` and the routes
- ``served``, ``admission``, ``batching``, ``metrics``, ``invoke``, ``audio``: serving machinery
- ``vllm``       the vLLM engine command line
- ``errors``     the exception hierarchy

Importing this package imports neither torch nor aiohttp.
"""
