"""A real SMTP server for tests/email_sink.rs: aiosmtpd on a loopback port, writing every
message it accepts to DIR/NNNN.json as {mail_from, rcpt_tos, subject, header_names, body,
tls, auth_user}. Optional STARTTLS (required when a certificate is given) and AUTH.

usage: smtp_receiver.py PORT DIR [--tls CERT KEY] [--auth USER PASSWORD]
Prints "ready" on stdout once it accepts connections; runs until killed.
"""

import email
import email.policy
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "header_names": [name for name, _ in message.raw_items()],
            "body": body.get_content() if body is not None else "",
            "tls": session.ssl is not None,
            "auth_user": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        }
        with self.lock:
            self.count += 1
            path = os.path.join(self.out_dir, "%04d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    port, out_dir = int(sys.argv[1]), sys.argv[2]
    args = sys.argv[3:]
    params = {}
    if "--tls" in args:
        i = args.index("--tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args[i + 1], args[i + 2])
        params.update(tls_context=context, require_starttls=True)
    if "--auth" in args:
        i = args.index("--auth")
        user, password = args[i + 1].encode(), args[i + 2].encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
            return AuthResult(success=ok, auth_data=auth_data if ok else None)

        params.update(authenticator=authenticator, auth_require_tls=True, auth_required=True)
    controller = Controller(Recorder(out_dir), hostname="127.0.0.1", port=port, **params)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
