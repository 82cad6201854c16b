"""How an email leaves: the SMTP_URL, an SMTP session (STARTTLS or implicit TLS), or an ``.eml`` outbox file.

These helpers raise the standard library's errors (``smtplib.SMTPException``, ``OSError``) and
``ConfigError``; ``tasks.emails`` turns them into taskrail's retry-or-fail errors.
"""

from __future__ import annotations

import ipaddress
import secrets
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from config.errors import ConfigError
from tasks.files import write_atomic

__all__ = ["SMTP_URL_FORMAT", "SmtpConfig", "deliver_smtp", "write_outbox"]

SMTP_URL_FORMAT = (
    "smtp://user:password@host:587 (STARTTLS when the server offers it) or smtps://user:password@host:465 "
    "(implicit TLS), optionally with ?from=sender@example.com&timeout=30&cafile=/path/ca.pem"
)
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
QUERY_KEYS = ("from", "timeout", "cafile")


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send mail, parsed from ``SMTP_URL``; ``repr`` never shows the password."""

    host: str
    port: int
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str | None = None
    timeout_s: float = 30.0
    cafile: str | None = None

    def __repr__(self) -> str:
        return f"SmtpConfig({self.server!r}, tls={'implicit' if self.implicit_tls else 'starttls-if-offered'})"

    @property
    def server(self) -> str:
        """``host:port``, safe to log and return."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse ``SMTP_URL``.

        Raises:
            ConfigError: a scheme, port or query option that is not understood, naming the fix.
        """
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError(f"SMTP_URL: scheme {parts.scheme!r} is not supported; use {SMTP_URL_FORMAT}")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise ConfigError(f"SMTP_URL: the port is not a number from 1 to 65535; use {SMTP_URL_FORMAT}") from exc
        if not parts.hostname:
            raise ConfigError(f"SMTP_URL: no host given; use {SMTP_URL_FORMAT}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(QUERY_KEYS))
        if unknown:
            raise ConfigError(f"SMTP_URL: unknown option {unknown[0]!r}; known options: {', '.join(QUERY_KEYS)}")
        username = unquote(parts.username) if parts.username else None
        sender = query.get("from", [""])[-1] or (username if username and "@" in username else None)
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=parts.scheme == "smtps",
            username=username,
            password=unquote(parts.password) if parts.password is not None else None,
            sender=sender,
            timeout_s=_timeout(query.get("timeout", ["30"])[-1]),
            cafile=query.get("cafile", [""])[-1] or None,
        )

    def is_loopback(self) -> bool:
        """True when the server is this machine, where a password in clear text crosses no network."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigError(f"SMTP_URL: timeout must be seconds between 0 and 3600, got {text!r}")
    return value


def deliver_smtp(config: SmtpConfig, message: EmailMessage) -> None:
    """Hand ``message`` to the SMTP server: TLS (implicit, or STARTTLS when offered), login, send, quit.

    Raises:
        smtplib.SMTPException: the server refused (``smtp_code`` tells 4xx from 5xx) or hung up.
        OSError: the connection failed (refused, reset, timed out, TLS failure).
        ConfigError: credentials would go over an unencrypted connection to another machine.
    """
    context = ssl.create_default_context(cafile=config.cafile)
    helo = socket.gethostname() or "localhost"  # not getfqdn(): that can block on DNS for seconds
    client: smtplib.SMTP
    if config.implicit_tls:
        client = smtplib.SMTP_SSL(config.host, config.port, local_hostname=helo, timeout=config.timeout_s,
                                  context=context)  # fmt: skip
    else:
        client = smtplib.SMTP(config.host, config.port, local_hostname=helo, timeout=config.timeout_s)
    with client:
        client.ehlo()
        encrypted = config.implicit_tls
        if not encrypted and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
            encrypted = True
        if config.username:
            if not encrypted and not config.is_loopback():
                raise ConfigError(
                    f"SMTP server {config.server} offers no STARTTLS, so the password would travel in clear text; "
                    "use smtps:// or a server that supports STARTTLS"
                )
            client.login(config.username, config.password or "")
        client.send_message(message)


def write_outbox(directory: Path, message: EmailMessage) -> Path:
    """Write ``message`` as an RFC 5322 ``.eml`` file (CRLF line ends) in ``directory``; returns its path.

    The file appears complete or not at all: it is written under a temporary name, synced, then renamed.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{stamp}-{secrets.token_hex(4)}.eml"
    return write_atomic(path, message.as_bytes(policy=policy.SMTP))
