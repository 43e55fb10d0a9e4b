"""Erasing a participant's mail from the service's own mailbox (`privacy.erase_mailbox_copies`)."""

from __future__ import annotations

import logging

from qa_mailer.config import ImapConfig
from qa_mailer.ingest.imap_connection import ImapError, connect, search_uids, text_of
from qa_mailer.ingest.imap_fetch import uid_set

log = logging.getLogger("qa_mailer.privacy")


async def erase_mailbox_copies(config: ImapConfig, address: str) -> int:
    """Delete every mail from ``address`` in the watched mailbox and the Processed folder.

    The mail is marked \\Deleted and expunged by UID where the server offers UIDPLUS, so
    nothing else in the folder is expunged with it. Returns how many were deleted.
    """
    if any(c in address for c in '"\\\r\n'):
        raise ImapError(f"cannot search the mailbox for {address!r}")
    folders = [config.mailbox]
    if config.processed == "folder":
        folders.append(config.processed_folder)
    connection = await connect(config)
    deleted = 0
    try:
        client = connection.client
        for folder in folders:
            response = await connection.command(client.select(folder))
            if response.result != "OK":
                continue  # a Processed folder not made yet holds nothing
            uids = await search_uids(connection, f'FROM "{address}"')
            if not uids:
                continue
            found = uid_set(uids)
            response = await connection.command(
                client.uid("store", found, "+FLAGS.SILENT", "(\\Deleted)")
            )
            if response.result != "OK":
                raise ImapError(f"cannot mark mail in {folder} deleted: {text_of(response.lines)}")
            if connection.has_capability("UIDPLUS"):
                response = await connection.command(client.uid("expunge", found))
            else:
                response = await connection.command(client.expunge())
            if response.result != "OK":
                raise ImapError(f"cannot expunge {folder}: {text_of(response.lines)}")
            deleted += len(uids)
            log.info("%d mail(s) from an erased participant deleted from %s", len(uids), folder)
    finally:
        await connection.logout()
    return deleted
