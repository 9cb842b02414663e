"""The dashboard session in an HttpOnly cookie, so that a reload keeps the user signed in.

The cookie holds the server-side session's token (storage.sessions keeps its hash): every
page looks the record up, so signing out, disabling the user or changing their password
ends it at once, and a copied cookie stops working with it. Streamlit's script cannot set
a cookie (it talks over a WebSocket), so the HTTP routes of ``server.py`` do: after a
sign-in the page sends the browser to :data:`KEEP` with a one-time grant (never the token
in a URL), which sets the cookie and sends it back where it was; :data:`FORGET` clears
it at sign-out. Served by ``streamlit run app/dashboard/server.py`` (`make run`); the
script alone (``main.py``, as the page tests run it) keeps the session for its tab only.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from urllib.parse import quote

COOKIE = "vigil_session"
KEEP = "/_vigil/session"  # ?grant=...&next=/explore?run=3: sets the cookie
FORGET = "/_vigil/sign-out"  # ?next=/: clears it
GRANT_SECONDS = 60  # a grant not taken by then is void
COOKIE_DAYS = 30  # the browser keeps it; the session record decides whether it works

SERVED = False  # set by server.py: the routes exist in this process

_grants: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def grant(token: str) -> str:
    """A one-time, short-lived code that :data:`KEEP` exchanges for ``token``'s cookie."""
    code = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        for old in [c for c, (_, at) in _grants.items() if now - at > GRANT_SECONDS]:
            del _grants[old]
        _grants[code] = (token, now)
    return code


def take(code: str) -> str | None:
    """The token of a grant, once; None for an unknown, used or expired one."""
    with _lock:
        found = _grants.pop(code, None)
    if found is None or time.monotonic() - found[1] > GRANT_SECONDS:
        return None
    return found[0]


def local_path(target: str | None) -> str:
    """``target`` when it is a path on this server (``/explore?run=3``), else ``/``: the
    routes never send a browser elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _go(route: str, query: str) -> str:
    """A script that sends the browser to ``route`` with ``query``, and ``next``: the
    page it is on (path and query, as the browser has them)."""
    return ("<script>window.location.replace(" + json.dumps(f"{route}?{query}")
            + " + '&next=' + encodeURIComponent(window.location.pathname"
            " + window.location.search));</script>")


def keep_script(token: str) -> str:
    return _go(KEEP, f"grant={quote(grant(token))}")


def forget_script() -> str:
    return _go(FORGET, "")


# -- the HTTP routes (Starlette, served beside Streamlit by server.py) ---------------
def keep(request):
    """Exchange a grant for the session cookie, then go back to the page."""
    from starlette.responses import RedirectResponse

    token = take(request.query_params.get("grant", ""))
    response = RedirectResponse(local_path(request.query_params.get("next")), 303)
    response.headers["Cache-Control"] = "no-store"
    if token is not None:
        response.set_cookie(COOKIE, token, max_age=COOKIE_DAYS * 86400, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
    return response


def forget(request):
    """Clear the session cookie (the record ended already), then go to the page."""
    from starlette.responses import RedirectResponse

    response = RedirectResponse(local_path(request.query_params.get("next")), 303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(COOKIE, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
    return response
