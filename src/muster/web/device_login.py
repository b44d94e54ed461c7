"""The `/device` page of the device code grant (RFC 8628 §3.3): the user types the code `muster login` shows,
signs in with their local account, and approves (or denies) the CLI's request.

Plain server-rendered HTML. Cross-site request forgery is refused with a double-submit token (a random value in
a SameSite=Strict cookie that the form must repeat), and the page may not be framed.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from muster.domain.errors import NotAllowed
from muster.domain.sign_in import OAuthError, TotpEnrollmentRequired, TotpRequired
from muster.services.device_codes import display_user_code, normalize_user_code
from muster.web.admin.deps import container
from muster.web.oauth import DEVICE_PAGE_PATH, read_form

router = APIRouter(include_in_schema=False)

CSRF_COOKIE = "muster_device_csrf"
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;font-size:1rem}"
    "button{margin-top:1.2rem;padding:.5rem 1rem;font-size:1rem}.error{color:#a00}code{word-break:break-all}"
)


def _page(body: str, *, status: int = 200, csrf: str | None = None) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to the Muster CLI</title>'
        f'<meta name="viewport" content="width=device-width"><style>{_STYLE}</style></head>'
        f"<body><h1>Sign in to the Muster CLI</h1>{body}</body></html>"
    )
    response = HTMLResponse(html, status_code=status, headers=_HEADERS)
    if csrf is not None:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, secure=True, samesite="strict", path=DEVICE_PAGE_PATH)
    return response


def _form(csrf: str, *, user_code: str = "", upn: str = "", message: str = "", ask_otp: bool = False) -> str:
    otp = (
        '<label>Code from your authenticator app<input name="otp" inputmode="numeric" autocomplete="one-time-code"'
        ' maxlength="6" autofocus></label>'
        if ask_otp
        else ""
    )
    error = f'<p class="error">{escape(message)}</p>' if message else ""
    return (
        f"{error}<p>Enter the code shown by <code>muster login</code>, then sign in to approve it.</p>"
        f'<form method="post" action="{DEVICE_PAGE_PATH}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<label>Code<input name="user_code" value="{escape(user_code)}" autocomplete="off" maxlength="16"'
        " required></label>"
        f'<label>User name<input name="username" value="{escape(upn)}" autocomplete="username" maxlength="320">'
        "</label>"
        '<label>Password<input name="password" type="password" autocomplete="current-password" maxlength="256">'
        f"</label>{otp}"
        '<button name="action" value="approve">Sign in and approve</button> '
        '<button name="action" value="deny" formnovalidate>Deny</button></form>'
    )


@router.get(DEVICE_PAGE_PATH)
async def device_page(request: Request, user_code: str = "") -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    code = normalize_user_code(user_code)
    return _page(_form(csrf, user_code=display_user_code(code) if code else ""), csrf=csrf)


@router.post(DEVICE_PAGE_PATH)
async def device_submit(request: Request) -> HTMLResponse:
    services = container(request)
    try:
        form = await read_form(request)
    except OAuthError as error:
        return _page(f'<p class="error">{escape(error.description)}</p>', status=400)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), form.get("csrf", "").encode()):
        return _page('<p class="error">This form expired. <a href="/device">Start again</a>.</p>', status=403)
    user_code, upn = form.get("user_code", ""), form.get("username", "")
    try:
        if form.get("action") == "deny":
            await services.device_codes.deny(user_code)
            return _page("<p>The request was denied. You can close this window.</p>")
        await services.device_codes.pending(user_code)  # a wrong code costs no password attempt
        user = await services.local_accounts.sign_in(
            org_id=services.device_codes.org_id,
            user_principal_name=upn,
            password=form.get("password", ""),
            otp=form.get("otp") or None,
        )
        await services.device_codes.approve(user_code, user)
    except TotpEnrollmentRequired as enroll:
        uri = escape(enroll.otpauth_uri)
        setup = (
            f"<p>{escape(enroll.message)}:</p><p><code>{uri}</code></p>"
            "<p>Add it to your authenticator app (most accept this link or its <code>secret</code> value), then"
            " enter your password again and a code from the app.</p>"
        )
        return _page(setup + _form(cookie, user_code=user_code, upn=upn, ask_otp=True), status=401)
    except TotpRequired as required:
        return _page(_form(cookie, user_code=user_code, upn=upn, message=required.message, ask_otp=True), status=401)
    except NotAllowed as refused:
        return _page(_form(cookie, user_code=user_code, upn=upn, message=refused.message), status=400)
    name = escape(user.display_name)
    return _page(f"<p>Signed in as {name}. Return to your terminal: <code>muster login</code> is done.</p>")
