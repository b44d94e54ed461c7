"""The enrollment portal (`/enroll`): a user signs in at the organisation's identity provider, then downloads
the enrollment profile for their own device.

State lives in two signed cookies (HMAC-SHA256 with a key derived from the master key, so every server process
shares it): the pending OpenID Connect sign-in (state, nonce, PKCE verifier; 10 minutes) and the portal session
(15 minutes). Both are HttpOnly, Secure, SameSite=Lax. POSTs carry a CSRF token bound to the session.

Setup Assistant's modern authentication opens `/enroll/ade` in a web view with the device's signed MachineInfo
(apple-protocols.md §7.6). The verified serial goes into a signed cookie, then into the session at sign-in, so
the profile the session gets is bound to that device and that user, and to no other device.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from muster.app import Container
from muster.domain.enrollment_attempts import Screen, platform_from_user_agent
from muster.domain.errors import DomainError, NotAllowed, PreconditionMissing
from muster.domain.sign_in import SignedInUser, TotpEnrollmentRequired, TotpRequired
from muster.domain.terms import TermsNotAccepted
from muster.protocols.errors import ParseError
from muster.services.ade_enrollment import WEB_ENROLL_PATH, SoftwareUpdateRequired, WebEnrollmentDevice
from muster.services.device_auth import DeviceRequestRejected
from muster.services.enrollment_profiles import MOBILECONFIG_TYPE
from muster.services.oidc_sign_in import OidcProviderError, PendingSignIn, SignInRefused
from muster.store.tables import DEFAULT_ORG_ID
from muster.web.portal_pages import (
    SECURITY_HEADERS,
    category_forms,
    declined_body,
    enroll_body,
    local_form,
    page,
    refusal_body,
    sign_in_body,
    terms_body,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/enroll", include_in_schema=False)

SESSION_COOKIE = "muster_portal_session"
PENDING_COOKIE = "muster_portal_oidc"
LOGIN_COOKIE = "muster_portal_login"  # binds the local sign-in form to this browser (login CSRF)
ADE_COOKIE = "muster_portal_ade"  # the ADE device whose Setup Assistant opened the portal
DEVICE_INFO_HEADER = "x-apple-aspen-deviceinfo"
MAX_DEVICE_INFO_LENGTH = 16 * 1024  # base64 of a signed MachineInfo is about 4 KB
LOGIN_SECONDS = 60 * 60
SESSION_SECONDS = 15 * 60
PENDING_SECONDS = 10 * 60
MAX_COOKIE_LENGTH = 4096
MAX_FORM_BYTES = 4096


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (an attacker's cookie or form field)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest())


def seal(key: bytes, purpose: str, payload: dict[str, Any], lifetime: int) -> str:
    body = _b64(json.dumps(payload | {"exp": int(time.time()) + lifetime}, separators=(",", ":")).encode())
    return f"{body}.{_mac(key, purpose, body)}"


def unseal(key: bytes, purpose: str, value: str | None) -> dict[str, Any] | None:
    """The payload of a cookie we sealed for `purpose`, or None if absent, forged, garbled or expired."""
    if not value or len(value) > MAX_COOKIE_LENGTH or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not _same(mac, _mac(key, purpose, body)):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
        return None
    return payload


def _set_cookie(response: Response, name: str, value: str, *, path: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="lax")


def _session(request: Request) -> dict[str, Any] | None:
    session = unseal(_container(request).portal_key, SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))
    return session if session is not None and isinstance(session.get("upn"), str) else None


def _csrf(request: Request, session: dict[str, Any]) -> str:
    return _mac(_container(request).portal_key, "csrf", str(session.get("sid")))


def _redirect_uri(request: Request) -> str:
    return f"{_container(request).endpoints.public_url}/enroll/oidc/callback"


def _page(request: Request, title: str, body: str, status: int = 200) -> Response:
    return page(title, body, organization=_container(request).settings.organization_name, status=status)


def _refusal(request: Request, message: str, status: int) -> Response:
    return _page(request, "You cannot enroll right now", refusal_body(message), status)


async def _sign_in_page(request: Request, *, status: int = 200, **form: Any) -> Response:
    """The sign-in choices; the local form's CSRF token is bound to a login cookie (reused while valid)."""
    container = _container(request)
    cookie = request.cookies.get(LOGIN_COOKIE)
    login = unseal(container.portal_key, LOGIN_COOKIE, cookie)
    if login is None:
        login = {"n": secrets.token_urlsafe(16)}
        cookie = seal(container.portal_key, LOGIN_COOKIE, login, LOGIN_SECONDS)
    configured = await container.oidc_sign_in.configured(DEFAULT_ORG_ID)
    body = sign_in_body(
        identity_provider=configured,
        local_form=local_form(csrf=_mac(container.portal_key, "login", login["n"]), **form),
    )
    response = _page(request, "Enroll your device", body, status)
    _set_cookie(response, LOGIN_COOKIE, str(cookie), path="/enroll", max_age=LOGIN_SECONDS)
    return response


