"""The ``send_email`` task: validate, build a real RFC 5322 message, send it over SMTP or into the outbox.

A bad address or message fails at once; a server that says "try later" (4xx, a dropped or refused
connection, a timeout) raises :class:`TransientEmailError`, which the task retries with backoff; a
permanent refusal (5xx) fails at once as :class:`EmailRejected`.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from config.errors import TaskError
from config.settings import load_settings
from tasks import task
from tasks.mail import SmtpConfig, deliver_smtp, write_outbox

__all__ = [
    "DEFAULT_SENDER",
    "EmailError",
    "EmailRejected",
    "InvalidAddress",
    "InvalidMessage",
    "TransientEmailError",
    "build_message",
    "classify_smtp_error",
    "parse_address",
    "send_email",
]

log = logging.getLogger(__name__)

DEFAULT_SENDER = "taskrail <noreply@taskrail.localhost>"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class EmailError(TaskError):
    """Raised when an email could not be sent."""


class InvalidAddress(EmailError):
    """Raised when a recipient or sender is not a usable email address; never retried."""


class InvalidMessage(EmailError):
    """Raised when the subject or body cannot make a valid message; never retried."""


class TransientEmailError(EmailError):
    """Raised when the mail server said "try again later" or could not be reached; retried with backoff."""


class EmailRejected(EmailError):
    """Raised when the mail server refused the message for good (a 5xx reply); never retried."""


def parse_address(text: object, role: str = "recipient") -> Address:
    """Parse ``"user@example.com"`` or ``"Name <user@example.com>"`` into one checked address.

    The domain comes back in ASCII (IDNA). Quoted local parts and address literals are refused.

    Raises:
        InvalidAddress: anything else, saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidAddress(f"{role} must be an email address string, got {type(text).__name__}")
    if not text.strip() or any(ch in text for ch in "\r\n\0"):
        raise InvalidAddress(f"{role} {text!r} is not an email address like user@example.com")
    try:
        header = policy.default.header_factory("to", text)
        addresses = header.addresses
    except Exception as exc:  # the header parser raises odd errors (IndexError) on some garbage
        raise InvalidAddress(f"{role} {text!r} is not an email address like user@example.com") from exc
    if len(addresses) != 1:
        raise InvalidAddress(f"{role} {text!r} must be exactly one address, got {len(addresses)}")
    if header.defects:
        reason = str(header.defects[0])
        raise InvalidAddress(f"{role} {text!r} is not an email address like user@example.com ({reason})")
    address: Address = addresses[0]
    local, domain = address.username, _ascii_domain(address.domain, text, role)
    if len(local) > 64 or not LOCAL_PART.fullmatch(local):
        raise InvalidAddress(f"{role} {text!r}: the part before '@' must be 1-64 plain characters without spaces")
    return Address(display_name=address.display_name, username=local, domain=domain)


def _ascii_domain(domain: str, text: str, role: str) -> str:
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise InvalidAddress(f"{role} {text!r}: the domain {domain!r} is not a valid host name") from exc
    labels = ascii_domain.split(".")
    if (
        len(ascii_domain) > 253
        or len(labels) < 2
        or not all(LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidAddress(f"{role} {text!r}: the domain {domain!r} must be a host name like example.com")
    return ascii_domain


def build_message(
    sender: Address, recipient: Address, subject: object, html: object = None, text: object = None
) -> EmailMessage:
    """An RFC 5322 message: text, html, or multipart/alternative with both.

    Raises:
        InvalidMessage: no body, a body or subject that is not text, or a line break in the subject.
    """
    if not isinstance(subject, str) or any(ch in subject for ch in "\r\n"):
        raise InvalidMessage(f"subject must be one line of text, got {subject!r:.80}")
    for name, value in (("html", html), ("text", text)):
        if value is not None and not isinstance(value, str):
            raise InvalidMessage(f"{name} body must be a string or None, got {type(value).__name__}")
    if html is None and text is None:
        raise InvalidMessage("an email needs a body: pass html=..., text=... or both")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.domain)  # a domain given: make_msgid skips a DNS lookup
    if isinstance(text, str):
        message.set_content(text)
        if isinstance(html, str):
            message.add_alternative(html, subtype="html")
    elif isinstance(html, str):
        message.set_content(html, subtype="html")
    return message


def classify_smtp_error(exc: BaseException, server: str) -> EmailError:
    """Say whether a delivery error is worth retrying: 4xx and network trouble are, 5xx and TLS mistakes are not."""
    code: int | None = None
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = min((reply[0] for reply in exc.recipients.values()), default=None)
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
    if code is not None:
        detail = f"SMTP server {server} replied {code}: {_reply_text(exc)}"
        return TransientEmailError(detail) if 400 <= code < 500 else EmailRejected(detail)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return EmailRejected(f"SMTP server {server}: TLS certificate not trusted ({exc.verify_message}); "
                             "fix the host name or add ?cafile=/path/ca.pem to SMTP_URL")  # fmt: skip
    if isinstance(exc, ssl.SSLError):
        return EmailRejected(f"SMTP server {server}: TLS failed ({exc.reason}); smtps:// needs an implicit-TLS "
                             "port such as 465, smtp:// a plain port such as 25 or 587")  # fmt: skip
    # SMTPException subclasses OSError, so the other SMTP errors (no AUTH, no SMTPUTF8) must come first.
    if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
        return EmailRejected(f"SMTP server {server}: {type(exc).__name__}: {exc}")
    return TransientEmailError(f"SMTP server {server} unreachable or hung up: {type(exc).__name__}: {exc}")


def _reply_text(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        raw = b"; ".join(reply[1] for reply in exc.recipients.values())
    else:
        raw = getattr(exc, "smtp_error", b"")
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


@task(queue="email", autoretry_for=(TransientEmailError,), max_retries=5, retry_backoff=2, retry_backoff_max=300)
def send_email(to: str, subject: str, html: str | None = None, text: str | None = None) -> dict[str, str | None]:
    """Send one email through ``SMTP_URL``, or write it to the outbox folder when no SMTP_URL is set.

    Returns:
        ``{"message_id", "to", "transport": "smtp" | "outbox", "server", "path"}``.

    Raises:
        InvalidAddress, InvalidMessage, EmailRejected: at once, never retried.
        TransientEmailError: retried with backoff by the task options.
    """
    recipient = parse_address(to)
    settings = load_settings()
    smtp = SmtpConfig.from_url(settings.smtp_url) if settings.smtp_url else None
    sender = parse_address(smtp.sender if smtp and smtp.sender else DEFAULT_SENDER, role="sender")
    message = build_message(sender, recipient, subject, html=html, text=text)
    outcome: dict[str, str | None] = {"message_id": message["Message-ID"], "to": recipient.addr_spec}
    if smtp is None:
        path = write_outbox(settings.outbox_dir, message)
        log.info("no SMTP_URL set: email to %s written to the outbox as %s", recipient.addr_spec, path)
        return {**outcome, "transport": "outbox", "server": None, "path": str(path)}
    try:
        deliver_smtp(smtp, message)
    except (smtplib.SMTPException, OSError) as exc:
        raise classify_smtp_error(exc, smtp.server) from exc
    log.info("email to %s sent through %s", recipient.addr_spec, smtp.server)
    return {**outcome, "transport": "smtp", "server": smtp.server, "path": None}
