#!/usr/bin/env python3
"""A real SMTP server for the mailer tests (Debian python3-aiosmtpd).

    smtp_sink.py PORT FILE [--auth USER:PASSWORD] [--reject PREFIX]

Listens on 127.0.0.1:PORT and appends every accepted message to FILE as

    ==> MAIL FROM:<sender> RCPT TO:<rcpt>[,<rcpt>...]
    <the message as received, dot-stuffing undone>
    <== END

Prints "ready" on stdout once it accepts connections, and runs until
SIGTERM or SIGINT. --auth requires AUTH (PLAIN or LOGIN, allowed without
TLS) with these credentials; --reject answers 550 to recipients whose
address starts with PREFIX.
"""
import argparse
import logging
import signal
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, path, reject):
        self.path = path
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and address.startswith(self.reject):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        head = "==> MAIL FROM:<%s> RCPT TO:%s\n" % (
            envelope.mail_from, ",".join("<%s>" % r for r in envelope.rcpt_tos))
        with open(self.path, "ab") as out:
            out.write(head.encode())
            out.write(content)
            out.write(b"\n<== END\n")
        return "250 2.0.0 queued"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("file")
    parser.add_argument("--auth")
    parser.add_argument("--reject")
    args = parser.parse_args()

    # Plain AUTH without TLS is what the test wants; say nothing about it.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    kwargs = {}
    if args.auth:
        user, password = args.auth.encode().split(b":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user and auth_data.password == password
            return AuthResult(success=ok, handled=False)

        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)

    controller = Controller(Sink(args.file, args.reject), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        print("ready", flush=True)
    except BrokenPipeError:
        pass
    # Nothing more goes to stdout: the test may stop reading it.
    sys.stdout = open("/dev/null", "w")
    while not stop.wait(0.5):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
