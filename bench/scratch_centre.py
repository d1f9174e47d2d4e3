"""What the benchmarks share: a scratch centre made with the documented CLI, and one partner
agency of it with its own key (a bench script imports this from its own folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.partners import PartnerKeys  # noqa: E402


def tipline(env: dict[str, str], *args: str) -> str:
    """Run `tipline ARGS` in its own process; its output, or RuntimeError with its errors."""
    result = subprocess.run(
        [sys.executable, "-m", "tipline", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tipline {' '.join(args)}: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def open_centre(env: dict[str, str], scratch: Path, partner: PartnerKeys) -> tuple[str, Any]:
    """`tipline init` in the home ``env`` names, then one agency ("Bench", key "bench" of
    ``partner``, which trusts the intake key).

    Returns:
        The intake key's fingerprint, and `tipline agency add --json`'s answer (id, token).
    """
    tipline(env, "init")
    intake_key = tipline(env, "intake-key")
    partner.trust_recipient(intake_key)
    intake_fpr = next(
        line.split(":")[9]
        for line in partner.gpg("--with-colons", "--show-keys", stdin=intake_key.encode())
        .decode()
        .splitlines()
        if line.startswith("fpr:")
    )
    partner.generate("bench")
    key_file = scratch / "partner.asc"
    key_file.write_bytes(partner.public_key("bench"))
    added = json.loads(
        tipline(env, "agency", "add", "--name", "Bench", "--country", "GB",
                "--key-file", str(key_file), "--json")
    )  # fmt: skip
    return intake_fpr, added
