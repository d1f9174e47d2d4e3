"""Signing in and out, enrolment, and the per-request check of who is signed in."""
