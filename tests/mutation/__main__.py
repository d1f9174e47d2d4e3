"""``python -m tests.mutation [--record]``: score the last mutmut run (see ``score.py``)."""

from __future__ import annotations

import sys

from tests.mutation.score import main

sys.exit(main(sys.argv[1:]))
