"""No open relay: a battery of relay tricks, each played from a client outside mynetworks
(10.9.9.9) and again from one inside (192.168.0.10), in network namespaces this test makes (the
gateway listens on 192.168.0.1 and 10.9.9.1 in its own namespace; nothing leaves the machine).
Outside, every trick is refused with Postfix 3.7's reply (checked against a real Postfix with
reject_unauth_destination); inside, the ones with a remote destination are accepted – so mynetworks
is what decides – while routes hidden in a local part at a local domain (percent hack, bang path,
quoted or bare '@') are unknown local users for everyone: unlike Postfix, Postgate never honours them.
On a second service (master.cf, port 2587, SMTP AUTH) the outside client relays once logged in."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from postgate_harness import Postgate

HERE = os.path.dirname(os.path.abspath(__file__))
DENIED = "554 5.7.1 <{}>: Relay access denied\r\n"
PASSWORD = "Netns-App-Pass-2"

# (RCPT address, reply to an outside client); Postfix's own replies except where noted.
REMOTE_TRICKS = [
    ("user@example.org", DENIED.format("user@example.org")),
    ("user@EXAMPLE.ORG", DENIED.format("user@EXAMPLE.ORG")),
    ("@mail169.com:user@example.org", DENIED.format("user@example.org")),  # Source route, dropped.
    ("@a.example,@mail169.com:user@example.org", DENIED.format("user@example.org")),
    ("bar@mail169.com@example.org", DENIED.format("bar@mail169.com@example.org")),
    ("user@example.org.", DENIED.format("user@example.org.")),  # Trailing dot.
    ("user@mail169.com.example.org", DENIED.format("user@mail169.com.example.org")),
    ("user@[10.0.0.1]", DENIED.format("user@[10.0.0.1]")),  # Address literal.
    ("user@[IPv6:::1]", DENIED.format("user@[IPv6:::1]")),
]
# Routes hidden in the local part of a local address: relay attempts from outside (as Postfix
# says), and from inside unknown users – Postgate does not do the percent hack or bang paths.
HIDDEN_ROUTES = [
    ("user%example.org@mail169.com", DENIED.format("user%example.org@mail169.com")),  # Percent hack.
    ("user%example.org@localhost", DENIED.format("user%example.org@localhost")),
    ("example.org!user@mail169.com", DENIED.format("example.org!user@mail169.com")),  # Bang path.
    # Postfix shows the local part dequoted (<user@example.org@mail169.com>); Postgate as sent.
    ('"user@example.org"@mail169.com', DENIED.format('"user@example.org"@mail169.com')),
    ("user@example.org@mail169.com", DENIED.format("user@example.org@mail169.com")),
    ("bar+user%example.org@mail169.com", DENIED.format("bar+user%example.org@mail169.com")),  # Delimiter.
]
UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown in local recipient table\r\n"
# Local recipients in disguise: accepted from anyone, as by Postfix.
LOCAL_FORMS = ["bar@MAIL169.COM", "bar@mail169.com.", '"bar"@mail169.com', "bar+x@mail169.com", "bar@localhost"]
# Not addresses at all, from anyone (Postfix: the same reply).
BAD_SYNTAX = ["user@example.org%mail169.com", "user@example.org:25"]


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


class OpenRelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tag = str(os.getpid() % 100000)
        cls.server_ns, cls.client_ns = f"pgsrv{tag}", f"pgcli{tag}"
        ip("netns", "add", cls.server_ns)
        try:
            ip("netns", "add", cls.client_ns)
            ip("link", "add", f"pgs{tag}", "type", "veth", "peer", "name", f"pgc{tag}")
            ip("link", "set", f"pgs{tag}", "netns", cls.server_ns)
            ip("link", "set", f"pgc{tag}", "netns", cls.client_ns)
            for ns, device, addresses in ((cls.server_ns, f"pgs{tag}", ("192.168.0.1/24", "10.9.9.1/24")),
                                          (cls.client_ns, f"pgc{tag}", ("192.168.0.10/24", "10.9.9.9/24"))):
                for address in addresses:
                    ip("-n", ns, "addr", "add", address, "dev", device)
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "set", device, "up")
            in_server = ("ip", "netns", "exec", cls.server_ns)
            # Beside port 2525, a service with SMTP AUTH (in the clear: the client here speaks no TLS).
            cls.users = os.path.join(cls.server_ns_dir(), "users")
            hashed = subprocess.run(["mkpasswd", "-m", "yescrypt", PASSWORD], check=True, capture_output=True,
                                    text=True).stdout.strip()
            with open(cls.users, "w") as out:
                out.write(f"appuser:{hashed}\n")
            cls.postgate = Postgate({"mynetworks": "192.168.0.0/24", "smtpd_hard_error_limit": "100",
                                     "smtpd_peername_lookup": "no", "postgate_smtpd_sasl_users_file": cls.users},
                                    master_cf="smtp inet n - n - - smtpd\n"
                                              "0.0.0.0:2587 inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes\n")
            cls.postgate.start_queue(prefix=in_server)
            cls.postgate.start_gateway(prefix=in_server, listen="0.0.0.0:2525")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def server_ns_dir(cls):
        path = os.path.join(tempfile.gettempdir(), cls.server_ns)
        os.makedirs(path, exist_ok=True)
        return path

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "postgate", None):
            cls.postgate.cleanup()
        shutil.rmtree(cls.server_ns_dir(), ignore_errors=True)
        for ns in (cls.server_ns, cls.client_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # Takes its veth end along.

    def play(self, server_address, commands, port=2525):
        """The session from the client namespace to the gateway at `server_address`; the replies."""
        result = subprocess.run(["ip", "netns", "exec", self.client_ns, "/usr/bin/python3",
                                 os.path.join(HERE, "netns_smtp.py"), server_address, str(port)],
                                input="\n".join(commands), capture_output=True, text=True, timeout=60, check=True)
        return json.loads(result.stdout)

    def rcpt_replies(self, server_address, addresses):
        replies = self.play(server_address, ["EHLO client.test", "MAIL FROM:<someone@example.net>",
                                              *[f"RCPT TO:<{a}>" for a in addresses], "QUIT"])
        self.assertTrue(replies[0].startswith("220 "), replies[0])
        self.assertEqual(replies[2], "250 2.1.0 Ok\r\n")
        return dict(zip(addresses, replies[3:-1]))

    def test_every_trick_is_refused_from_outside_mynetworks(self):
        tricks = REMOTE_TRICKS + HIDDEN_ROUTES
        replies = self.rcpt_replies("10.9.9.1", [a for a, _ in tricks])
        self.assertEqual(replies, dict(tricks))
        self.postgate.gateway.wait_log(r"connect from unknown\[10\.9\.9\.9\]")

    def test_mynetworks_relays_remote_destinations_but_never_hidden_routes(self):
        self.maxDiff = None
        replies = self.rcpt_replies("192.168.0.1", [a for a, _ in REMOTE_TRICKS + HIDDEN_ROUTES])
        self.assertEqual(replies, {**{a: "250 2.1.5 Ok\r\n" for a, _ in REMOTE_TRICKS},
                                   **{a: UNKNOWN.format(a) for a, _ in HIDDEN_ROUTES}})
        self.postgate.gateway.wait_log(r"connect from unknown\[192\.168\.0\.10\]")

    def test_local_forms_from_anywhere_and_bad_syntax_from_nowhere(self):
        for server in ("10.9.9.1", "192.168.0.1"):
            replies = self.rcpt_replies(server, LOCAL_FORMS + BAD_SYNTAX)
            for address in LOCAL_FORMS:
                self.assertEqual(replies[address], "250 2.1.5 Ok\r\n", (server, address))
            for address in BAD_SYNTAX:
                self.assertEqual(replies[address], "501 5.1.3 Bad recipient address syntax\r\n", (server, address))

    def test_no_relayed_message_from_outside(self):
        replies = self.play("10.9.9.1", ["EHLO client.test", "MAIL FROM:<someone@example.net>",
                                         "RCPT TO:<user%example.org@mail169.com>", "DATA", "QUIT"])
        self.assertEqual(replies[4], "554 5.5.1 Error: no valid recipients\r\n")

    def test_outside_client_relays_only_once_logged_in(self):
        plain = base64.b64encode(f"\0appuser\0{PASSWORD}".encode()).decode()
        replies = self.play("10.9.9.1", ["EHLO client.test", "MAIL FROM:<app@example.net>", "RCPT TO:<user@example.org>",
                                         "RSET", f"AUTH PLAIN {plain}", "MAIL FROM:<app@example.net>",
                                         "RCPT TO:<user@example.org>", "QUIT"], port=2587)
        self.assertIn("250-AUTH PLAIN LOGIN", replies[1])
        self.assertEqual(replies[3], DENIED.format("user@example.org"))
        self.assertEqual(replies[5], "235 2.7.0 Authentication successful\r\n")
        self.assertEqual(replies[7], "250 2.1.5 Ok\r\n")
        # Port 2525 offers no AUTH at all.
        self.assertNotIn("AUTH", self.play("10.9.9.1", ["EHLO client.test", "QUIT"])[1])


if __name__ == "__main__":
    unittest.main()
