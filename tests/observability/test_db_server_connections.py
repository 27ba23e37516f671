"""The database server's connections against its limit (DBServerConnections* alerts): the
table-stats job counts every client of the server, as the runtime role, and the limit is what
an ordinary role may open there."""

from __future__ import annotations

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict

from unifocus.db.pool import Database
from unifocus.idempotency.cleanup import refresh_stats
from unifocus.settings import Settings

pytestmark = pytest.mark.alerts

# Connections of another role (the owner) held open while the job counts: PostgreSQL hides the
# backend_type of other roles' sessions from the runtime role, and they must count all the same.
HELD = 3


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, f"{name} is not exported"
    return value


def server_limit(owner_url: str) -> int:
    """max_connections minus the slots ordinary roles cannot use, read from pg_settings (the
    job uses current_setting): reserved_connections exists from PostgreSQL 16 on."""
    with psycopg.connect(owner_url) as conn:
        rows = dict(conn.execute(
            "SELECT name, setting::int FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        ).fetchall())
        version = conn.info.server_version
    assert "max_connections" in rows and "superuser_reserved_connections" in rows, rows
    assert ("reserved_connections" in rows) == (version >= 160000), rows
    return rows["max_connections"] - rows["superuser_reserved_connections"] - rows.get("reserved_connections", 0)


async def test_refresh_stats_counts_the_servers_connections_against_its_limit(
    runtime_url: str, owner_url: str, settings: Settings
) -> None:
    held = [psycopg.connect(owner_url, autocommit=True, application_name="unifocus-test-held") for _ in range(HELD)]
    db = Database(runtime_url, settings)
    await db.open()
    try:
        with psycopg.connect(owner_url, autocommit=True) as owner:
            # what the runtime role cannot see itself: the held sessions are another role's
            hidden = owner.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'unifocus-test-held' "
                "AND backend_type = 'client backend' AND usename <> %s",
                (conninfo_to_dict(runtime_url)["user"],),
            ).fetchone()
            assert hidden is not None and hidden[0] == HELD, hidden
        await refresh_stats(db)
        connections = gauge("unifocus_db_server_connections")
        limit = gauge("unifocus_db_server_connections_limit")
    finally:
        await db.close()
        for conn in held:
            conn.close()
    assert limit == server_limit(owner_url)
    # at least the job's own connection and the held ones (other clients may come and go)
    assert HELD + 1 <= connections <= limit, (connections, limit)
