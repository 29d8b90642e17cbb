"""``modelyard quickstart``: the README's first command, end to end on one machine.

It starts the local control plane, installs the Helm chart, deploys a tiny chat model (built on
the spot) and the packaged MiniLM embedding model as ModelEndpoints, and asks the gateway for a
chat completion and an embedding with the official ``openai`` client, printing each step as it
goes. It sits above :mod:`modelyard.local` in the layers: it drives the pieces, none of them
depends on it.

Modules: :mod:`~modelyard.quickstart.progress` (step lines with elapsed seconds),
:mod:`~modelyard.quickstart.manifests` (pure: the objects and Helm arguments),
:mod:`~modelyard.quickstart.cluster` (control plane and chart), :mod:`~modelyard.quickstart.models`
(apply and wait for Ready), :mod:`~modelyard.quickstart.client` (the gateway calls) and
:mod:`~modelyard.quickstart.cli` (the command).
"""
