"""``hpo dashboard``: optuna-dashboard on the storage, at http://127.0.0.1:8080/ by default."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument
from hpo.results.dashboard import DEFAULT_HOST, DEFAULT_PORT


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free port) to 65535, refused with the value given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard", help=COMMANDS["dashboard"],
        description="Serve optuna-dashboard on the storage until Ctrl-C: every study, its "
                    "intermediate R² curves and the trial attributes hpo stores.")
    add_storage_argument(parser)
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}, this machine only)")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from hpo.results.dashboard import serve

    serve(args.storage, host=args.host, port=args.port)
    return 0
