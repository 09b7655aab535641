"""The `smsgateway` command line: one entry point, one subcommand per tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgateway", description="SMS gateway with SMPP 3.4 links")
    sub = parser.add_subparsers(dest="command", required=True)

    from .smscsim import cli as smscsim_cli

    smscsim_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
