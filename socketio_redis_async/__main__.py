"""``python -m socketio_redis_async`` runs the ``socketio-redis`` command line."""

from __future__ import annotations

import sys

from ._cli.main import main

if __name__ == "__main__":
    sys.exit(main())
