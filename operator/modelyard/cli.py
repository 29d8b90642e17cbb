"""The ``modelyard`` command line: one entry point, one module per command group.

Each group lives next to the code it drives and exposes ``configure(parser)``, which adds
its own subcommands and sets ``func`` on them. Group modules keep heavy imports (torch,
kubernetes, kopf) inside their functions so that ``modelyard --help`` stays fast and works
without the optional extras installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from modelyard import __version__

# name -> (module with configure(parser), one-line help)
_GROUPS: dict[str, tuple[str, str]] = {
    "crds": ("modelyard.api.crd_cli", "generate the CustomResourceDefinitions from the API models"),
    "registry": ("modelyard.registry.cli", "validate, import and estimate models"),
    "local": ("modelyard.local.cli", "a local Kubernetes control plane for tests and trials"),
    "gateway": ("modelyard.gateway.cli", "the OpenAI-compatible gateway that routes to ModelEndpoints"),
    "operator": ("modelyard.controllers.cli", "run the operator that reconciles modelyard resources"),
    "runtime": ("modelyard.runtime.cli", "serve a model over the OpenAI API"),
    "train": ("modelyard.trainer.cli", "run a fine-tune (the TrainingJob pod's entrypoint)"),
    "quickstart": ("modelyard.quickstart.cli", "local cluster, Helm chart, two models, then an OpenAI call"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="modelyard: ML model deployments on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"modelyard {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module_name, help_text) in _GROUPS.items():
        sub = groups.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group given without a subcommand: show that group's help.
        target = getattr(args, "group_parser", parser)
        target.print_help(sys.stderr)
        return 2
    result = func(args)
    return int(result or 0)
