"""The enrollment portal's HTML: small server-rendered pages, every dynamic value escaped, no scripts."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

# No scripts, no framing, forms post only back to us: the portal needs nothing else.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
    "button,.button{display:inline-block;padding:.6rem 1.2rem;border-radius:.4rem;border:0;background:#0b5cad;"
    "color:#fff;font-size:1rem;text-decoration:none;cursor:pointer}.secondary{background:#666}"
    ".refusal{border-left:.3rem solid #b3261e;padding:.5rem 1rem;background:#fdecea}"
    ".terms{white-space:pre-wrap;max-height:24rem;overflow:auto;border:1px solid #ccc;padding:.5rem}"
)


def page(title: str, body: str, *, organization: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · {escape(organization)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def sign_in_body(*, identity_provider: bool, local_form: str) -> str:
    provider = (
        '<p><a class="button" href="/enroll/oidc/start">Sign in with your organisation account</a></p>'
        "<h2>Or with a Muster account</h2>"
        if identity_provider
        else ""
    )
    return f"<p>Sign in with your work account to enroll your device.</p>{provider}{local_form}"


def local_form(
    *, csrf: str, user_principal_name: str = "", ask_code: bool = False, message: str = "", otpauth_uri: str = ""
) -> str:
    """The local-account form; after a right password it comes back asking for the authenticator code."""
    notice = f'<p class="refusal">{escape(message)}</p>' if message else ""
    setup = (
        "<p>Add this account to your authenticator app (enter the key by hand if you cannot scan it):</p>"
        f"<p><code>{escape(otpauth_uri)}</code></p>"
        if otpauth_uri
        else ""
    )
    code = (
        '<p><label>Code from your authenticator app<br><input name="otp" inputmode="numeric" '
        'autocomplete="one-time-code" maxlength="6" required></label></p>'
        if ask_code
        else ""
    )
    return (
        f'{notice}{setup}<form method="post" action="/enroll/local">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<p><label>User name<br><input name="username" autocomplete="username" maxlength="320" required '
        f'value="{escape(user_principal_name)}"></label></p>'
        '<p><label>Password<br><input name="password" type="password" autocomplete="current-password" '
        f'maxlength="256" required></label></p>{code}<button type="submit">Sign in</button></form>'
    )


def enroll_body(
    *, display_name: str, user_principal_name: str, multifactor: bool, csrf: str, setup_assistant: bool = False
) -> str:
    """The signed-in page; in Setup Assistant's web view the button hands the device its enrollment profile."""
    factors = "with multifactor authentication" if multifactor else "with one factor"
    token = f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
    if setup_assistant:
        action = "Continue setting up this device"
        advice = "<p>Setup Assistant installs the management profile and goes on with the setup.</p>"
    else:
        action = "Enroll this iPhone/iPad/Mac"
        advice = (
            "<p>Open the downloaded profile, then install it in Settings (iPhone, iPad) or System Settings (Mac). "
            "Install it soon: each profile works once, and only for a short time.</p>"
        )
    return (
        f"<p>Signed in as <strong>{escape(display_name)}</strong> ({escape(user_principal_name)}), {factors}.</p>"
        '<form method="post" action="/enroll/profile">'
        f'{token}<button type="submit">{action}</button></form>{advice}'
        f'<form method="post" action="/enroll/sign-out">{token}'
        '<button class="secondary" type="submit">Sign out</button></form>'
    )


def terms_body(*, title: str, summary: str, text: str, terms_id: str, version: int, csrf: str, remaining: int) -> str:
    """One policy to accept (seed-catalog-A TC-03): its title in bold, the summary under it, "Read terms" to
    expand the full text (a native disclosure: keyboard-operable, no script), then Decline and Accept. The
    policy's name and description are for admins and never shown here. `remaining` counts this one."""
    progress = f"<p>You have {remaining} sets of terms to accept; here is the first.</p>" if remaining > 1 else ""
    fields = (
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="terms" value="{escape(terms_id)}">'
        f'<input type="hidden" name="version" value="{version}">'
    )
    return (
        "<p>Your organisation asks you to accept these terms before you enroll a device.</p>"
        f'{progress}<section aria-labelledby="terms-title"><h2 id="terms-title"><strong>{escape(title)}</strong></h2>'
        f"<p>{escape(summary)}</p>"
        f'<details><summary>Read terms</summary><div class="terms">{escape(text)}</div></details></section>'
        f'<form method="post" action="/enroll/terms">{fields}'
        '<button class="secondary" type="submit" name="answer" value="decline">Decline</button> '
        '<button type="submit" name="answer" value="accept">Accept</button></form>'
    )


def category_forms(*, devices: list[tuple[str, str]], categories: list[tuple[str, str]], csrf: str) -> str:
    """The device category choice (seed-catalog-A CAT-09..11): for each (device id, label) a labelled list of the
    (category id, name) choices and a Done button."""
    if not devices:
        return ""
    options = "".join(f'<option value="{escape(cid)}">{escape(name)}</option>' for cid, name in categories)
    forms = "".join(
        f'<form method="post" action="/enroll/category"><input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="device" value="{escape(device_id)}">'
        f'<p><label for="category-{i}">Category of {escape(label)}</label><br>'
        f'<select id="category-{i}" name="category" required>{options}</select> '
        '<button type="submit">Done</button></p></form>'
        for i, (device_id, label) in enumerate(devices)
    )
    return (
        '<section aria-labelledby="category-title"><h2 id="category-title">Choose a device category</h2>'
        f"<p>Your organisation sorts devices by category: choose the one that fits each device.</p>{forms}</section>"
    )


def declined_body() -> str:
    """After a decline (TC-10): the enrollment stays incomplete until the user accepts."""
    return (
        "<p>You declined the terms and conditions, so this device cannot be enrolled. "
        "Your answer was recorded. You can read them again and accept them at any time.</p>"
        '<p><a class="button" href="/enroll">Back to the terms</a></p>'
    )


def refusal_body(message: str) -> str:
    return (
        f'<p class="refusal">{escape(message)}</p>'
        '<p><a class="button secondary" href="/enroll">Back to the enrollment portal</a></p>'
    )
