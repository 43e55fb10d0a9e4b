"""qa-mailer: an email-driven asynchronous Q&A service.

A question travels one way through the package, and the sub-packages are named in that order:
ingest -> parse -> classify -> route -> replies -> answer -> digest, with send/ delivering
every outgoing mail through a transactional outbox.
"""

__version__ = "0.1.0"
