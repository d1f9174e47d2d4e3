"""Mutation testing: how many deliberate bugs in the security-critical code the suite catches.

``scripts/mutation`` runs mutmut over the areas below and then ``python -m tests.mutation`` to
score them against the floors recorded in ``scores.json`` (see ``score.py``).
"""
