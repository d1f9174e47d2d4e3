"""Onward referral: packages from a referral to another country's centre or agency, their
delivery to a centre running this system, and the feedback it sends back."""
