"""DKIM signing, checked by an independent verifier: Python's dkimpy (Debian python3-dkim) verifies
every signature of messages relayed through Postgate to a real SMTP server (aiosmtpd on loopback),
against the DNS records `smtp-gateway --dkim-records` prints, exactly as an operator would publish
them. Two keys sign each message of mail169.com (two lines for the domain in the signing table):
RSA-2048 (rsa-sha256, libopendkim) and Ed25519 (ed25519-sha256, RFC 8463, Postgate's own signer),
the pair RFC 8463 recommends; a message changed in transit fails. OpenDKIM's own verifier,
opendkim-testmsg, checks each signature too, resolving the records through a dnsmasq in a network
namespace of the test's (its resolver reads /etc/resolv.conf, bind-mounted there)."""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest
import urllib.request

import dkim
from aiosmtpd.controller import Controller

from postgate_harness import BIN_DIR, QUEUE_ID, Postgate, SmtpConnection, free_port, wait_for


class Captured:
    """aiosmtpd handler keeping each message's bytes exactly as they arrived."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 2.0.0 Ok"


class Keys:
    """An RSA and an Ed25519 key for mail169.com, an RSA one for example.com, and the two tables."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-dkim-")
        self.rsa = self.new_key("rsa.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        self.ed = self.new_key("ed.pem", ["-algorithm", "ed25519"])
        self.other = self.new_key("other.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        self.key_table = self.write("KeyTable", f"rsa mail169.com:r2026:{self.rsa}\ned mail169.com:e2026:{self.ed}\n"
                                                f"other example.com:x1:{self.other}\n")
        self.signing_table = self.write("SigningTable", "*@mail169.com rsa\n*@mail169.com ed\nexample.com other\n")

    def new_key(self, name, algorithm):
        path = os.path.join(self.dir, name)
        subprocess.run(["openssl", "genpkey", *algorithm, "-out", path], check=True, capture_output=True)
        return path

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path + ".new", "w") as out:
            out.write(text)
        os.replace(path + ".new", path)
        return path

    def overrides(self):
        return {"postgate_dkim_key_table": self.key_table, "postgate_dkim_signing_table": self.signing_table}

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def published_records(postgate):
    """name → TXT value, from `smtp-gateway --dkim-records` (zone-file lines, strings joined)."""
    result = subprocess.run([os.path.join(BIN_DIR, "smtp-gateway"), "--config", postgate.config,
                             "--dkim-records"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    records = {}
    for line in result.stdout.splitlines():
        if line.startswith(";"):
            continue
        match = re.match(r"^(\S+)\. IN TXT \( (.*) \)$", line)
        assert match, line
        records[match.group(1)] = "".join(re.findall(r'"([^"]*)"', match.group(2)))
    return records, result.stdout


def verify_each(message, records):
    """The d=/s=/a= and dkimpy's verdict of each DKIM-Signature of `message`, in order."""
    def dnsfunc(name, timeout=5):
        return records.get(name.decode().rstrip("."), "").encode()
    verifier = dkim.DKIM(message)
    results = []
    for index, signature in enumerate(re.findall(rb"(?m)^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", message)):
        tags = dict(re.findall(rb"\b([dsa])=([^;\s]+)", re.sub(rb"\r\n[ \t]", b"", signature)))
        try:
            verified = verifier.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.ValidationError:  # dkimpy raises for some mismatches (the body hash) instead.
            verified = False
        results.append((tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode(), verified))
    return results


OPENDKIM_VERIFY = r"""
ip link set lo up
mount --bind "$1/resolv.conf" /etc/resolv.conf
mapfile -t records < "$1/records"
dnsmasq --keep-in-foreground --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
  --port=53 "${records[@]}" >/dev/null 2>&1 &
dns=$!
trap 'kill $dns' EXIT  # Whatever happens: it would keep the namespace alive.
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/53) 2>/dev/null && break; sleep 0.1; done
for message in "$1"/message-*; do
  opendkim-testmsg < "$message" >/dev/null 2>&1
  status=$?
  echo "${message##*/} $status"
done
"""


def opendkim_verdicts(messages, records):
    """opendkim-testmsg's exit status for each message (0: its signature verified), run in a network
    and mount namespace where DNS is a dnsmasq on the namespace's loopback serving `records`."""
    directory = tempfile.mkdtemp(prefix="postgate-opendkim-")
    try:
        with open(os.path.join(directory, "resolv.conf"), "w") as out:
            out.write("nameserver 127.0.0.1\n")
        with open(os.path.join(directory, "records"), "w") as out:
            out.write("".join(f"--txt-record={name},{value}\n" for name, value in records.items()))
        for index, message in enumerate(messages):
            with open(os.path.join(directory, f"message-{index}"), "wb") as out:
                out.write(message)
        result = subprocess.run(["unshare", "--net", "--mount", "bash", "-c", OPENDKIM_VERIFY, "verify", directory],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"unshare (root is needed for the namespace): {result.stderr}"
        verdicts = dict(line.split() for line in result.stdout.splitlines())
        return [int(verdicts[f"message-{index}"]) for index in range(len(messages))]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def one_signature_each(message):
    """A copy of `message` per DKIM-Signature, keeping only that one (opendkim-testmsg reports one
    verdict per message)."""
    signatures = re.findall(rb"(?m)^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n", message)
    rest = message
    for signature in signatures:
        rest = rest.replace(signature, b"", 1)
    return [signature + rest for signature in signatures]


class DkimSigningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.captured = Captured()
        cls.sink_port = free_port()
        cls.sink = Controller(cls.captured, hostname="127.0.0.1", port=cls.sink_port,
                              server_kwargs={"enable_SMTPUTF8": True}, decode_data=False)
        cls.sink.start()
        cls.postgate = Postgate({**cls.keys.overrides(), "defer_transports": "",
                                 "relayhost": f"[127.0.0.1]:{cls.sink_port}", "smtp_tls_security_level": "none",
                                 "queue_run_delay": "1s", "minimal_backoff_time": "1s", "maximal_backoff_time": "1s"})
        cls.postgate.start()
        cls.records, cls.records_text = published_records(cls.postgate)

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        cls.sink.stop()
        cls.keys.cleanup()

    def relayed(self, subject):
        return wait_for(lambda: next((m for m in self.captured.messages if subject.encode() in m), None),
                        timeout=30, what=f"{subject} at the remote server")

    def send_data(self, body, sender="foo@mail169.com", options=""):
        connection = SmtpConnection(self.postgate.smtp_port)
        try:
            connection.read_reply()
            connection.command("EHLO client.example")
            self.assertTrue(connection.command(f"MAIL FROM:<{sender}>{options}").startswith("250"))
            self.assertTrue(connection.command("RCPT TO:<someone@example.org>").startswith("250"))
            self.assertTrue(connection.command("DATA").startswith("354"))
            connection.send(body + b".\r\n")
            reply = connection.read_reply()
            self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as ")
            return re.search(QUEUE_ID, reply).group(0)
        finally:
            connection.close()

    def assert_signed_by_both(self, message):
        self.assertEqual([(d, s, a, ok) for d, s, a, ok in verify_each(message, self.records)],
                         [("mail169.com", "r2026", "rsa-sha256", True), ("mail169.com", "e2026", "ed25519-sha256", True)],
                         message[:1500])
        headers = message.split(b"\r\n\r\n", 1)[0]
        self.assertTrue(headers.startswith(b"DKIM-Signature: "), "the signatures come first")
        self.assertNotIn(b" l=", headers)
        self.assertIn(b"c=relaxed/relaxed", headers)

    def test_the_records_printed_are_what_dns_would_serve(self):
        self.assertEqual(sorted(self.records), ["e2026._domainkey.mail169.com", "r2026._domainkey.mail169.com",
                                                "x1._domainkey.example.com"])
        self.assertRegex(self.records["r2026._domainkey.mail169.com"], r"^v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/=]+$")
        self.assertRegex(self.records["e2026._domainkey.mail169.com"], r"^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$")
        self.assertIn("; rsa: RSA 2048 bits, " + self.keys.rsa, self.records_text)
        self.assertIn("; ed: Ed25519, " + self.keys.ed, self.records_text)
        for line in self.records_text.splitlines():
            for string in re.findall(r'"([^"]*)"', line):
                self.assertLessEqual(len(string), 255)

    def test_messages_of_every_shape_verify(self):
        long_line = b"x" * 950
        bodies = {
            "plain": b"From: Foo <foo@mail169.com>\r\nTo: someone@example.org\r\nSubject: plain\r\n\r\nHello\r\n",
            "eight-bit": "From: foo@mail169.com\r\nSubject: eight-bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n\r\nÇa va, café ☕\r\n".encode(),
            "long line": b"From: foo@mail169.com\r\nSubject: long line\r\n\r\n" + long_line + b"\r\nend\r\n",
            "multipart": b"From: foo@mail169.com\r\nSubject: multipart\r\nMIME-Version: 1.0\r\n"
                         b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
                         b"Content-Type: text/plain\r\n\r\npart one\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b1--\r\n",
            "folded and spaced": b"From: foo@mail169.com\r\nSubject: folded\r\n and spaced\r\n\r\n  a  b  \r\n\r\n\r\n",
            "no from": b"Subject: no from\r\n\r\ncleanup adds From: foo@mail169.com, which is then signed\r\n",
        }
        for name, body in bodies.items():
            with self.subTest(name):
                self.send_data(body, options=" BODY=8BITMIME" if name == "eight-bit" else "")
                self.assert_signed_by_both(self.relayed(name.split()[0] if name != "no from" else "no from"))
        smtputf8 = "From: Pelé <pelé@mail169.com>\r\nSubject: utf8 ☕\r\n\r\nçà\r\n".encode()
        self.send_data(smtputf8, sender="pelé@mail169.com", options=" SMTPUTF8 BODY=8BITMIME")
        self.assert_signed_by_both(self.relayed("utf8 ☕"))

    def test_a_message_received_with_bdat_verifies_and_a_change_in_transit_does_not(self):
        content = b"From: foo@mail169.com\r\nSubject: bdat chunks\r\n\r\nfirst chunk, "
        rest = b"second chunk\r\n"
        with smtplib.SMTP("127.0.0.1", self.postgate.smtp_port) as client:
            client.ehlo("client.example")
            client.mail("foo@mail169.com")
            client.rcpt("someone@example.org")
            client.send(f"BDAT {len(content)}\r\n".encode() + content)
            self.assertEqual(client.getreply()[0], 250)
            client.send(f"BDAT {len(rest)} LAST\r\n".encode() + rest)
            self.assertEqual(client.getreply()[0], 250)
        message = self.relayed("bdat chunks")
        self.assert_signed_by_both(message)
        changed = [ok for *_, ok in verify_each(message.replace(b"second chunk", b"2nd chunk"), self.records)]
        self.assertEqual(changed, [False, False])
        added_from = message.replace(b"Subject: bdat", b"From: evil@example.net\r\nSubject: bdat")
        self.assertEqual([ok for *_, ok in verify_each(added_from, self.records)], [False, False],
                         "From is oversigned: a second From: breaks the signature")

    def test_opendkims_own_verifier_accepts_each_signature_and_refuses_a_changed_message(self):
        self.send_data(b"From: Foo <foo@mail169.com>\r\nSubject: opendkim\r\n\r\nHello,  world \r\n\r\n")
        signed = one_signature_each(self.relayed("opendkim"))
        self.assertEqual([b"a=rsa-sha256" in m for m in signed], [True, False])
        changed = [m.replace(b"Hello", b"Hallo") for m in signed]
        # 70: EX_SOFTWARE, opendkim-testmsg's status for "dkim_eom(): Bad signature".
        self.assertEqual(opendkim_verdicts(signed + changed, self.records), [0, 0, 70, 70])

    def test_another_domain_uses_its_key_and_an_unknown_one_is_not_signed(self):
        self.send_data(b"From: ann@example.com\r\nSubject: example.com key\r\n\r\nx\r\n")
        self.assertEqual(verify_each(self.relayed("example.com key"), self.records),
                         [("example.com", "x1", "rsa-sha256", True)])
        self.send_data(b"From: ann@unsigned.example\r\nSubject: unknown domain\r\n\r\nx\r\n")
        self.assertEqual(verify_each(self.relayed("unknown domain"), self.records), [])

    def test_each_signature_is_logged_as_opendkim_does_and_counted(self):
        queue_id = self.send_data(b"From: foo@mail169.com\r\nSubject: logged\r\n\r\nx\r\n")
        for selector in ("r2026", "e2026"):
            self.postgate.gateway.wait_log(rf"postgate/cleanup\[\d+\]: {queue_id}: DKIM-Signature field added "
                                           rf"\(s={selector}, d=mail169\.com\)")
        self.relayed("logged")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{self.postgate.gateway_metrics_port}/metrics").read()
        self.assertRegex(metrics.decode(), r'postgate_smtpd_dkim_signatures_total\{result="signed"\} [1-9]')
        self.assertIn('postgate_smtpd_dkim_signatures_total{result="error"} 0', metrics.decode())


class DkimOperationsTest(unittest.TestCase):
    def setUp(self):
        self.keys = Keys()
        self.addCleanup(self.keys.cleanup)

    def test_a_key_that_cannot_be_loaded_stops_the_start_and_a_reload_naming_its_file_and_line(self):
        broken = self.keys.write("BrokenKeyTable", f"rsa mail169.com:r2026:{self.keys.rsa}\n"
                                                   f"ed mail169.com:e2026:{self.keys.dir}/missing.pem\n")
        postgate = Postgate({**self.keys.overrides(), "postgate_dkim_key_table": broken})
        self.addCleanup(postgate.cleanup)
        postgate.start_queue()
        gateway = subprocess.run([os.path.join(BIN_DIR, "smtp-gateway"), "--config", postgate.config,
                                  "--queue", f"127.0.0.1:{postgate.grpc_port}", "--listen", "127.0.0.1:0",
                                  "--metrics", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
        self.assertEqual(gateway.returncode, 1)
        self.assertRegex(gateway.stderr, rf"postgate_dkim_key_table: {re.escape(broken)}:2: .*missing\.pem")
        self.assertNotIn("PRIVATE KEY", gateway.stderr)
        # A key of a kind DKIM does not sign with is refused, naming it.
        x25519 = self.keys.new_key("x25519.pem", ["-algorithm", "x25519"])
        with open(broken, "w") as out:
            out.write(f"x mail169.com:x2026:{x25519}\n")
        gateway = subprocess.run([os.path.join(BIN_DIR, "smtp-gateway"), "--config", postgate.config,
                                  "--dkim-records"], capture_output=True, text=True, timeout=30)
        self.assertEqual(gateway.returncode, 1)
        self.assertIn(f"{broken}:1: {x25519}: neither an RSA nor an Ed25519 key", gateway.stderr)

    def test_signed_once_when_queued_so_a_retry_sends_the_stored_signature(self):
        port = free_port()  # Nobody listens yet: the first attempt is deferred.
        postgate = Postgate({**self.keys.overrides(), "defer_transports": "", "relayhost": f"[127.0.0.1]:{port}",
                             "smtp_tls_security_level": "none", "queue_run_delay": "1s",
                             "minimal_backoff_time": "1s", "maximal_backoff_time": "1s"})
        postgate.start()
        self.addCleanup(postgate.cleanup)
        with smtplib.SMTP("127.0.0.1", postgate.smtp_port) as client:
            client.sendmail("foo@mail169.com", ["someone@example.org"], "From: foo@mail169.com\r\nSubject: retried\r\n\r\nx\r\n")
        queue_id = postgate.queue.wait_log(rf"({QUEUE_ID}): to=<someone@example\.org>.*status=deferred").group(1)
        stored = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{postgate.grpc_port}",
                                 "--token-file", postgate.token_file, "cat", queue_id],
                                capture_output=True, timeout=30, check=True).stdout
        self.assertTrue(stored.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;"), stored[:200])
        stored_signatures = stored.split(b"\nReceived: ", 1)[0].replace(b"\n", b"\r\n")
        captured = Captured()
        sink = Controller(captured, hostname="127.0.0.1", port=port, decode_data=False)
        sink.start()
        self.addCleanup(sink.stop)
        relayed = wait_for(lambda: captured.messages and captured.messages[0], timeout=30, what="the retry")
        self.assertTrue(relayed.startswith(stored_signatures + b"\r\nReceived: "), relayed[:1200])
        records, _ = published_records(postgate)
        self.assertEqual([ok for *_, ok in verify_each(relayed, records)], [True, True])

    def test_the_tables_and_keys_are_read_again_when_they_change(self):
        captured = Captured()
        port = free_port()
        sink = Controller(captured, hostname="127.0.0.1", port=port, decode_data=False)
        sink.start()
        self.addCleanup(sink.stop)
        postgate = Postgate({**self.keys.overrides(), "defer_transports": "", "relayhost": f"[127.0.0.1]:{port}",
                             "smtp_tls_security_level": "none"})
        postgate.start()
        self.addCleanup(postgate.cleanup)

        def send(subject):
            with smtplib.SMTP("127.0.0.1", postgate.smtp_port) as client:
                client.sendmail("foo@mail169.com", ["someone@example.org"],
                                f"From: foo@mail169.com\r\nSubject: {subject}\r\n\r\nx\r\n")
            return wait_for(lambda: next((m for m in captured.messages if subject.encode() in m), None), timeout=30)

        self.assertIn(b"s=r2026", send("before rotation"))
        # A rotated Secret: a new key under a new selector, the signing table pointing at it alone.
        rotated = self.keys.new_key("rsa-2027.pem", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        with open(self.keys.key_table, "a") as out:
            out.write(f"rsa2027 mail169.com:r2027:{rotated}\n")
        self.keys.write("SigningTable", "mail169.com rsa2027\n")
        postgate.gateway.wait_log(r"reload \(a table or key changed\)")
        message = send("after rotation")
        self.assertIn(b"s=r2027", message)
        self.assertNotIn(b"s=r2026", message)
        records, _ = published_records(postgate)
        self.assertEqual([ok for *_, ok in verify_each(message, records)], [True])
        # A broken table is refused; the running keys stay in force.
        self.keys.write("SigningTable", "mail169.com nosuchkey\n")
        postgate.gateway.wait_log(r"reload \(a table or key changed\) refused.*nosuchkey")
        self.assertIn(b"s=r2027", send("after a refused reload"))


if __name__ == "__main__":
    unittest.main()
