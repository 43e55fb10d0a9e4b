"""VERP: the envelope sender of each outgoing mail names its outbox row, signed.

A mail goes out with MAIL FROM ``qa+bounce-<id>-<mac>@domain``, where ``<id>`` is the outbox
row and ``<mac>`` the first 64 bits of an HMAC-SHA256 of it under a random key the service
keeps in its database (``service_keys``, made by whichever process needs it first). A bounce
comes back to that address, so it names the very mail that failed even when it quotes none
of it, and whoever did not receive that mail cannot forge a bounce for it (nor, knowing one
such address, for any other row). Where the envelope sender's address ends up visible (the
Return-Path of every copy delivered), it tells nothing but the row number.

Made, written and read here only: the sender asks for the address, the pipeline for the tag.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.addresses import ServiceAddress
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.db import ServiceKey

KEY_NAME = "verp"
_TAG = re.compile(r"^bounce-([0-9]{1,18})-([0-9a-f]{16})$")


@dataclass(frozen=True)
class VerpTag:
    """What a bounce's recipient address says: the outbox row, and the signature to check."""

    outbox_id: int
    mac: str


async def load_key(tx: AsyncSession) -> bytes | None:
    """The key, if any process made one (no key: no mail was ever signed with it)."""
    value = await tx.scalar(select(ServiceKey.value).where(ServiceKey.name == KEY_NAME))
    return bytes.fromhex(value) if value else None


async def ensure_key(tx: AsyncSession, clock: Clock) -> bytes:
    """The key, made now if no process has made it yet (two at once: one wins, both use it)."""
    key = await load_key(tx)
    if key is not None:
        return key
    try:
        async with tx.begin_nested():
            tx.add(ServiceKey(name=KEY_NAME, value=secrets.token_hex(32), created_at=clock.now()))
    except IntegrityError:
        pass
    key = await load_key(tx)
    assert key is not None
    return key


def _mac(key: bytes, outbox_id: int) -> str:
    return hmac.new(key, f"bounce:{outbox_id}".encode(), hashlib.sha256).hexdigest()[:16]


def bounce_address(envelope_from: str, outbox_id: int, key: bytes) -> str:
    """``envelope_from`` with the plus tag that names outbox row ``outbox_id``."""
    return ServiceAddress.parse(envelope_from).tagged(f"bounce-{outbox_id}-{_mac(key, outbox_id)}")


def verp_tag(incoming: Incoming, address: ServiceAddress) -> VerpTag | None:
    """The VERP tag of the first address of ours this mail was sent to, if it has one."""
    for recipient in incoming.recipients:
        match = _TAG.match(address.tag_of(recipient) or "")
        if match:
            return VerpTag(int(match.group(1)), match.group(2))
    return None


def verify(tag: VerpTag, key: bytes | None) -> bool:
    """True when ``tag`` was made with ``key``."""
    return key is not None and hmac.compare_digest(tag.mac, _mac(key, tag.outbox_id))
