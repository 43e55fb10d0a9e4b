"""Per-session digests for the organisers: built, rendered, sent once after the session."""
