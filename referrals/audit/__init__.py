"""The audit log: an append-only, hash-chained record of who did what, when and from where."""
