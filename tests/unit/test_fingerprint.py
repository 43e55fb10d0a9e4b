"""The dedupe fingerprint, now hashed a line at a time, is the one stored messages already have."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from qa_mailer.ingest.store import headline

# Lines of text, white space of every kind, CR and LF in any order, and a Message-ID or not.
_PIECES = st.sampled_from(
    [b"a", b"Q-1", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\x00", "é".encode()]
)


def _reference(raw: bytes, message_id: str | None) -> str:
    # The fingerprint as the store computed it before (copies of the whole body included).
    def normalised(data: bytes) -> bytes:
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        return b"\n".join(line.rstrip() for line in lines).strip()

    body = b""
    for separator in (b"\r\n\r\n", b"\n\n"):
        _, found, rest = raw.partition(separator)
        if found:
            body = rest
            break
    digest = hashlib.sha256()
    if message_id:
        digest.update(message_id.encode() + b"\0" + normalised(body))
    else:
        digest.update(normalised(raw))
    return digest.hexdigest()


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(_PIECES, max_size=40).map(b"".join),
    with_id=st.booleans(),
    crlf=st.booleans(),
)
def test_the_fingerprint_is_unchanged(body: bytes, with_id: bool, crlf: bool) -> None:
    end = b"\r\n" if crlf else b"\n"
    head = b"From: ana@drvo.example.hr" + end + b"Subject: x" + end
    if with_id:
        head += b"Message-ID: <m1@drvo.example.hr>" + end
    raw = head + end + body
    found = headline(raw)
    assert (found.message_id is not None) == with_id
    assert found.fingerprint == _reference(raw, found.message_id)


@given(raw=st.lists(_PIECES, max_size=40).map(b"".join))
def test_the_fingerprint_of_anything_is_unchanged(raw: bytes) -> None:
    assert headline(raw).fingerprint == _reference(raw, headline(raw).message_id)
