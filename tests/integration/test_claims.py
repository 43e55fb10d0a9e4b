"""Claims on SQLite and PostgreSQL: a message is processed by one worker, once, whatever dies.

A worker "dies" here the way a SIGKILL leaves it: its claim stays in the database and nothing
finishes it. Another worker finds it silent, frees its claims, and takes the work over.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import load_roster
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxMail, Question
from qa_mailer.db.claims import MAX_MESSAGE_ATTEMPTS, ClaimedMessage, claim_messages
from qa_mailer.db.engine import session_factory
from qa_mailer.ingest.store import Envelope, MessageStore
from qa_mailer.pipeline import LEASE, Pipeline, Sorted
from qa_mailer.sorting import Outcome
from qa_mailer.templates import Templates
from qa_mailer.workers import Workers
from tests.helpers import FakeClock, make_mail, registered, write_config


class Crashes(Pipeline):
    """Dies (as a killed process would: nothing caught, nothing cleaned up) on poison mail."""

    def _sort(self, claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
        if any(b"POISON" in message.raw for message in claimed):
            raise SystemExit("killed while processing this message")
        return super()._sort(claimed)


class Killed(BaseException):
    """A worker's death in a task: SystemExit would leave the event loop itself."""


class CrashesWriting(Pipeline):
    """Dies while writing a batch that holds poison mail (parsing it went well, in a helper)."""

    async def _write_batch(self, batch: list[Sorted]) -> list[Outcome]:
        if any(b"POISON" in message.claimed.raw for message in batch):
            raise Killed("killed while writing this message")
        return await super()._write_batch(batch)


async def worker(
    config: Config,
    engine: AsyncEngine,
    clock: FakeClock,
    kind: type[Pipeline] = Pipeline,
    parse_processes: int = 0,
) -> Pipeline:
    sessions = session_factory(engine)
    roster = load_roster(config.roster, config.countries)
    workers = await registered(sessions, clock)
    pipeline = kind(
        config, sessions, roster, Templates(), clock, workers, parse_processes=parse_processes
    )
    await pipeline.start()
    return pipeline


async def store(engine: AsyncEngine, clock: FakeClock, *bodies: str) -> list[int]:
    sessions = session_factory(engine)
    saved = MessageStore(sessions, clock, lambda: None)
    ids = []
    for body in bodies:
        n = next(_senders)
        raw = make_mail(sender=f"p{n}@firm.example.bg", subject=f"[VC1] Q{n}", body=body)
        ids.append((await saved.store(raw, Envelope(source="smtp"))).id)
    return ids


_senders = itertools.count()


async def states(engine: AsyncEngine) -> dict[int, tuple[str, int]]:
    async with session_factory(engine)() as tx:
        rows = await tx.execute(
            select(InboundMessage.id, InboundMessage.state, InboundMessage.attempts)
        )
        return {id_: (state, attempts) for id_, state, attempts in rows}


async def count(engine: AsyncEngine, model: type) -> int:
    async with session_factory(engine)() as tx:
        return int(await tx.scalar(select(func.count()).select_from(model)) or 0)


def workers_of(pipeline: Pipeline) -> Workers:
    return pipeline._workers


async def presumed_dead(survivor: Pipeline, clock: FakeClock, dead: Pipeline) -> None:
    clock.advance(seconds=workers_of(survivor).timing.dead_after_seconds + 1)
    assert workers_of(dead).id in await workers_of(survivor).beat()


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return write_config(tmp_path, database_url)


@pytest.mark.asyncio
async def test_two_workers_claim_disjoint_batches(config: Config, engine: AsyncEngine) -> None:
    clock = FakeClock()
    await store(engine, clock, *(f"Question {n}?" for n in range(120)))
    first, second = await worker(config, engine, clock), await worker(config, engine, clock)
    results = await asyncio.gather(first.process_pending(), second.process_pending())
    done = [o.message_id for outcomes in results for o in outcomes]
    assert sorted(done) == sorted(set(done)) and len(done) == 120
    assert await count(engine, Question) == 120
    assert await count(engine, OutboxMail) == 240


@pytest.mark.asyncio
async def test_the_work_of_a_worker_that_died_is_taken_over_once(
    config: Config, engine: AsyncEngine
) -> None:
    clock = FakeClock()
    [message] = await store(engine, clock, "Who pays for the joint stand?")
    dead = await worker(config, engine, clock)
    async with session_factory(engine).begin() as tx:
        claimed = await claim_messages(tx, workers_of(dead).id, clock.now(), LEASE, 10)
    assert [c.id for c in claimed] == [message]
    survivor = await worker(config, engine, clock)
    assert await survivor.process_pending() == [], "claimed by a worker still presumed alive"
    await presumed_dead(survivor, clock, dead)
    [outcome] = await survivor.process_pending()
    assert outcome.state == MessageState.PROCESSED
    assert (await states(engine))[message] == (MessageState.PROCESSED, 2)
    # The dead worker comes back (it was only paused) and finishes what it had claimed:
    # its claim is gone, so it writes nothing.
    assert await dead.process_claimed(claimed) == []
    assert await count(engine, Question) == 1 and await count(engine, OutboxMail) == 2


