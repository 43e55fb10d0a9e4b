"""A plain IMAP client for the tests: what a participant's or the expert's mail server does."""

from __future__ import annotations

import asyncio
import imaplib
import re

from tests.servers.dovecot import DovecotServer, ImapUser


def _client(server: DovecotServer, user: ImapUser) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    client.login(user.name, user.password)
    return client


def _append(server: DovecotServer, user: ImapUser, messages: list[bytes], mailbox: str) -> None:
    client = _client(server, user)
    try:
        for raw in messages:
            status, _ = client.append(mailbox, None, None, raw)
            assert status == "OK"
    finally:
        client.logout()


async def append(
    server: DovecotServer, user: ImapUser, *messages: bytes, mailbox: str = "INBOX"
) -> None:
    """APPEND messages, as delivery to the mailbox would."""
    await asyncio.to_thread(_append, server, user, list(messages), mailbox)


def _flags(server: DovecotServer, user: ImapUser, mailbox: str) -> list[set[str]]:
    client = _client(server, user)
    try:
        status, _ = client.select(mailbox, readonly=True)
        if status != "OK":
            return []
        _, data = client.uid("fetch", "1:*", "(FLAGS)")
        flags = []
        for item in data:
            if isinstance(item, bytes) and b"FLAGS" in item:
                match = re.search(rb"FLAGS \(([^)]*)\)", item)
                flags.append(set(match.group(1).decode().split()) if match else set())
        return flags
    finally:
        client.logout()


async def flags_in(server: DovecotServer, user: ImapUser, mailbox: str = "INBOX") -> list[set[str]]:
    """The flags of every message in ``mailbox`` (empty list when it is empty or absent)."""
    return await asyncio.to_thread(_flags, server, user, mailbox)


async def inbox_empty(server: DovecotServer, user: ImapUser) -> bool:
    """Whether ``user``'s INBOX holds no message (for ``wait_until``)."""
    return await flags_in(server, user) == []
