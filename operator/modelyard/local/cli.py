"""``modelyard local``: placeholder until the control plane lands (issue 3)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(group_parser=parser)
