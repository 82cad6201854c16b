"""send_email against a real SMTP server (aiosmtpd, run by the test) and real ``rq worker`` processes."""

from __future__ import annotations

import email
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from config.errors import ConfigError
from tasks import TaskFailed
from tasks.emails import (
    DEFAULT_SENDER,
    EmailRejected,
    InvalidAddress,
    InvalidMessage,
    TransientEmailError,
    build_message,
    classify_smtp_error,
    parse_address,
    send_email,
)
from tasks.mail import SmtpConfig
from tests.conftest import Processes, wait_for
from tests.prereqs import require_command

EMAIL_ONLY = {"TASKRAIL_IMPORTS": "tasks.emails"}


class Mailbox:
    """An aiosmtpd handler that keeps what it is sent and can refuse the first commands on cue."""

    def __init__(self, rcpt_replies: tuple[str, ...] = (), data_replies: tuple[str, ...] = ()) -> None:
        self.rcpt_replies = list(rcpt_replies)
        self.data_replies = list(data_replies)
        self.data_commands = 0
        self.received: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message": email.message_from_bytes(envelope.content, policy=policy.default),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": session.authenticated,
        })  # fmt: skip
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., int]]:
    """Start real SMTP servers on free ports for this test (``start(handler, **aiosmtpd options)``)."""
    controllers: list[Controller] = []

    def start(handler: Mailbox, **options: Any) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and key, same folder) for 127.0.0.1."""
    require_command("openssl", "install it (apt-get install openssl) to make the TLS tests' certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True, timeout=60)  # fmt: skip
    return folder / "cert.pem"


def server_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_name("key.pem"))
    return context


@pytest.fixture
def inline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str | None], None]:
    """Point this process's settings at a private data dir and, when given, an SMTP_URL."""
    monkeypatch.setenv("TASKRAIL_DATA_DIR", str(tmp_path / "data"))

    def use(smtp_url: str | None) -> None:
        if smtp_url:
            monkeypatch.setenv("SMTP_URL", smtp_url)
        else:
            monkeypatch.delenv("SMTP_URL", raising=False)

    return use


# ---- pure helpers ---------------------------------------------------------------------------------


def test_parse_address_accepts_plain_and_named_addresses_and_idn_domains() -> None:
    assert parse_address("bob@example.com").addr_spec == "bob@example.com"
    named = parse_address("Bob Stone <bob.stone+news@mail.example.org>")
    assert (named.display_name, named.addr_spec) == ("Bob Stone", "bob.stone+news@mail.example.org")
    assert parse_address("ana@exämple.com").domain == "xn--exmple-cua.com"


@pytest.mark.parametrize(
    "bad",
    ["not-an-address", "a@b", "a@", "@example.com", "x@y.com, z@w.com", "a b@c.com", "a..b@c.com",
     "a@b.com\r\nBcc: evil@example.com", "", "  ", '"a b"@example.com', "a@[1.2.3.4]", "a@1.2.3.4",
     "a@-bad-.com", "a@exa_mple.com", "x" * 65 + "@example.com", 42, None],
)  # fmt: skip
def test_parse_address_refuses_what_is_not_one_plain_address(bad: object) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(bad)


def test_build_message_makes_multipart_alternative_with_both_bodies() -> None:
    msg = build_message(parse_address(DEFAULT_SENDER), parse_address("Bob <bob@example.com>"), "Hi",
                        html="<p>Hello <b>Bob</b></p>", text="Hello Bob")  # fmt: skip
    parsed = email.message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    assert (parsed["To"], parsed["Subject"]) == ("Bob <bob@example.com>", "Hi")
    assert parsed["Message-ID"].endswith("@taskrail.localhost>") and parsed["Date"]
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello Bob"  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hello <b>Bob</b></p>"  # type: ignore[union-attr]


def test_build_message_with_one_body_is_single_part_and_refuses_bad_input() -> None:
    sender, to = parse_address(DEFAULT_SENDER), parse_address("bob@example.com")
    assert build_message(sender, to, "Hi", html="<p>x</p>").get_content_type() == "text/html"
    assert build_message(sender, to, "Hi", text="x").get_content_type() == "text/plain"
    with pytest.raises(InvalidMessage, match="needs a body"):
        build_message(sender, to, "Hi")
    with pytest.raises(InvalidMessage, match="one line"):
        build_message(sender, to, "Hi\r\nBcc: evil@example.com", text="x")
    with pytest.raises(InvalidMessage, match="html body must be a string"):
        build_message(sender, to, "Hi", html=b"<p>x</p>")


