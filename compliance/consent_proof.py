"""A consent record's proof in plain words, for the console: how the consent was given or
withdrawn, from which address, with which browser, the text the person saw, the message it
concerned. Keys this module does not know are listed as they are, so nothing in the proof is
hidden.
"""

import re
from typing import Any

from django.utils.html import format_html, format_html_join

HOW = {
    "form": "on a form",
    "console": "in the console, by a team member",
    "import": "in an import",
    "api": "through the API",
    "unsubscribe_link": "with the unsubscribe link in a message",
    "one_click": "with one-click unsubscribe in the mail program",
    "sms_reply": "by a reply to a text message",
    "push_subscribe": "by allowing notifications in the browser",
    "complaint": "by a spam complaint about a message",
    "esp_unsubscribe": "by unsubscribing at the email provider",
    "double_opt_in": "on a form confirmed by email",
    "gpc": "by the browser's Global Privacy Control signal",
    "consent_banner": "in the website's consent banner",
}

# (key, label) in the order they are shown; the rest follow under their own names.
LABELS = (
    ("form", "Form"),
    ("list", "List"),
    ("ip", "From address"),
    ("user_agent", "Browser"),
    ("origin", "Website"),
    ("push_service", "Push service"),
    ("text", "Text shown"),
    ("note", "Note"),
    ("body", "Reply"),
    ("from", "From number"),
    ("to", "To number"),
    ("message", "Message"),
    ("message_sid", "Provider's message id"),
    ("esp", "Email provider"),
    ("event", "Provider's event"),
    ("reason", "Reason"),
    ("at", "At"),
    ("confirmed_at", "Confirmed at"),
    ("confirmed_ip", "Confirmed from address"),
    ("confirmed_user_agent", "Confirmed with browser"),
    ("call", "Call"),
    ("recorded_by", "Recorded by"),
)

# Labels in a column, values beside them (the theme resets a <dl> to plain lines).
LIST_STYLE = "display: grid; grid-template-columns: max-content 1fr; gap: 0.25em 1.5em; margin-top: 0.4em"

BROWSERS = (  # the first match wins: Edge and Opera also say "Chrome", Chrome also says "Safari"
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[\d.]* .*Safari/")),
)
SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


def browser_summary(user_agent: str) -> str:
    """ "Firefox 131 on Windows" from a User-Agent header; the header itself when it names no
    browser or system we know."""
    if not user_agent:
        return "not recorded"
    browser = next((f"{name} {m.group(1)}" for name, pattern in BROWSERS if (m := pattern.search(user_agent))), None)
    system = next((name for name, pattern in SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"a browser on {system}" if system else user_agent)


def proof_lines(*, source: str, granted: bool, proof: Any) -> list[tuple[str, str]]:
    """The proof as (label, text) pairs, the first saying how it was given or withdrawn."""
    how = HOW.get(source, f"by “{source}”" if source else "by an unrecorded way")
    shown = set()
    if source in ("form", "double_opt_in") and isinstance(proof, dict) and proof.get("form"):
        how, shown = f"{how}: {_text(proof['form'])}", {"form"}
    lines = [("Given" if granted else "Withdrawn", how)]
    if not isinstance(proof, dict):
        return [*lines, ("Proof", str(proof))] if proof else lines
    for key, label in LABELS:
        if key not in shown and key in proof and proof[key] not in (None, ""):
            value = proof[key]
            text = browser_summary(str(value)) if key in ("user_agent", "confirmed_user_agent") else _text(value)
            if key == "message":
                text = f"#{text}"
            lines.append((label, text))
        shown.add(key)
    for key, value in sorted(proof.items()):
        if key not in shown and value not in (None, ""):
            lines.append((key.replace("_", " ").capitalize(), _text(value)))
    return lines


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_text(item)}" for key, item in value.items())
    return str(value)


def proof_html(*, source: str, granted: bool, proof: Any) -> str:
    """How it was given as a sentence, then the proof as a labelled list (each value escaped);
    the full User-Agent header is the browser's tooltip."""
    (verdict, how), *lines = proof_lines(source=source, granted=granted, proof=proof)
    agent = proof.get("user_agent") if isinstance(proof, dict) else None
    items = format_html_join(
        "",
        '<div class="consent-proof-line" style="display: contents">'
        '<dt class="font-semibold">{}</dt><dd{}>{}</dd></div>',
        (
            (label, format_html(' title="{}"', agent) if label == "Browser" and agent else "", text)
            for label, text in lines
        ),
    )
    return format_html(
        '<div class="consent-proof"><p><strong>{} {}</strong></p><dl style="{}">{}</dl></div>',
        verdict,
        how,
        LIST_STYLE,
        items,
    )
