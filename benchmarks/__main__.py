"""``python -m benchmarks``: run every scenario for every contender (see README.md)."""

from __future__ import annotations

from .run import main

if __name__ == "__main__":
    raise SystemExit(main())
