"""Optional Bearer auth: one key per service; health, liveness and the web pages (``/ui/…``: files with no
data, whose scripts send the key the user types) stay public."""

from __future__ import annotations

import hmac

PUBLIC_PATHS = frozenset({"/health", "/livez"})


def is_authorized(api_key: str | None, path: str, authorization: str | None) -> bool:
    if not api_key or path in PUBLIC_PATHS or path == "/ui" or path.startswith("/ui/"):
        return True
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), api_key.encode())
