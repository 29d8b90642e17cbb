"""``modelyard registry``: validate, import and estimate models."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(group_parser=parser)
