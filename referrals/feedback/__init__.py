"""Feedback: what a team lead chooses to tell the agencies whose tips are in a referral."""
