"""The ``modelyard`` command line: one entry point, one module per command group.

Each group lives next to the code it drives and exposes ``configure(parser)``, which adds
its own subcommands and sets ``func`` on them. Group modules keep heavy imports (torch,
kubernetes, kopf) inside their functions so that ``modelyard --help`` stays fast and works
without the optional extras installed.

The images carry the product only (``.dockerignore``): where ``modelyard.local`` and
``modelyard.quickstart`` are not installed, ``modelyard local`` and ``modelyard quickstart``
still parse and say so, with exit status 2, instead of the whole command failing to start.
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
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if not (module_name == missing or module_name.startswith(missing + ".")) or "." not in missing:
                raise  # a missing library, or a bug: not a group left out of this install
            package = module_name.rpartition(".")[0]
            sub = groups.add_parser(name, help=f"(not installed here) {help_text}", add_help=False)
            _not_installed(sub, name, package)
            continue
        sub = groups.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
    return parser


def _not_installed(parser: argparse.ArgumentParser, name: str, package: str) -> None:
    """``modelyard NAME ...`` where ``package`` was left out (the images carry the product only)."""

    def explain(_: argparse.Namespace) -> int:
        print(
            f"modelyard {name}: not available in this installation ({package} is not installed: the "
            "operator, gateway and runtime images carry the product only). It is for trying and "
            "testing modelyard on a workstation: run it from a clone of the repository there "
            "(make setup; docs/quickstart.md).",
            file=sys.stderr,
        )
        return 2

    parser.set_defaults(func=explain, any_arguments=True)  # ``local up --help`` explains too


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # as parse_args says it
    func = getattr(args, "func", None)
    if func is None:
        # A group given without a subcommand: show that group's help.
        target = getattr(args, "group_parser", parser)
        target.print_help(sys.stderr)
        return 2
    result = func(args)
    return int(result or 0)