def test_smtp_url_parsing() -> None:
    cfg = SmtpConfig.from_url("smtp://me%40example.com:p%40ss%20word@mail.example.com:587?timeout=5")
    assert (cfg.host, cfg.port, cfg.implicit_tls, cfg.timeout_s) == ("mail.example.com", 587, False, 5.0)
    assert (cfg.username, cfg.password, cfg.sender) == ("me@example.com", "p@ss word", "me@example.com")
    assert "p@ss" not in repr(cfg)
    secure = SmtpConfig.from_url("smtps://mail.example.com?from=shop@example.com")
    assert (secure.port, secure.implicit_tls, secure.sender, secure.username) == (465, True, "shop@example.com", None)
    assert SmtpConfig.from_url("smtp://127.0.0.1:2525").is_loopback() and not secure.is_loopback()
    for bad, why in [("http://x:25", "scheme"), ("smtp://x:99999", "port"), ("smtp://x?tls=1", "unknown option"),
                     ("smtp://x?timeout=0", "timeout"), ("smtp://:25", "no host")]:  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            SmtpConfig.from_url(bad)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (smtplib.SMTPDataError(451, b"try later"), TransientEmailError),
        (smtplib.SMTPRecipientsRefused({"a@b.com": (450, b"mailbox busy")}), TransientEmailError),
        (smtplib.SMTPRecipientsRefused({"a@b.com": (550, b"no such user")}), EmailRejected),
        (smtplib.SMTPSenderRefused(553, b"not yours", "x@y.com"), EmailRejected),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), EmailRejected),
        (smtplib.SMTPNotSupportedError("no AUTH"), EmailRejected),
        (smtplib.SMTPServerDisconnected("gone"), TransientEmailError),
        (ConnectionRefusedError(111, "refused"), TransientEmailError),
        (ConnectionResetError(104, "reset"), TransientEmailError),
        (TimeoutError("timed out"), TransientEmailError),
    ],
)
def test_classify_smtp_error_retries_4xx_and_network_trouble_only(error: Exception, kind: type) -> None:
    classified = classify_smtp_error(error, "mail:25")
    assert type(classified) is kind
    assert "mail:25" in str(classified)


def test_unreachable_server_is_a_transient_error(inline_env: Callable[[str | None], None]) -> None:
    inline_env(f"smtp://127.0.0.1:{free_port()}?timeout=5")  # nothing listens there
    with pytest.raises(TransientEmailError, match="ConnectionRefusedError"):
        send_email("bob@example.com", "Hi", text="x")


def test_outbox_inline_writes_a_complete_eml_and_no_temp_files(
    inline_env: Callable[[str | None], None], tmp_path: Path
) -> None:
    inline_env(None)
    outcome = send_email("bob@example.com", "Report ready", html="<p>ready</p>")
    path = Path(outcome["path"] or "")
    assert outcome["transport"] == "outbox" and path.parent == tmp_path / "data" / "outbox"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == outcome["message_id"] and b"\r\n" in path.read_bytes()


# ---- TLS, in this process against a real server ---------------------------------------------------


