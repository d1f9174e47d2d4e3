"""Who the client is: its address behind trusted reverse proxies, and the bucket rate limits
count it in.

Behind a TLS proxy every connection comes from the proxy. ``TIPLINE_TRUSTED_PROXIES`` says how
many proxies stand in front of the app; Werkzeug's ``ProxyFix`` then takes the client's
address, the scheme and the host from the ``X-Forwarded-*`` headers those proxies add, and
nothing a client writes in those headers itself is believed beyond that many hops.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

UNKNOWN = "unknown"  # the rate-limit bucket of clients without an address (a Unix socket)
IPV6_PREFIX = 64  # one subscriber's allocation: a client can change the rest at will


def init_app(app: Flask, *, trusted_proxies: int) -> None:
    """Believe the ``X-Forwarded-For``, ``-Proto`` and ``-Host`` headers of that many proxies.

    ``-For`` gives the client's address (audit records, rate limits); ``-Proto`` tells the app
    the browser spoke HTTPS (the CSRF referrer check compares the scheme); ``-Host`` is the
    host the browser asked for (the same check compares it with the Referer). Neither the
    port nor a path prefix is taken: the proxy serves the app at its root and the host header
    it passes on carries any port the browser used.
    """
    if trusted_proxies > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=trusted_proxies, x_proto=trusted_proxies, x_host=trusted_proxies
        )


def known_address(remote: str | None) -> str | None:
    """``remote`` as a normalised IP address, or None when it is not one.

    gunicorn bound to a Unix socket passes an empty address: that client is unknown.
    """
    if not remote:
        return None
    try:
        return str(ipaddress.ip_address(remote))
    except ValueError:
        return None


def client_address() -> str | None:
    """This request's client address (after the trusted proxies), or None when unknown."""
    return known_address(request.remote_addr)


def rate_limit_bucket(address: str | None) -> str:
    """What rate limits count ``address`` as.

    An IPv4 address is itself. An IPv6 client usually holds a whole /64 and can use a new
    address in it for every request, so the /64 is one bucket. No address is ``unknown``.
    """
    if address is None:
        return UNKNOWN
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def client_bucket() -> str:
    """This request's client, as rate limits count it (see ``rate_limit_bucket``)."""
    return rate_limit_bucket(client_address())
