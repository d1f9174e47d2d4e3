"""The audit log viewer (admins and team leads): search the log, verify its chain."""
