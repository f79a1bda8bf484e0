"""What every command of the CLI shares: its error, its output, its link to the cluster."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .bus import CliBus, protocol


class CliError(Exception):
    """A failure reported as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def out(args: argparse.Namespace, human: str, data: Any) -> None:
    print(json.dumps(data) if args.json else human, flush=True)


def make_bus(args: argparse.Namespace, **options: Any) -> CliBus:
    wire, transport = protocol(args)
    return CliBus(
        args.url,
        args.key,
        args.namespace,
        args.timeout,
        wire=wire,
        transport=transport,
        **options,
    )
