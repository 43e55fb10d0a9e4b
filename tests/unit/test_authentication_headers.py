"""Renaming Authentication-Results that claim a trusted authserv-id, without parsing the body."""

from __future__ import annotations

from qa_mailer.ingest.authentication import rename_claims

TRUSTED = {"mx.clusters.example.org", "qa.clusters.example.org"}


def test_a_folded_claim_is_renamed_and_other_hosts_are_kept() -> None:
    raw = (
        b"Authentication-Results:\r\n  MX.Clusters.Example.Org;\r\n  dmarc=pass\r\n"
        b"Authentication-Results: mx.other.example; spf=pass\r\n"
        b"authentication-results: qa.clusters.example.org 1; dkim=pass\r\n"
        b"Subject: Re: x\r\n"
        b"\r\n"
        b"Authentication-Results: mx.clusters.example.org; dmarc=pass\r\n"
    )
    assert rename_claims(raw, TRUSTED) == (
        b"X-Original-Authentication-Results:\r\n  MX.Clusters.Example.Org;\r\n  dmarc=pass\r\n"
        b"Authentication-Results: mx.other.example; spf=pass\r\n"
        b"X-Original-Authentication-Results: qa.clusters.example.org 1; dkim=pass\r\n"
        b"Subject: Re: x\r\n"
        b"\r\n"
        # The body is text, not a header: it stays as it was written.
        b"Authentication-Results: mx.clusters.example.org; dmarc=pass\r\n"
    )


def test_bare_line_feeds_work_too() -> None:
    raw = b"Authentication-Results: mx.clusters.example.org; dmarc=pass\nSubject: x\n\nbody\n"
    assert rename_claims(raw, TRUSTED).startswith(b"X-Original-Authentication-Results: mx.")
