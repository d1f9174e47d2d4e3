"""The domain: models, services, the referral state machine and the queue's jobs.

Nothing here imports Flask; the web app and the CLI in ``tipline`` compose these pieces.
"""
