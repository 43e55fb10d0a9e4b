"""Planning and reading UID FETCHes so that memory stays bounded, whatever the mailbox holds.

A FETCH response is held whole by aioimaplib until its last byte, so the batch is what costs
memory: 25 messages of 9 MB are 225 MB before anything is stored. Batches are therefore cut by
size as well as by count, from the RFC822.SIZE the server reports before any body is fetched,
and a message over the size limit is never fetched whole at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_FETCH_START = re.compile(rb"^(?:\* )?\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")

# aioimaplib handles each response line recursively: a response of ~1,000 lines raised
# RecursionError and hung (shared/NOTES.md). A size query answers one line per message.
SIZES_PER_FETCH = 200


@dataclass(frozen=True)
class FetchLimits:
    """How much mail the poller takes in, and holds in memory at once."""

    # The SMTP listener's limit (listener.max_message_bytes): a larger message is recorded by
    # its headers and never fetched whole.
    max_message_bytes: int = 25 * 1024 * 1024
    # A fetch batch holds at most this many bytes; a single larger message goes alone.
    batch_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class TooLargeStep:
    """A message over the size limit: to be recorded by its headers, never fetched whole."""

    uid: int
    size: int


def plan(
    sizes: Sequence[tuple[int, int]], limits: FetchLimits, per_batch: int
) -> list[list[int] | TooLargeStep]:
    """What to fetch of the new messages, in UID order: batches, and oversized messages.

    A batch holds at most ``per_batch`` messages and ``limits.batch_bytes`` (a single larger
    message goes alone). Batches never reach across an oversized message: the cursor moves
    to a batch's highest UID, and must not pass a message that is not yet recorded.
    """
    steps: list[list[int] | TooLargeStep] = []
    batch: list[int] = []
    held = 0
    for uid, size in sorted(sizes):
        if size > limits.max_message_bytes:
            if batch:
                steps.append(batch)
                batch, held = [], 0
            steps.append(TooLargeStep(uid, size))
            continue
        if batch and (len(batch) >= per_batch or held + size > limits.batch_bytes):
            steps.append(batch)
            batch, held = [], 0
        batch.append(uid)
        held += size
    if batch:
        steps.append(batch)
    return steps


def uid_set(uids: Iterable[int]) -> str:
    """An IMAP sequence set, with runs written as ranges (1:5,9) to keep commands short."""
    parts: list[str] = []
    run: list[int] = []
    for uid in sorted(uids):
        if run and uid == run[-1] + 1:
            run.append(uid)
            continue
        if run:
            parts.append(_run(run))
        run = [uid]
    if run:
        parts.append(_run(run))
    return ",".join(parts)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}:{run[-1]}"


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_sizes(lines: Iterable[bytes | bytearray]) -> list[tuple[int, int]]:
    """(UID, size) pairs from a UID FETCH (UID RFC822.SIZE) response."""
    found = []
    for line in lines:
        if not isinstance(line, bytes) or not _FETCH_START.match(line):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            found.append((int(uid.group(1)), int(size.group(1))))
    return found


def parse_fetch(lines: Iterable[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(UID, literal) pairs from a UID FETCH of one body part per message.

    Each message arrives as a ``n FETCH (... {size}`` line, the literal as a bytearray, and a
    closing line; the UID may be on either side of the literal.
    """
    found: list[tuple[int, bytes]] = []
    uid: int | None = None
    literal: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            literal = bytes(line)
            continue
        if _FETCH_START.match(line):
            if uid is not None and literal is not None:
                found.append((uid, literal))
            uid, literal = None, None
        match = _UID.search(line)
        if match and uid is None:
            uid = int(match.group(1))
    if uid is not None and literal is not None:
        found.append((uid, literal))
    return found
