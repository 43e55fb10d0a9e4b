"""A real DNS server on 127.0.0.1 serving TXT records, and one that never answers.

The mail authentication tests must not reach the internet: the SPF, DKIM and DMARC records
they need are served here over UDP (dnslib's server), and the listener is pointed at it
through ``[authentication] dns_servers``. ``silent_dns_server`` binds a UDP port and reads
nothing, so every query to it times out, as a dead resolver does.
"""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone:
    """TXT records by name (without the trailing dot); tests change them between mails."""

    txt: dict[str, list[str]] = field(default_factory=dict)


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone):
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        records = self.zone.txt.get(name)
        if request.q.qtype == QTYPE.TXT and records:
            for record in records:
                # One TXT record is a list of strings of at most 255 bytes each.
                chunks = [record[i : i + 255] for i in range(0, len(record), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        elif not any(n == name or n.endswith("." + name) for n in self.zone.txt):
            reply.header.rcode = 3  # NXDOMAIN: nothing at or below this name
        return reply


@dataclass
class DnsServer:
    port: int
    zone: Zone

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def dns_server(zone: Zone) -> Iterator[DnsServer]:
    """Serve ``zone`` on a free UDP port of 127.0.0.1 until the block ends."""
    server = DNSServer(
        _ZoneResolver(zone),
        address="127.0.0.1",
        port=0,
        logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False),
    )
    server.start_thread()
    try:
        yield DnsServer(int(server.server.server_address[1]), zone)
    finally:
        server.stop()
        server.server.server_close()


@contextmanager
def silent_dns_server() -> Iterator[str]:
    """The address of a UDP port that takes queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    public_record: str  # the TXT record to publish at <selector>._domainkey.<domain>


def dkim_key(folder: Path) -> DkimKey:
    """A fresh 2048-bit RSA key pair, made with openssl (as dkimpy's own dknewkey does)."""
    private = folder / "dkim.key"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(private), "2048"],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode("ascii")
    return DkimKey(private.read_bytes(), record)
