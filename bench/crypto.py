"""Benchmark of the crypto layer against the bare gpg command line.

Run: .venv/bin/python bench/crypto.py [--iterations N] [--partners K]

Measures, on the same ~4 KiB tip document:
  * sign+encrypt (a partner), encrypt-only (the server, web-form tips) and decrypt-and-verify,
    through crypto.keyring.Keyring and through `gpg` subprocesses with equivalent options;
  * decrypt with a passphrase-protected key: GnuPG's default calibrated S2K count (passphrase
    uncached and cached in the agent), the minimum S2K count the Keyring uses, and no
    protection at all;
  * the layer's per-operation cost with ~1 vs K (default 300) partner keys in the keyring.
All GnuPG homes are scratch directories under /tmp, removed (and their agents stopped) at exit.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto.keyring import Keyring  # noqa: E402

PASSPHRASE = "bench-" + "x" * 40
KEY_PARAMS = (
    "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign,cert\n"
    "Subkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
    "Name-Real: {name}\nName-Email: {email}\nExpire-Date: 0\n{protection}\n%commit\n"
)


def tip_document() -> bytes:
    """A realistic tip of about 4 KiB."""
    narrative = (
        "During the investigation of a subscriber convicted of paying for live-streamed abuse, "
        "chat logs and payment records pointed to a facilitator operating from a residential "
        "address. Sessions were arranged through a messaging account and paid by remittance. "
    ) * 12
    document = {
        "schema": "tipline/tip/1",
        "partner_reference": "NCA-2024-118723",
        "submitted_at": "2024-05-02T09:14:00Z",
        "tlp": "AMBER",
        "urgency": ["child_at_imminent_risk", "ongoing_abuse"],
        "offence": "live_streamed_sexual_abuse",
        "location": {"country": "PH", "region": "Central Visayas", "precision": "city"},
        "victims": [{"approximate_age": age, "sex": "F"} for age in (2, 6, 9, 11, 13)],
        "suspects": [{"role": "facilitator", "approximate_age": 35}],
        "selectors": [
            {"type": "phone", "value": "+63 917 123 4567"},
            {"type": "email", "value": "facilitator@example.org"},
            {"type": "username", "platform": "chatapp", "value": "@sunnyday88"},
            {"type": "payment_account", "value": "PH12 3456 7890 1234"},
            {"type": "ip", "value": "203.0.113.54"},
        ],
        "narrative": narrative,
    }
    data = json.dumps(document, indent=1).encode()
    return data[:4096] if len(data) > 4096 else data + b" " * (4096 - len(data))


def gpg(home: Path, *args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", *args],
        input=stdin,
        capture_output=True,
        check=True,
    ).stdout


def make_home(root: Path, name: str, agent_conf: str | None = None) -> Path:
    home = root / name
    home.mkdir(mode=0o700)
    if agent_conf is not None:
        (home / "gpg-agent.conf").write_text(agent_conf)
    return home


def generate(home: Path, count: int, *, protection: str = "%no-protection", tag: str) -> None:
    block = "".join(
        KEY_PARAMS.format(name=f"{tag} {i}", email=f"{tag}{i}@bench.example", protection=protection)
        for i in range(count)
    )
    gpg(home, "--gen-key", stdin=block.encode())


def fingerprint_of(home: Path, secret: bool = False) -> str:
    listing = gpg(home, "--with-colons", "--list-secret-keys" if secret else "--list-keys")
    for line in listing.decode().splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise RuntimeError("no key")


def measure(op: Callable[[], object], iterations: int) -> tuple[float, float]:
    op()  # warm-up: agent start, caches
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        op()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(round(0.9 * len(samples))) - 1)]
    return statistics.median(samples), p90


def row(label: str, layer: tuple[float, float] | None, cli: tuple[float, float] | None) -> None:
    def cell(value: tuple[float, float] | None) -> str:
        return f"{value[0]:8.1f} {value[1]:8.1f}" if value else f"{'-':>8} {'-':>8}"

    print(f"| {label:<44} | {cell(layer)} | {cell(cli)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--partners", type=int, default=300)
    options = parser.parse_args()
    n = options.iterations
    root = Path(tempfile.mkdtemp(prefix="tlb-", dir="/tmp"))
    homes: list[Path] = []
    try:
        began = time.perf_counter()
        tip = tip_document()

        # The centre, as the Keyring sets it up: protected key, minimum S2K count, no cache.
        intake_home = root / "intake"
        homes.append(intake_home)
        intake = Keyring(intake_home, passphrase=PASSPHRASE)
        intake_fpr = intake.generate_intake_key(name="Bench Intake", email="intake@bench.example")

        partner_home = make_home(root, "partner")
        homes.append(partner_home)
        generate(partner_home, 1, tag="Partner")
        partner_fpr = fingerprint_of(partner_home)
        partner = Keyring(partner_home)
        partner.import_partner_key(intake.export_public_key(intake_fpr))
        intake.import_partner_key(partner.export_public_key(partner_fpr))

        trust = ["--trust-model", "always", "--no-auto-check-trustdb"]
        signed = partner.encrypt(tip, [intake_fpr], sign_with=partner_fpr)

        print(f"# tipline crypto bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(f"# {platform.platform()}, python {platform.python_version()}, {n} iterations")
        print(f"# message {len(tip)} bytes; times in ms (median, p90)\n")
        print(f"| {'operation':<44} | {'layer':>8} {'p90':>8} | {'gpg CLI':>8} {'p90':>8} |")
        print(f"|{'-' * 46}|{'-' * 19}|{'-' * 19}|")

        row(
            "sign+encrypt (partner)",
            measure(lambda: partner.encrypt(tip, [intake_fpr], sign_with=partner_fpr), n),
            measure(
                lambda: gpg(
                    partner_home,
                    *trust,
                    "-a",
                    "-s",
                    "-e",
                    "-u",
                    partner_fpr,
                    "-r",
                    intake_fpr,
                    stdin=tip,
                ),
                n,
            ),
        )
        row(
            "encrypt only (server, web form)",
            measure(lambda: intake.encrypt(tip, [intake_fpr]), n),
            measure(lambda: gpg(intake_home, *trust, "-a", "-e", "-r", intake_fpr, stdin=tip), n),
        )
        loopback = ["--pinentry-mode", "loopback", "--passphrase", PASSPHRASE]
        row(
            "decrypt+verify (intake key, min S2K count)",
            measure(lambda: intake.decrypt_and_verify(signed), n),
            measure(lambda: gpg(intake_home, *trust, *loopback, "-d", stdin=signed.encode()), n),
        )

        # Protection options, CLI only (the layer adds the same constant overhead).
        def protected_home(name: str, conf: str | None, protection: str) -> tuple[Path, bytes]:
            home = make_home(root, name, conf)
            homes.append(home)
            generate(home, 1, protection=protection, tag=name)
            fpr = fingerprint_of(home)
            message = gpg(home, *trust, "-a", "-e", "-r", fpr, stdin=tip)
            return home, message

        slow = max(5, n // 3)
        uncached_home, uncached_msg = protected_home(
            "p-uncached", "default-cache-ttl 0\nmax-cache-ttl 0\n", f"Passphrase: {PASSPHRASE}"
        )
        cached_home, cached_msg = protected_home(
            "p-cached",
            "default-cache-ttl 86400\nmax-cache-ttl 86400\n",
            f"Passphrase: {PASSPHRASE}",
        )
        gpg(cached_home, *trust, *loopback, "-d", stdin=cached_msg)  # fills the agent cache
        plain_home, plain_msg = protected_home("p-none", None, "%no-protection")
        row(
            "decrypt, default S2K, passphrase each call",
            None,
            measure(lambda: gpg(uncached_home, *trust, *loopback, "-d", stdin=uncached_msg), slow),
        )
        row(
            "decrypt, default S2K, passphrase cached",
            None,
            measure(
                lambda: gpg(
                    cached_home, *trust, "--pinentry-mode", "loopback", "-d", stdin=cached_msg
                ),
                slow,
            ),
        )
        row(
            "decrypt, minimum S2K (our choice)",
            None,
            measure(lambda: gpg(intake_home, *trust, *loopback, "-d", stdin=signed.encode()), n),
        )
        row(
            "decrypt, unprotected key",
            None,
            measure(lambda: gpg(plain_home, *trust, "-d", stdin=plain_msg), n),
        )

        # Keyring size: the same intake home with K more partner keys.
        crowd_home = make_home(root, "crowd")
        homes.append(crowd_home)
        started = time.perf_counter()
        generate(crowd_home, options.partners, tag="Agency")
        generated = time.perf_counter() - started
        before = {
            "encrypt only": measure(lambda: intake.encrypt(tip, [intake_fpr]), n),
            "decrypt+verify": measure(lambda: intake.decrypt_and_verify(signed), n),
            "encrypt to partner": measure(lambda: intake.encrypt(tip, [partner_fpr]), n),
            "has_secret_key": measure(lambda: intake.has_secret_key(intake_fpr), n),
        }
        gpg(intake_home, "--import", stdin=gpg(crowd_home, "--export"))
        after = {
            "encrypt only": measure(lambda: intake.encrypt(tip, [intake_fpr]), n),
            "decrypt+verify": measure(lambda: intake.decrypt_and_verify(signed), n),
            "encrypt to partner": measure(lambda: intake.encrypt(tip, [partner_fpr]), n),
            "has_secret_key": measure(lambda: intake.has_secret_key(intake_fpr), n),
        }
        print(
            f"\n# keyring size (layer): 1 partner key vs {options.partners + 1} "
            f"(generated {options.partners} keys in {generated:.1f} s)\n"
        )
        wide = f"{options.partners + 1} keys"
        print(f"| {'operation':<44} | {'1 key':>8} {'p90':>8} | {wide:>8} {'p90':>8} |")
        print(f"|{'-' * 46}|{'-' * 19}|{'-' * 19}|")
        for label in before:
            row(label, before[label], after[label])
        # What the layer never does per call: python-gnupg's list_keys() over the whole ring.
        full_list = measure(lambda: intake._gpg.list_keys(), 5)
        row("(avoided) python-gnupg list_keys(), all keys", None, full_list)
        print(f"\n# total bench time {time.perf_counter() - began:.0f} s")
    finally:
        for home in homes:
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