@pytest.mark.asyncio
async def test_a_message_that_kills_its_worker_fails_alone(
    config: Config, engine: AsyncEngine
) -> None:
    clock = FakeClock()
    ids = await store(engine, clock, "First?", "POISON", "Third?", "Fourth?")
    poison = ids[1]
    survivor = await worker(config, engine, clock)
    for _ in range(MAX_MESSAGE_ATTEMPTS):
        crashing = await worker(config, engine, clock, Crashes)
        with pytest.raises(SystemExit):
            await crashing.process_pending()
        await presumed_dead(survivor, clock, crashing)
    # The first crash took the whole batch with it; after that each message is retried
    # alone, so only the poison one is in hand when a worker dies again.
    found = await states(engine)
    assert found[poison] == (MessageState.PROCESSING, MAX_MESSAGE_ATTEMPTS)
    assert found[ids[0]][0] == MessageState.PROCESSED
    outcomes = {o.message_id: o for o in await survivor.process_pending()}
    assert outcomes[poison].state == MessageState.QUARANTINED
    assert f"did not finish in {MAX_MESSAGE_ATTEMPTS} attempts" in (outcomes[poison].reason or "")
    assert all(
        state == MessageState.PROCESSED
        for i, (state, _) in (await states(engine)).items()
        if i != poison
    )
    assert await count(engine, Question) == 3


@pytest.mark.asyncio
async def test_with_parsing_helpers_a_message_that_kills_its_worker_fails_alone(
    config: Config, engine: AsyncEngine
) -> None:
    # With helpers, batches are claimed ahead while one is written; a message being retried
    # is done with nothing else in hand, so the worker it kills takes no neighbour along.
    clock = FakeClock()
    ids = await store(engine, clock, "First?", "POISON", "Third?", "Fourth?")
    poison = ids[1]
    survivor = await worker(config, engine, clock, parse_processes=1)
    try:
        for _ in range(MAX_MESSAGE_ATTEMPTS):
            crashing = await worker(config, engine, clock, CrashesWriting, parse_processes=1)
            try:
                with pytest.raises(Killed):
                    await crashing.process_pending()
            finally:
                crashing.close()
            await presumed_dead(survivor, clock, crashing)
            await store(engine, clock, *(f"Meanwhile {n}?" for n in range(3)))
        found = await states(engine)
        assert found[poison] == (MessageState.PROCESSING, MAX_MESSAGE_ATTEMPTS)
        assert all(attempts <= 2 for i, (_, attempts) in found.items() if i != poison), found
        outcomes = {o.message_id: o for o in await survivor.process_pending()}
    finally:
        survivor.close()
    assert outcomes[poison].state == MessageState.QUARANTINED
    assert all(
        state == MessageState.PROCESSED
        for i, (state, _) in (await states(engine)).items()
        if i != poison
    )
    assert await count(engine, Question) == 3 + 3 * MAX_MESSAGE_ATTEMPTS


@pytest.mark.asyncio
async def test_a_message_done_before_is_not_done_again_when_put_back(
    config: Config, engine: AsyncEngine
) -> None:
    # An earlier version could quarantine a message whose question it had stored; putting
    # it back must not make a second question, nor fail its neighbours.
    clock = FakeClock()
    [done] = await store(engine, clock, "Already answered?")
    pipeline = await worker(config, engine, clock)
    await pipeline.process_pending()
    async with session_factory(engine).begin() as tx:
        await tx.execute(
            update(InboundMessage)
            .where(InboundMessage.id == done)
            .values(state=MessageState.RECEIVED, attempts=0)
        )
    fresh = await store(engine, clock, "New one?", "Another?")
    outcomes = {o.message_id: o for o in await pipeline.process_pending()}
    assert (outcomes[done].state, outcomes[done].reason) == (
        MessageState.PROCESSED,
        "already processed",
    )
    assert all(outcomes[i].state == MessageState.PROCESSED for i in fresh)
    assert await count(engine, Question) == 3 and await count(engine, OutboxMail) == 6


@pytest.mark.asyncio
async def test_a_parse_failure_in_a_batch_fails_alone(config: Config, engine: AsyncEngine) -> None:
    clock = FakeClock()
    sessions = session_factory(engine)
    good = await store(engine, clock, "First?", "Second?")
    bad = (
        await MessageStore(sessions, clock, lambda: None).store(b"\x00 not mail", Envelope("smtp"))
    ).id
    outcomes = {
        o.message_id: o for o in await (await worker(config, engine, clock)).process_pending()
    }
    assert outcomes[bad].state == MessageState.QUARANTINED
    assert all(outcomes[i].state == MessageState.PROCESSED for i in good)


@pytest.mark.asyncio
async def test_parsing_helpers_that_cannot_start_leave_the_parsing_to_the_service(
    config: Config, engine: AsyncEngine
) -> None:
    from qa_mailer.offload import Offload
    from qa_mailer.sorting import sort_in_helper
    from tests.unit.test_offload import refuses_to_start

    clock = FakeClock()
    await store(engine, clock, "First?", "Second?")
    pipeline = await worker(config, engine, clock)
    pipeline._helpers = Offload(sort_in_helper, 1, 20, initializer=refuses_to_start)
    outcomes = await pipeline.process_pending()
    assert [o.state for o in outcomes] == [MessageState.PROCESSED] * 2
    assert pipeline._helpers is None
