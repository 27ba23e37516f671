"""Group commit: writes that become ready while another of their lane is in flight go together.

A worker runs many requests at once, and under load several of them reach their last
statement at about the same time. Sent one by one, each costs PostgreSQL a statement, a
transaction and a WAL flush, and the worker a round trip. Here a write whose lane (its
tenant and lock timeout: one statement sets both) has nothing in flight is sent alone, at
once, exactly as without grouping; one that finds a write in flight waits for it, and when it
returns, every write that queued meanwhile (up to `max_items`) is sent as one statement on the
connection of the first of them (the next "leader"). No write ever waits for a timer: the
group is whatever queued during the previous round trip, so a quiet lane sends each write
alone and a busy one sends bigger groups.

`write` answers the outcome of the caller's own item: what `one` answers for a write sent
alone (and its exceptions, raised to that caller alone), or the group's answer for its item.
When the group statement fails, nothing of the group was committed: every item answers
`GROUP_FAILED` and the caller sends its write again by another path (the classic
transaction). When it fails because the database is unavailable (`unavailable`: a broken
connection, a timeout), the leader gets that error and every other item `ServiceUnavailable`
(503): sending them again would only wait on the same database a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from unifocus.errors import ServiceUnavailable
from unifocus.observability import hooks

GROUP_FAILED = "group_failed"

One = Callable[[asyncpg.Connection, Any], Awaitable[str]]
Many = Callable[[asyncpg.Connection, list[Any]], Awaitable[list[str]]]


@dataclass
class _Waiter:
    item: Any
    future: asyncio.Future[Any]


@dataclass
class _Lead:
    """Set on the future of the waiter that sends the next group: the others of its group."""

    followers: list[_Waiter]


@dataclass
class _Lane:
    waiting: list[_Waiter] = field(default_factory=list)


class GroupCommit:
    """One per process (`Database.group_commit`); lanes are created on demand and dropped
    when idle. `max_items` 1 sends every write alone."""

    def __init__(self, max_items: int, unavailable: tuple[type[BaseException], ...] = ()) -> None:
        self.max_items = max(1, max_items)
        self.unavailable = unavailable
        self._lanes: dict[Hashable, _Lane] = {}

    def busy(self, lane: Hashable) -> bool:
        """Whether a write of `lane` is in flight (a write now would queue behind it)."""
        return lane in self._lanes

    def queued(self) -> int:
        """Writes waiting for their lane's write in flight to return."""
        return sum(len(state.waiting) for state in self._lanes.values())

    async def write(self, lane: Hashable, conn: asyncpg.Connection, item: Any, one: One, many: Many) -> str:
        """Send `item` on `conn` at once if its lane is idle, else with the group that forms
        behind the write in flight (perhaps on another request's connection)."""
        if self.max_items == 1:
            return await one(conn, item)
        state = self._lanes.get(lane)
        if state is None:
            self._lanes[lane] = _Lane()
            return await self._lead(lane, conn, item, [], one, many)
        waiter = _Waiter(item, asyncio.get_running_loop().create_future())
        state.waiting.append(waiter)
        try:
            got = await waiter.future
        except asyncio.CancelledError:
            self._abandon(lane, state, waiter)
            raise
        if not isinstance(got, _Lead):
            return str(got)
        return await self._lead(lane, conn, item, got.followers, one, many)

    async def _lead(self, lane: Hashable, conn: asyncpg.Connection, item: Any, followers: list[_Waiter],
                    one: One, many: Many) -> str:
        """Send this caller's `item` with its `followers`' and answer each of them."""
        outcomes: list[str] | None = None
        down = False
        try:
            if not followers:
                outcomes = [await one(conn, item)]
            else:
                items = [item, *(w.item for w in followers)]
                hooks.write_group(len(items))
                try:
                    answered = await many(conn, items)
                    if len(answered) != len(items):
                        raise RuntimeError(f"a group of {len(items)} writes answered {len(answered)} outcomes")
                    outcomes = answered
                except asyncpg.PostgresError as exc:
                    if isinstance(exc, self.unavailable):
                        raise
                    outcomes = [GROUP_FAILED] * len(items)
        except self.unavailable:
            down = True
            raise
        finally:
            # Whatever happened to the statement, the others are answered and the lane moves on:
            # a waiter left without an answer would wait forever. (The leader cancelled: the
            # database is fine, the others go the other way.)
            for n, waiter in enumerate(followers, start=1):
                if waiter.future.done():
                    continue
                if down:
                    waiter.future.set_exception(ServiceUnavailable("The database is unavailable; retry later."))
                else:
                    waiter.future.set_result(outcomes[n] if outcomes else GROUP_FAILED)
            self._hand_off(lane)
        assert outcomes is not None  # else the statement's exception is on its way up
        return outcomes[0]

    def _hand_off(self, lane: Hashable) -> None:
        """Make the first live waiter the leader of everything queued (up to `max_items`), or
        drop the lane when nothing is."""
        state = self._lanes[lane]
        live = [w for w in state.waiting if not w.future.done()]
        batch, state.waiting = live[:self.max_items], live[self.max_items:]
        if batch:
            batch[0].future.set_result(_Lead(batch[1:]))
        else:
            del self._lanes[lane]

    def _abandon(self, lane: Hashable, state: _Lane, waiter: _Waiter) -> None:
        """A waiting request was cancelled. Its item leaves the queue; if it had just been made
        leader, the leadership (and the rest of its group) passes on."""
        if waiter in state.waiting:
            state.waiting.remove(waiter)
            return
        if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            got = waiter.future.result()
            if isinstance(got, _Lead):
                state.waiting[:0] = got.followers
                self._hand_off(lane)
