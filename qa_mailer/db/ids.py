"""Primary keys taken in advance, so a batch of rows goes in with one INSERT per table.

Rows that refer to each other (a thread, its question, the question's dispatch and mails) need
each other's ids before they are written. Asking the database for each id (INSERT ... RETURNING
per row) costs a round trip per row; taking a block of ids first lets the whole batch be
written with one executemany per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession


def table_of(model: type[object]) -> Table:
    """The table of a mapped class, for Core statements over many rows at once.

    A Core INSERT of plain rows does what the ORM's bulk insert does, with less work per row.
    """
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


async def allocate_ids(tx: AsyncSession, table: Table, count: int) -> list[int]:
    """``count`` unused ids for ``table``, in increasing order, valid in this transaction.

    PostgreSQL hands them out from the table's sequence, as a plain INSERT would. On SQLite the
    transaction holds the write lock from its start (see db/engine.py), so the ids after the
    current highest are ours until it commits; they are the ids SQLite itself would give.
    Rows written with them must be written in this transaction, before ids are taken again.
    """
    [ids] = await allocate_ids_of(tx, [(table, count)])
    return ids


async def allocate_ids_of(tx: AsyncSession, counts: Sequence[tuple[Table, int]]) -> list[list[int]]:
    """allocate_ids for several tables with one statement (each statement costs about as
    much as the work of a few questions)."""
    asked = [(index, table, count) for index, (table, count) in enumerate(counts) if count > 0]
    ids: list[list[int]] = [[] for _ in counts]
    if not asked:
        return ids
    if tx.get_bind().dialect.name == "postgresql":
        rows = await tx.execute(
            text(
                " UNION ALL ".join(
                    f"SELECT {index} AS asked, "
                    f"nextval(pg_get_serial_sequence(:table{index}, 'id')) AS id "
                    f"FROM generate_series(1, :count{index})"
                    for index, _, _ in asked
                )
            ),
            {
                key: value
                for index, table, count in asked
                for key, value in ((f"table{index}", table.name), (f"count{index}", count))
            },
        )
        for index, value in rows:
            ids[index].append(int(value))
        for numbers in ids:
            numbers.sort()
        return ids
    row = (
        await tx.execute(
            select(*(select(func.max(table.c.id)).scalar_subquery() for _, table, _ in asked))
        )
    ).one()
    for (index, _, count), highest in zip(asked, row, strict=True):
        first = int(highest or 0) + 1
        ids[index] = list(range(first, first + count))
    return ids
