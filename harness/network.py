"""Can a download reach its host? Asked before importing torchvision to download, so an offline
session learns that a dataset or checkpoint is missing in milliseconds, without importing torch.

Only a definite "no" is acted on: no host name resolves and no proxy is configured (a proxy
resolves names itself). Anything else goes on to torchvision's real download.
"""
from __future__ import annotations

import functools
import os
import socket

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


@functools.cache
def resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def unreachable(hosts: tuple[str, ...]) -> str | None:
    """Why a download from these hosts cannot work, or None when it may."""
    if not hosts or any(os.environ.get(v) for v in PROXY_VARIABLES):
        return None
    if any(resolves(h) for h in hosts):
        return None
    return f"no network: cannot resolve {', '.join(hosts)}"