@router.get("")
async def portal_home(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return await _sign_in_page(request)
    try:
        pending = await _container(request).enrollment_portal.pending_terms(DEFAULT_ORG_ID, session["upn"])
    except SignInRefused as refused:
        return _refusal(request, refused.message, 403)
    attempts = _container(request).enrollment_attempts
    if pending:  # TC-01: the terms come before the enrollment profile
        await attempts.reached(DEFAULT_ORG_ID, session["sid"], Screen.TERMS_OF_USE)
        terms = pending[0]
        body = terms_body(
            title=terms.title or "",
            summary=terms.acceptance_statement or "",
            text=terms.body_text or "",
            terms_id=terms.id,
            version=terms.version,
            csrf=_csrf(request, session),
            remaining=len(pending),
        )
        return _page(request, "Terms and conditions", body)
    choice = await _category_choice(request, session)
    await attempts.reached(DEFAULT_ORG_ID, session["sid"], Screen.DEVICE_CATEGORY if choice else Screen.SET_UP_ACCESS)
    body = choice + enroll_body(
        display_name=str(session.get("name") or session["upn"]),
        user_principal_name=session["upn"],
        multifactor="mfa" in session.get("amr", []),
        csrf=_csrf(request, session),
        setup_assistant=_ade_device(session) is not None,
    )
    return _page(request, "Enroll your device", body)


async def _category_choice(request: Request, session: dict[str, Any]) -> str:
    """CAT-09, CAT-10: the user's devices still without a category, to choose one for each."""
    devices, offered = await _container(request).device_categories.to_choose(DEFAULT_ORG_ID, session["upn"])
    return category_forms(
        devices=[(d.id, _device_label(d.device_name, d.model_name, d.serial_number)) for d in devices],
        categories=[(c.id, c.display_name) for c in offered],
        csrf=_csrf(request, session),
    )


def _device_label(name: str | None, model: str | None, serial: str | None) -> str:
    label = name or model or "your device"
    return f"{label} ({serial})" if serial else label


@router.post("/category")
async def choose_category(request: Request) -> Response:
    """Done on the category choice: the device must be the signed-in user's own."""
    checked = await _checked_form(request)
    if checked is None:
        return _refusal(request, "Your session has expired. Sign in again.", 403)
    session, fields = checked
    try:
        await _container(request).device_categories.choose(
            DEFAULT_ORG_ID, fields.get("device", "")[:64], fields.get("category", "")[:64], by_user=session["upn"]
        )
    except DomainError as error:
        return _refusal(request, error.message, 400)
    return RedirectResponse("/enroll", status_code=303, headers=SECURITY_HEADERS)


@router.get(WEB_ENROLL_PATH.removeprefix("/enroll"))
async def setup_assistant_sign_in(request: Request) -> Response:
    """`configuration_web_url`: Setup Assistant's web view, with the device's signed MachineInfo in a header."""
    container = _container(request)
    encoded = request.headers.get(DEVICE_INFO_HEADER, "")
    if not encoded or len(encoded) > MAX_DEVICE_INFO_LENGTH:
        return _refusal(request, "Open this page from Setup Assistant on the device you are setting up.", 400)
    try:
        device = await container.ade_enrollment.begin_web_enrollment(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ParseError):
        return _refusal(request, "The device information this page received is not usable.", 400)
    except DeviceRequestRejected as rejected:
        return _refusal(request, rejected.reason, rejected.status)
    except SoftwareUpdateRequired as required:
        return Response(required.body, status_code=403, media_type="application/json", headers=SECURITY_HEADERS)
    response = await _sign_in_page(request)
    response.delete_cookie(SESSION_COOKIE, path="/enroll", secure=True, httponly=True, samesite="lax")
    state = {"org": device.org_id, "serial": device.serial_number}
    sealed = seal(container.portal_key, ADE_COOKIE, state, PENDING_SECONDS)
    _set_cookie(response, ADE_COOKIE, sealed, path="/enroll", max_age=PENDING_SECONDS)
    return response


@router.get("/oidc/start")
async def start_oidc_sign_in(request: Request, stepUp: bool = False) -> Response:
    container = _container(request)
    try:
        url, pending = await container.oidc_sign_in.begin(
            DEFAULT_ORG_ID, redirect_uri=_redirect_uri(request), step_up=stepUp
        )
    except PreconditionMissing as error:
        return _refusal(request, error.message, 412)
    except OidcProviderError as error:
        log.warning("identity provider unavailable: %s", error)
        return _refusal(request, "The identity provider cannot be reached right now. Try again later.", 502)
    response = RedirectResponse(url, status_code=302, headers=SECURITY_HEADERS)
    sealed = seal(container.portal_key, PENDING_COOKIE, vars(pending), PENDING_SECONDS)
    _set_cookie(response, PENDING_COOKIE, sealed, path="/enroll/oidc", max_age=PENDING_SECONDS)
    return response


@router.get("/oidc/callback")
async def finish_oidc_sign_in(request: Request) -> Response:
    container = _container(request)
    query = request.query_params
    pending = _pending(container.portal_key, request.cookies.get(PENDING_COOKIE))
    if pending is None or not _same(query.get("state", ""), pending.state):
        return _done(_refusal(request, "This sign-in has expired or was already used. Start again.", 400))
    if "error" in query:
        error = query["error"][:64]
        return _done(_refusal(request, f"The identity provider did not sign you in ({error}).", 403))
    code = query.get("code", "")
    if not code or len(code) > 2048:
        return _done(_refusal(request, "The identity provider's answer has no authorization code.", 400))
    try:
        user = await container.oidc_sign_in.complete(
            DEFAULT_ORG_ID, redirect_uri=_redirect_uri(request), code=code, pending=pending
        )
    except SignInRefused as refused:
        if refused.retry_with_mfa:  # ask the provider once more, for a fresh multifactor sign-in
            return _done(RedirectResponse("/enroll/oidc/start?stepUp=true", 303, headers=SECURITY_HEADERS))
        return _done(_refusal(request, refused.message, 403))
    except PreconditionMissing as missing:
        return _done(_refusal(request, missing.message, 412))
    except OidcProviderError as error:
        log.warning("identity provider sign-in failed: %s", error)
        return _done(_refusal(request, "The identity provider could not complete the sign-in. Try again.", 502))
    return _done(await _signed_in(request, user))


def _pending(key: bytes, cookie: str | None) -> PendingSignIn | None:
    payload = unseal(key, PENDING_COOKIE, cookie)
    if payload is None:
        return None
    try:
        return PendingSignIn(
            state=str(payload["state"]),
            nonce=str(payload["nonce"]),
            code_verifier=str(payload["code_verifier"]),
            step_up=bool(payload["step_up"]),
        )
    except KeyError:
        return None


def _done(response: Response) -> Response:
    """A pending sign-in is good for one callback, whatever its outcome."""
    response.delete_cookie(PENDING_COOKIE, path="/enroll/oidc", secure=True, httponly=True, samesite="lax")
    return response


async def _signed_in(request: Request, user: SignedInUser) -> Response:
    """The session; a sign-in that started in Setup Assistant keeps the device it started for. Any other
    sign-in starts an enrollment attempt (E27), for the platform the browser runs on."""
    container = _container(request)
    response = RedirectResponse("/enroll", status_code=303, headers=SECURITY_HEADERS)
    session: dict[str, Any] = {
        "sid": secrets.token_urlsafe(16),
        "uid": user.user_id,
        "upn": user.user_principal_name,
        "name": user.display_name,
        "amr": list(user.amr),
    }
    device = unseal(container.portal_key, ADE_COOKIE, request.cookies.get(ADE_COOKIE))
    if device is not None:
        session["ade"] = {"org": device.get("org"), "serial": device.get("serial")}
        response.delete_cookie(ADE_COOKIE, path="/enroll", secure=True, httponly=True, samesite="lax")
    else:
        platform = platform_from_user_agent(request.headers.get("user-agent", "")[:512])
        await container.enrollment_attempts.start(DEFAULT_ORG_ID, session["sid"], session["upn"], platform)
    sealed = seal(container.portal_key, SESSION_COOKIE, session, SESSION_SECONDS)
    _set_cookie(response, SESSION_COOKIE, sealed, path="/enroll", max_age=SESSION_SECONDS)
    return response


def _ade_device(session: dict[str, Any]) -> WebEnrollmentDevice | None:
    device = session.get("ade")
    if not isinstance(device, dict):
        return None
    org_id, serial = device.get("org"), device.get("serial")
    if not isinstance(org_id, str) or not isinstance(serial, str):
        return None
    return WebEnrollmentDevice(org_id=org_id, serial_number=serial)


async def _form(request: Request, expected_csrf: str) -> dict[str, str] | None:
    """The fields of a small form POST whose CSRF token is `expected_csrf`, or None."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        return None
    form = await request.form(max_files=0, max_fields=8)
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    return fields if _same(fields.get("csrf", ""), expected_csrf) else None


async def _checked_form(request: Request) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The session and the fields of a POST whose CSRF token matches the session, or None."""
    session = _session(request)
    fields = None if session is None else await _form(request, _csrf(request, session))
    if session is None or fields is None:
        return None
    return session, fields


@router.post("/local")
async def local_sign_in(request: Request) -> Response:
    container = _container(request)
    login = unseal(container.portal_key, LOGIN_COOKIE, request.cookies.get(LOGIN_COOKIE))
    fields = await _form(request, _mac(container.portal_key, "login", login["n"])) if login else None
    if fields is None:
        return await _sign_in_page(request, status=403, message="This page expired. Sign in again.")
    upn = fields.get("username", "")[:320]
    try:
        user = await container.local_accounts.sign_in(
            org_id=DEFAULT_ORG_ID,
            user_principal_name=upn,
            password=fields.get("password", ""),
            otp=fields.get("otp") or None,
        )
        user = await container.enrollment_portal.admit_local(DEFAULT_ORG_ID, user)
    except TotpEnrollmentRequired as setup:
        return await _sign_in_page(
            request, user_principal_name=upn, ask_code=True, message=setup.message, otpauth_uri=setup.otpauth_uri
        )
    except TotpRequired as required:
        return await _sign_in_page(request, user_principal_name=upn, ask_code=True, message=required.message)
    except SignInRefused as refused:
        return _refusal(request, refused.message, 403)
    except NotAllowed as refused:
        return await _sign_in_page(request, status=403, user_principal_name=upn, message=refused.message)
    return await _signed_in(request, user)


@router.post("/terms")
async def answer_terms(request: Request) -> Response:
    """Accept or Decline on the terms page (TC-03); a decline is recorded (TC-10) and the user may come back."""
    checked = await _checked_form(request)
    if checked is None:
        return _refusal(request, "Your session has expired. Sign in again.", 403)
    session, fields = checked
    answer, version = fields.get("answer"), fields.get("version", "")
    if answer not in ("accept", "decline") or not version.isdigit() or len(version) > 9:
        return _refusal(request, "This answer is not one the terms page sends.", 400)
    try:
        await _container(request).enrollment_portal.answer_terms(
            DEFAULT_ORG_ID,
            session["upn"],
            terms_id=fields.get("terms", "")[:64],
            version=int(version),
            accept=answer == "accept",
        )
    except SignInRefused as refused:
        return _refusal(request, refused.message, 403)
    except DomainError as error:  # terms removed or changed since the page was shown
        return _refusal(request, f"{error.message} Reload the page to see the terms now in force.", 409)
    if answer == "decline":
        await _container(request).enrollment_attempts.declined(DEFAULT_ORG_ID, session["sid"])
        return _page(request, "Terms and conditions declined", declined_body())
    return RedirectResponse("/enroll", status_code=303, headers=SECURITY_HEADERS)


@router.post("/profile")
async def download_profile(request: Request) -> Response:
    checked = await _checked_form(request)
    if checked is None:
        return _refusal(request, "Your session has expired. Sign in again.", 403)
    session, _ = checked
    container = _container(request)
    device = _ade_device(session)
    try:
        if device is None:
            profile, request_id = await container.enrollment_portal.download_profile(DEFAULT_ORG_ID, session["upn"])
            await container.enrollment_attempts.reached(
                DEFAULT_ORG_ID, session["sid"], Screen.PROFILE_LAUNCH, enrollment_request_id=request_id
            )
        else:
            upn = await container.enrollment_portal.ready_to_enroll(device.org_id, session["upn"])
            profile = await container.ade_enrollment.profile_for_user(device, user_principal_name=upn)
    except (SignInRefused, TermsNotAccepted) as refused:
        return _refusal(request, refused.message, 403)
    except PreconditionMissing as missing:
        return _refusal(request, missing.message, 412)
    except DeviceRequestRejected as rejected:
        return _refusal(request, rejected.reason, rejected.status)
    return Response(
        profile,
        media_type=MOBILECONFIG_TYPE,
        headers={"Content-Disposition": 'attachment; filename="enroll.mobileconfig"', "Cache-Control": "no-store"},
    )


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    if await _checked_form(request) is None:
        return _refusal(request, "Your session has expired. Sign in again.", 403)
    response = RedirectResponse("/enroll", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/enroll", secure=True, httponly=True, samesite="lax")
    return response
