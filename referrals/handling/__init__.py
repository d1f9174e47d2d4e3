"""Handling markings: the partner's TLP, handling code and source grading, carried from each
tip into its referral and checked whenever anything leaves the centre."""
