"""Blind indexes: keyed hashes of normalised selectors, so tips correlate without storing
identifiers in clear."""

from __future__ import annotations

import hashlib
import hmac

from crypto.selectors import SelectorType, normalise_platform, normalise_selector, selector_type

# Bump if the normalisation or encoding changes: old and new indexes must never be compared.
_DOMAIN = b"tipline/blind-index/v1"
_MIN_KEY_BYTES = 32


def _field(data: bytes) -> bytes:
    # Length-prefixed, so ("a", "bc") and ("ab", "c") encode differently.
    return len(data).to_bytes(4, "big") + data  # pragma: no mutate (big is the default)


class BlindIndex:
    """HMAC-SHA-256 over (type, platform, normalised value).

    Args:
        key: a secret of at least 32 bytes, kept out of the database it protects.

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"blind index key must be at least {_MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "BlindIndex(key=<hidden>)"

    def compute(
        self,
        selector_type_name: SelectorType | str,
        value: str,
        platform: str | None = None,
        *,
        default_region: str | None = None,
    ) -> str:
        """The hex blind index of a selector.

        The same identifier written differently gives the same index; a username gives a
        different index on each platform.

        Raises:
            InvalidSelector: see :func:`crypto.selectors.normalise_selector`.
        """
        kind = selector_type(selector_type_name)
        normalised = normalise_selector(
            kind, value, platform=platform, default_region=default_region
        )
        platform_name = normalise_platform(platform) if kind is SelectorType.USERNAME else ""
        message = b"".join(
            [
                _field(_DOMAIN),
                _field(kind.value.encode()),
                _field(platform_name.encode()),
                _field(normalised.encode()),
            ]
        )
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
