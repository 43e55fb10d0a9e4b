"""VERP addresses: made, read back and checked; a bounce's addresses taken as the mail's."""

from __future__ import annotations

from datetime import UTC, datetime

from qa_mailer.addresses import ServiceAddress
from qa_mailer.classify.incoming import Incoming
from qa_mailer.parse import parse_mail
from qa_mailer.send.bounces import _as_recipients
from qa_mailer.send.verp import VerpTag, bounce_address, verify, verp_tag
from tests.helpers import QA, make_mail

KEY = bytes(range(32))
OURS = ServiceAddress.parse(QA)


def arriving_at(address: str) -> Incoming:
    raw = make_mail(sender="MAILER-DAEMON@mx.example.org", to=address, subject="Undelivered")
    return Incoming(parse_mail(raw), "smtp", "", (address,), datetime.now(UTC))


def test_an_address_names_its_row_and_only_the_key_signs_it() -> None:
    address = bounce_address(QA, 4711, KEY)
    assert address.startswith("qa+bounce-4711-") and address.endswith("@clusters.example.org")
    tag = verp_tag(arriving_at(address), OURS)
    assert tag is not None and tag.outbox_id == 4711 and verify(tag, KEY)
    # Another row's number under the same signature, another key, no key: not believed.
    assert not verify(VerpTag(4712, tag.mac), KEY)
    assert not verify(tag, bytes(32)) and not verify(tag, None)
    # Our other plus addresses and other domains carry no VERP tag.
    assert verp_tag(arriving_at("qa+r0123456789abcdef0123@clusters.example.org"), OURS) is None
    assert verp_tag(arriving_at(address.replace("clusters", "elsewhere")), OURS) is None


def test_the_failed_addresses_are_taken_as_the_mails_recipients() -> None:
    one = ["ana@drvo.example.hr"]
    assert _as_recipients([("ana.h@mail.drvo.example.hr", True)], one) == [
        ("ana@drvo.example.hr", True)
    ]
    assert _as_recipients([("ana@drvo.example.hr", False)], one) == [("ana@drvo.example.hr", False)]
    two = ["a@x.example", "b@y.example"]
    assert _as_recipients([("b@y.example", True), ("c@z.example", True)], two) == [
        ("b@y.example", True)
    ]
    assert _as_recipients([("c@z.example", True)], two) == [("c@z.example", True)]
