"""A real SMTP server that requires AUTH, for client-side SMTP AUTH tests: Python's aiosmtpd
(Debian python3-aiosmtpd) with its authenticator hook, as a provider's submission port looks.

    /usr/bin/python3 auth_smtp_server.py --port P --users FILE --out DIR
        [--tls starttls|implicit|none] [--cert PEM --key KEY] [--auth-before-tls]

--users: "name:password" lines, read again at every login (so a test can rotate them).
--tls starttls: STARTTLS offered, AUTH only after it (aiosmtpd's auth_require_tls); implicit:
TLS from the first byte (port 465); none: no TLS, AUTH only with --auth-before-tls.
Every message received (only after a successful login: auth_required) is written to DIR as
<n>.eml, and every login attempt is appended to DIR/auth.log as "MECHANISM user ok|refused".
Prints "listening PORT" once ready; runs until killed."""
import argparse
import asyncio
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tls", choices=("starttls", "implicit", "none"), default="starttls")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth-before-tls", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def authenticate(server, session, envelope, mechanism, auth_data):
        users = {}
        with open(args.users) as source:
            for line in source:
                name, _, password = line.rstrip("\n").partition(":")
                users[name] = password
        ok = (isinstance(auth_data, LoginPassword)
              and users.get(auth_data.login.decode()) == auth_data.password.decode())
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
        with open(os.path.join(args.out, "auth.log"), "a") as log:
            log.write(f"{mechanism} {login} {'ok' if ok else 'refused'}\n")
        if ok:
            session.postgate_login = login
        return AuthResult(success=ok, handled=False)  # handled=True (the default) would send no reply

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            path = os.path.join(args.out, f"{Handler.count}.eml")
            with open(path + ".tmp", "wb") as out:
                out.write(f"X-Auth-Login: {getattr(session, 'postgate_login', '')}\n".encode())
                out.write(f"X-Envelope-From: {envelope.mail_from}\n".encode())
                out.write(f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\n".encode())
                out.write(envelope.original_content)
            os.rename(path + ".tmp", path)
            return "250 2.0.0 Ok: queued"

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls: with implicit TLS every byte is
    # already encrypted, so AUTH is offered at once.
    options = dict(authenticator=authenticate, auth_required=True,
                   auth_require_tls=args.tls == "starttls" and not args.auth_before_tls)
    if args.tls == "starttls":
        options["tls_context"] = context
    controller = Controller(Handler(), hostname="127.0.0.1", port=args.port,
                            ssl_context=context if args.tls == "implicit" else None,
                            server_hostname="relay.test", **options)
    controller.start()
    print(f"listening {args.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
