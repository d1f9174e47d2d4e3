"""Triage: correlation on blind indexes, priority with reasons, SLA clocks, routing."""