def test_starttls_then_login_when_the_server_offers_it(
    inline_env: Callable[[str | None], None], smtp_server: Callable[..., int], certificate: Path
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret pw")

    box = Mailbox()
    port = smtp_server(box, tls_context=server_context(certificate), authenticator=authenticator,
                       auth_required=True)  # fmt: skip
    inline_env(f"smtp://shop%40example.com:s3cret%20pw@127.0.0.1:{port}?cafile={certificate}")
    outcome = send_email("bob@example.com", "Over TLS", text="secret")
    assert outcome["transport"] == "smtp" and outcome["server"] == f"127.0.0.1:{port}"
    assert logins == [(b"shop@example.com", b"s3cret pw")]
    [got] = box.received
    assert got["tls"] and got["authenticated"] and got["mail_from"] == "shop@example.com"


def test_smtps_uses_implicit_tls_and_refuses_an_untrusted_certificate(
    inline_env: Callable[[str | None], None], smtp_server: Callable[..., int], certificate: Path
) -> None:
    box = Mailbox()
    port = smtp_server(box, ssl_context=server_context(certificate))
    inline_env(f"smtps://127.0.0.1:{port}?cafile={certificate}")
    send_email("bob@example.com", "Implicit TLS", text="x")
    assert [r["tls"] for r in box.received] == [True]
    inline_env(f"smtps://127.0.0.1:{port}")  # the system CAs do not trust the test certificate
    with pytest.raises(EmailRejected, match="certificate not trusted"):
        send_email("bob@example.com", "Implicit TLS", text="x")


# ---- end to end through a real worker ------------------------------------------------------------


def email_worker(procs: Processes, port: int | None, query: str = "") -> None:
    env = dict(EMAIL_ONLY)
    if port is not None:
        env["SMTP_URL"] = f"smtp://127.0.0.1:{port}{query}"
    procs.worker("email", env=env)


def test_email_arrives_with_headers_and_both_parts(settings, procs: Processes, smtp_server) -> None:
    box = Mailbox()
    email_worker(procs, smtp_server(box), "?from=shop@example.com")
    result = send_email.delay("Bob Stone <bob@example.com>", "Welcome, Bob", html="<h1>Hi Bob</h1>", text="Hi Bob")
    outcome = result.get(timeout=30)
    assert outcome["transport"] == "smtp" and outcome["to"] == "bob@example.com" and outcome["path"] is None
    [got] = box.received
    assert (got["mail_from"], got["rcpt_tos"]) == ("shop@example.com", ["bob@example.com"])
    msg = got["message"]
    assert (msg["From"], msg["To"], msg["Subject"]) == (
        "shop@example.com",
        "Bob Stone <bob@example.com>",
        "Welcome, Bob",
    )
    assert msg["Message-ID"] == outcome["message_id"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().strip() == "Hi Bob"
    assert msg.get_body(("html",)).get_content().strip() == "<h1>Hi Bob</h1>"
    assert result.attempts == 1


def test_invalid_address_fails_at_once_without_retry(
    settings, procs: Processes, smtp_server, conn: redis.Redis
) -> None:
    box = Mailbox()
    email_worker(procs, smtp_server(box))
    result = send_email.delay("not-an-address", "Hi", text="x")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=30)
    assert info.value.exc_type == "InvalidAddress" and "not-an-address" in info.value.message
    assert result.state == "FAILURE" and result.attempts == 1
    assert int(conn.hget(f"rq:job:{result.id}", "tr_retries") or 0) == 0
    assert box.data_commands == 0 and box.received == []


def test_a_server_that_refuses_once_is_retried_then_delivers(settings, procs: Processes, smtp_server) -> None:
    box = Mailbox(data_replies=("451 4.3.0 Mail server busy, try again later",))
    email_worker(procs, smtp_server(box))
    result = send_email.delay("bob@example.com", "Eventually", text="second time lucky")
    wait_for(lambda: result.state == "RETRY", 20, what="the job waiting for its retry")
    outcome = result.get(timeout=30)  # retry_backoff=2 with jitter: the retry comes 1 to 2 s later
    assert outcome["transport"] == "smtp" and result.attempts == 2
    assert box.data_commands == 2 and len(box.received) == 1


def test_a_permanent_refusal_fails_at_once(settings, procs: Processes, smtp_server) -> None:
    box = Mailbox(rcpt_replies=("550 5.1.1 No such user here",))
    email_worker(procs, smtp_server(box))
    result = send_email.delay("ghost@example.com", "Hello?", text="x")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=30)
    assert info.value.exc_type == "EmailRejected" and "550" in info.value.message
    assert result.attempts == 1 and box.received == []


def test_without_smtp_url_the_worker_writes_an_eml_to_the_outbox(
    settings, procs: Processes, env: dict[str, str]
) -> None:
    email_worker(procs, None)
    outcome = send_email.delay("carol@example.net", "Outbox", html="<p>saved</p>", text="saved").get(timeout=30)
    path = Path(outcome["path"])
    assert outcome["transport"] == "outbox" and path.parent == Path(env["TASKRAIL_DATA_DIR"]) / "outbox"
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert (parsed["To"], parsed["Subject"]) == ("carol@example.net", "Outbox")
    assert parsed.get_body(("plain",)).get_content().strip() == "saved"  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content().strip() == "<p>saved</p>"  # type: ignore[union-attr]
