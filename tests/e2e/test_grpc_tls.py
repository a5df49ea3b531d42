"""The queue's gRPC port with mutual TLS: the gateway enqueues with its client certificate, an
operator certificate named in postgate_queue_admin_client_names may run admin commands without a
token, and clients without a certificate are turned away."""
import os
import re
import subprocess
import tempfile
import unittest

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import BIN_DIR, QUEUE_ID, Postgate, send_message, wait_for


def make_pki(directory):
    """A CA and three certificates it signs: the queue (for 127.0.0.1), the gateway, an operator."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=postgate-test-ca",
        "-keyout", f"{directory}/ca.key", "-out", f"{directory}/ca.pem")
    for name, san in (("queue", "IP:127.0.0.1,DNS:localhost"), ("gateway", "DNS:postgate-gateway"),
                      ("operator", "DNS:ops-admin")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{directory}/{name}.key",
            "-out", f"{directory}/{name}.csr")
        with open(f"{directory}/{name}.ext", "w") as ext:
            ext.write(f"subjectAltName={san}\n")
        run("x509", "-req", "-in", f"{directory}/{name}.csr", "-CA", f"{directory}/ca.pem", "-CAkey",
            f"{directory}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{directory}/{name}.ext",
            "-out", f"{directory}/{name}.pem")


class GrpcMutualTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="postgate-pki-")
        make_pki(cls.pki)
        p = cls.pki
        cls.postgate = Postgate({
            "postgate_queue_tls_cert_file": f"{p}/queue.pem", "postgate_queue_tls_key_file": f"{p}/queue.key",
            "postgate_queue_tls_client_ca_file": f"{p}/ca.pem", "postgate_queue_tls_require_client_cert": "yes",
            "postgate_queue_admin_client_names": "ops-admin",
            "postgate_queue_tls_ca_file": f"{p}/ca.pem", "postgate_queue_tls_client_cert_file": f"{p}/gateway.pem",
            "postgate_queue_tls_client_key_file": f"{p}/gateway.key"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()
        subprocess.run(["rm", "-rf", cls.pki])

    def queuectl(self, certificate, *args):
        tls = ["--tls-ca", f"{self.pki}/ca.pem"]
        if certificate:
            tls += ["--tls-cert", f"{self.pki}/{certificate}.pem", "--tls-key", f"{self.pki}/{certificate}.key"]
        return subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                               "--timeout", "5", *tls, *args], capture_output=True, text=True, timeout=60)

    def test_gateway_enqueues_over_mtls_and_operators_act_by_certificate(self):
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("x@example.org",))).group(0)
        wait_for(lambda: "deferred" in self.queuectl("operator", "show", queue_id).stdout)
        held = self.queuectl("operator", "hold", queue_id)
        self.assertEqual(held.returncode, 0, held.stderr)
        # The gateway's certificate is valid but not an operator's.
        refused = self.queuectl("gateway", "release", queue_id)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("missing bearer token", refused.stderr)
        # Its token still works for it.
        with_token = self.queuectl("gateway", "--token-file", self.postgate.token_file, "release", queue_id)
        self.assertEqual(with_token.returncode, 0, with_token.stderr)

    def test_clients_without_certificate_or_tls_are_turned_away(self):
        self.assertEqual(self.queuectl(None, "status").returncode, 1)
        plain = subprocess.run([os.path.join(BIN_DIR, "queuectl"), "--server", f"127.0.0.1:{self.postgate.grpc_port}",
                                "--timeout", "5", "status"], capture_output=True, text=True, timeout=60)
        self.assertEqual(plain.returncode, 1)
        with open(f"{self.pki}/ca.pem", "rb") as ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        with grpc.secure_channel(f"127.0.0.1:{self.postgate.grpc_port}", credentials) as channel:
            with self.assertRaises(grpc.RpcError) as error:
                queue_pb2_grpc.QueueServiceStub(channel).GetQueueStatus(queue_pb2.GetQueueStatusRequest(), timeout=5)
            self.assertEqual(error.exception.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
