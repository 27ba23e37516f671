"""The runtime connection pool (asyncpg, as the unprivileged app role) and its failure mapping.

Why asyncpg directly and not SQLAlchemy's async ORM at runtime: the punch write path is bound
by Python CPU per round trip (see bench/ and the README); SQLAlchemy stays for Alembic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from unifocus.db.groupcommit import GroupCommit
from unifocus.errors import ServiceUnavailable
from unifocus.settings import Settings

# Errors that mean "the database is not there right now", not "the query is wrong".
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.PostgresConnectionError,
    # The server is up but cannot take writes now: read-only (a demoted primary after a
    # failover, or default_transaction_read_only; /ready reports it; a write in one of our
    # own READ ONLY transactions is a bug, a 500: `Database.tx`), out of disk or memory, an
    # I/O error, an idle session ended. A retry later, or on the new primary, succeeds: 503
    # with Retry-After, not a 500. Only these: their classes (53, 57, 58) also hold errors no
    # retry mends, such as temp_file_limit exceeded or a missing library, which stay 500s.
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.DiskFullError,
    asyncpg.exceptions.OutOfMemoryError,
    asyncpg.exceptions.PostgresIOError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    # asyncpg's own "this connection is in an inconsistent state" (seen after an outage: a
    # connection still busy with a cancelled operation); it is discarded, the caller gets 503.
    asyncpg.exceptions.InternalClientError,
)

# Why a connection is terminated rather than handed back: the unavailable errors, and a
# cancellation (a caller's timeout, e.g. /ready's bound): a query may still be running on it,
# and a graceful release or ROLLBACK would first wait for the server to acknowledge the cancel,
# up to db_timeout_seconds more on a server that stopped answering.
ABANDON: tuple[type[BaseException], ...] = (*UNAVAILABLE, asyncio.CancelledError)


# /ready's connections per process: the kubelet's probe and a monitor's may overlap.
PROBE_POOL_MAX = 2
# The scheduled jobs' connections per process: two jobs at once, two connections each.
JOBS_POOL_MAX = 4


class Database:
    """One pool per process for requests (and one for the scheduled jobs, `for_jobs`);
    `tenant_tx` is the only way request code gets a connection."""

    def __init__(self, url: str, settings: Settings, *, pool_max: int | None = None,
                 probe_pool: bool = True) -> None:
        self.url = url
        self.settings = settings
        self.pool_max = pool_max or settings.db_pool_max
        self.with_probe_pool = probe_pool
        self.pool: asyncpg.Pool | None = None
        # /ready's own connections: a probe neither waits behind requests for one (a full pool
        # is load, not an outage, and would make every replica unready at once) nor takes one
        # from them.
        self.probe_pool: asyncpg.Pool | None = None
        self.group_commit = GroupCommit(settings.group_commit_max_items, UNAVAILABLE)

    @classmethod
    def for_jobs(cls, url: str, settings: Settings) -> Database:
        """The scheduled jobs' own pool: a job holds two connections (its lock's and its
        work's) for as long as it runs, minutes for the sweep's pass over a big upload, and
        must neither wait behind requests for them nor take them from requests (the request
        pool's saturation is what DBConnections* alert on). Two jobs at once (`Scheduler`)."""
        return cls(url, settings, pool_max=JOBS_POOL_MAX, probe_pool=False)

    async def open(self) -> None:
        self.pool = await self._create_pool(self.pool_max)
        if self.with_probe_pool:
            self.probe_pool = await self._create_pool(PROBE_POOL_MAX)

    async def _create_pool(self, max_size: int) -> asyncpg.Pool:
        # min_size=0: the service starts (and /health answers) even while the database is
        # down; connections are made on demand and re-made after an outage.
        return await asyncpg.create_pool(
            self.url,
            min_size=0,
            max_size=max_size,
            timeout=self.settings.db_timeout_seconds,
            command_timeout=self.settings.db_timeout_seconds,
            statement_cache_size=self.settings.db_statement_cache_size,
            max_inactive_connection_lifetime=60,
            init=self._init_connection,
            reset=self._reset_connection,
            # Instants PostgreSQL renders as text (inside the JSON some functions return) use
            # the session's zone; UTC here whatever the server's or the role's default is.
            server_settings={"timezone": "UTC"},
        )

    @staticmethod
    async def _reset_connection(conn: asyncpg.Connection) -> None:
        """What the pool runs when a connection comes back. Nothing of ours outlives a
        transaction (the tenant and lock_timeout are transaction-local, advisory locks are
        transaction-scoped, no LISTEN, no session cursors), so asyncpg's default reset (a round
        trip per request: unlock all, CLOSE ALL, UNLISTEN, RESET ALL) buys nothing; only an
        unfinished transaction is rolled back."""
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        from unifocus.observability.process import observe_query

        conn.add_query_logger(observe_query)

    async def close(self) -> None:
        """Close both pools; one that does not close within 5 s (a connection still held) is
        terminated, so the other is closed all the same."""
        for pool in (self.pool, self.probe_pool):
            if pool is None:
                continue
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                pool.terminate()

    def in_use(self) -> tuple[int, int]:
        """(connections in use, pool maximum) for the saturation metric."""
        if self.pool is None:
            return 0, self.pool_max
        return self.pool.get_size() - self.pool.get_idle_size(), self.pool.get_max_size()

    @asynccontextmanager
    async def connection(self, *, probe: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; `probe`: one of /ready's own (`probe_pool`)."""
        pool = self.probe_pool if probe else self.pool
        if pool is None:
            raise ServiceUnavailable("The database is not connected.")
        try:
            # asyncio.timeout, not the timeout argument (asyncio.wait_for): no extra task per
            # request; a cancelled acquire hands its connection back all the same.
            async with asyncio.timeout(self.settings.db_timeout_seconds):
                conn = await pool.acquire()
        except UNAVAILABLE as exc:
            raise ServiceUnavailable("The database is unavailable; retry later.") from exc
        try:
            yield conn
        except UNAVAILABLE as exc:
            # Broken, timed out or still cancelling: never rolled back nor reused (a graceful
            # release would wait on a hung server again), so the 503 stays within the bound.
            discard(conn)
            raise ServiceUnavailable("The database is unavailable; retry later.") from exc
        except asyncio.CancelledError:
            discard(conn)  # see ABANDON; a healthy server only costs a reconnect
            raise
        finally:
            await self._release(pool, conn)

    async def _release(self, pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
        try:
            async with asyncio.timeout(self.settings.db_timeout_seconds):
                await pool.release(conn)  # shielded inside asyncpg: a timeout cannot lose it
        except UNAVAILABLE:
            discard(conn)  # a cancelled release may already have handed it back

    @asynccontextmanager
    async def tx(self, *, readonly: bool) -> AsyncIterator[asyncpg.Connection]:
        """A transaction; the caller sets the tenant first thing (`unifocus_enter` or
        `set_tenant`). Read transactions are READ ONLY: only the write path changes data."""
        async with self.connection() as conn:
            tx = conn.transaction(readonly=readonly)
            await tx.start()
            try:
                yield conn
            except BaseException as exc:
                if isinstance(exc, ABANDON):
                    discard(conn)  # see ABANDON: a rollback would wait on it again
                await _rollback_quietly(tx)
                if readonly and isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
                    # Our own READ ONLY transaction refused a write: a bug of the route, a 500
                    # with its traceback logged, not the 503 of a read-only server.
                    raise RuntimeError("a write in a read-only transaction") from exc
                raise
            else:
                await tx.commit()

    @asynccontextmanager
    async def tenant_tx(
        self, tenant_id: UUID, *, readonly: bool, lock_timeout_ms: int | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction in which row-level security sees `tenant_id` (transaction-local, so
        safe behind a transaction pooler)."""
        async with self.tx(readonly=readonly) as conn:
            await set_tenant(conn, tenant_id, lock_timeout_ms)
            yield conn


def discard(conn: asyncpg.Connection) -> None:
    """Close a broken or hung connection at once, with no round trip. A connection the pool
    already took back (asyncpg does when the server closes it) is left alone."""
    try:
        conn.terminate()
    except asyncpg.exceptions.InterfaceError:
        pass


async def set_tenant(conn: asyncpg.Connection, tenant_id: UUID, lock_timeout_ms: int | None = None) -> None:
    if lock_timeout_ms is None:
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
    else:
        await conn.execute(
            "SELECT set_config('app.tenant_id', $1, true), set_config('lock_timeout', $2, true)",
            str(tenant_id),
            f"{lock_timeout_ms}ms",
        )


async def _rollback_quietly(tx: Any) -> None:
    try:
        await tx.rollback()
    except UNAVAILABLE:
        pass
    except asyncpg.exceptions.InterfaceError:
        pass
