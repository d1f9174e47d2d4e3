"""Casework: the referral a tip accepted in triage becomes (the lifecycle builds on it)."""
