"""Planning IMAP fetches: batches cut by count and bytes, oversized messages apart, UID order."""

from __future__ import annotations

from qa_mailer.ingest.imap_fetch import (
    FetchLimits,
    TooLargeStep,
    parse_fetch,
    parse_sizes,
    plan,
    uid_set,
)

MB = 1_000_000


def test_batches_are_cut_by_bytes_as_well_as_by_count() -> None:
    # 25 messages of 9 MB: with an 8 MiB budget each goes alone, never 225 MB at once.
    limits = FetchLimits(max_message_bytes=10 * MB, batch_bytes=8 * 1024 * 1024)
    steps = plan([(uid, 9 * MB) for uid in range(1, 26)], limits, per_batch=25)
    assert steps == [[uid] for uid in range(1, 26)]
    small = plan([(uid, 1000) for uid in range(1, 61)], limits, per_batch=25)
    assert [len(step) for step in small if isinstance(step, list)] == [25, 25, 10]


def test_an_oversized_message_splits_the_batches_around_it_in_uid_order() -> None:
    limits = FetchLimits(max_message_bytes=10 * MB, batch_bytes=8 * MB)
    steps = plan([(3, 100), (1, 100), (2, 51 * MB), (4, 100)], limits, per_batch=25)
    # The cursor advances to each step's highest UID: no batch may pass over UID 2.
    assert steps == [[1], TooLargeStep(2, 51 * MB), [3, 4]]


def test_uid_sets_are_written_as_ranges() -> None:
    assert uid_set([5, 1, 2, 3, 9, 10, 12]) == "1:3,5,9:10,12"
    assert uid_set([7]) == "7"


def test_sizes_and_literals_are_read_from_fetch_responses() -> None:
    sizes = [b"1 FETCH (UID 7 RFC822.SIZE 1234)", b"2 EXISTS", b"2 FETCH (RFC822.SIZE 9 UID 8)"]
    assert parse_sizes([*sizes, b"OK Fetch completed"]) == [(7, 1234), (8, 9)]
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 7 BODY[HEADER]<0> {12}",
        bytearray(b"Subject: x\r\n"),
        b")",
        b"OK Fetch completed",
    ]
    assert parse_fetch(lines) == [(7, b"Subject: x\r\n")]
