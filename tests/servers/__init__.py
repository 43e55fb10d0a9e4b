"""Real servers for the tests: Dovecot (IMAP), aiosmtpd sinks (SMTP), PostgreSQL."""
