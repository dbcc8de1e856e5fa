"""The asyncio shell around the sans-IO group coordinators: futures in, timers out.

Only this module reads the clock and the topic table for the cores. Topic metadata is handed
to the consumer core before each ConsumerGroupHeartbeat and on every timer round, so new
partitions and new topics matching a regex start a new target assignment within one round.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from headwater.broker._consumer_types import (
    ConsumerGroupSettings,
    HeartbeatRequest,
    HeartbeatResult,
    TopicMeta,
)
from headwater.broker._group_coordinator import (
    GroupCoordinator,
    JoinRequest,
    JoinResult,
    Reply,
    SyncRequest,
    SyncResult,
)

if TYPE_CHECKING:
    from headwater.broker._server import Broker

_TICK_MAX_S = 0.1


class GroupsShell:
    """Turns coordinator replies into resolved futures and drives its timers."""

    def __init__(self, broker: Broker) -> None:
        config = broker.config
        self._broker = broker
        self.core = GroupCoordinator(
            initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
            max_group_size=config.group_max_size,
            min_session_timeout_ms=config.group_min_session_timeout_ms,
            max_session_timeout_ms=config.group_max_session_timeout_ms,
            consumer=ConsumerGroupSettings(
                session_timeout_ms=config.group_consumer_session_timeout_ms,
                heartbeat_interval_ms=config.group_consumer_heartbeat_interval_ms,
                max_size=config.group_consumer_max_size,
                assignors=tuple(config.group_consumer_assignors),
            ),
        )
        self._wake = asyncio.Event()

    def _deliver(self, replies: list[Reply]) -> None:
        for reply in replies:
            future = reply.token
            assert isinstance(future, asyncio.Future)
            if not future.done():
                future.set_result(reply.result)
        self._wake.set()

    async def join(self, request: JoinRequest) -> JoinResult:
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        self._deliver(self.core.join(future, request, self._broker.now_ms()))
        try:
            return await future
        except asyncio.CancelledError:
            self.core.cancel(future)
            raise

    async def sync(self, request: SyncRequest) -> SyncResult:
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        self._deliver(self.core.sync(future, request, self._broker.now_ms()))
        try:
            return await future
        except asyncio.CancelledError:
            self.core.cancel(future)
            raise

    def heartbeat(
        self, group_id: str, member_id: str, generation_id: int, instance_id: str | None
    ) -> int:
        code = self.core.heartbeat(
            group_id, member_id, generation_id, instance_id, self._broker.now_ms()
        )
        self._wake.set()
        return code

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        result = self.core.leave(group_id, members, self._broker.now_ms())
        self._deliver(self.core.take_replies())
        return result

    def consumer_heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        self._refresh_topics(force=True)
        result = self.core.consumer_heartbeat(request, self._broker.now_ms())
        self._wake.set()
        return result

    def _refresh_topics(self, *, force: bool = False) -> None:
        """Hand the consumer core the current topics; it compares and ignores no-changes.

        Timer rounds skip it while no consumer group exists; a heartbeat never does, so the
        first member of the first group already sees every topic.
        """
        if not force and not self.core.consumer.has_groups():
            return
        self.core.update_topics(
            {
                name: TopicMeta(topic.topic_id, len(topic.partitions))
                for name, topic in self._broker.topics.topics.items()
                if not topic.internal
            }
        )

    async def run(self) -> None:
        """Fire session, rebalance and initial-delay timers until cancelled."""
        while True:
            now = self._broker.now_ms()
            self._refresh_topics()
            self._deliver(self.core.tick(now))
            self._wake.clear()
            deadline = self.core.next_deadline_ms()
            delay = _TICK_MAX_S if deadline is None else max(0.0, (deadline - now) / 1000)
            try:
                async with asyncio.timeout(min(delay, _TICK_MAX_S)):
                    await self._wake.wait()
            except TimeoutError:
                pass
