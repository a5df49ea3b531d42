"""Render and run: the chart's default rendering, executed on loopback exactly as the kubelet would
start it – each workload's container args (with $(VAR) expanded from its env), the main.cf and
aliases from the rendered ConfigMap, the admin token Secret as a file – then the probes are called
as Kubernetes calls them (grpc.health.v1 on the probe's port and service) and a mail goes through.
What differs from a pod, and why: the mount paths (/etc/postgate, /var/lib/postgate,
/run/secrets/postgate) map to a temporary directory; 0.0.0.0 listeners bind 127.0.0.1; the queue's
DNS name (the headless Service) becomes gRPC's ipv4: address list, since no cluster DNS exists."""
import base64
import http.client
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest
import urllib.parse

import grpc
import yaml

import postgate_test_health_pb2 as health_pb2
import postgate_test_health_pb2_grpc as health_pb2_grpc
from postgate_harness import BIN_DIR, QUEUE_ID, SmtpConnection, Service, insecure_tls_context, send_message, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELM = os.path.join(ROOT, ".tools/bin/helm")
SERVING = health_pb2.HealthCheckResponse.SERVING


def probe(port, service):
    """A Kubernetes grpc probe: Check(service) on the port; SERVING passes, anything else fails."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1).status == SERVING
    except grpc.RpcError:
        return False


class RenderAndRunTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-render-")
        self.render()
        self.services = []

    def render(self, *extra):
        rendered = subprocess.run([HELM, "template", "pg", os.path.join(ROOT, "deploy/helm/postgate"), "-n", "mail",
                                   "--set", "mainCf.postgate_local_users=bar",
                                   "--set", "mainCf.mydestination=mail169.com", *extra],
                                  check=True, capture_output=True, text=True).stdout
        self.objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}

    def tearDown(self):
        for service in self.services:
            service.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, pod_path):
        for prefix, local in (("/etc/postgate", "etc"), ("/var/lib/postgate", "spool"),
                              ("/run/secrets/postgate", "secrets")):
            if pod_path.startswith(prefix):
                return os.path.join(self.dir, local) + pod_path[len(prefix):]
        return pod_path

    def materialize(self, grpc_port):
        config = self.objects[("ConfigMap", "pg-postgate-config")]["data"]
        os.makedirs(self.path("/etc/postgate"))
        main_cf = config["main.cf"]
        main_cf = re.sub(r"(/etc/postgate|/var/lib/postgate|/run/secrets/postgate)[^\s,]*",
                         lambda m: self.path(m.group(0)), main_cf)
        main_cf = main_cf.replace("0.0.0.0:", "127.0.0.1:")
        main_cf = re.sub(r"postgate_queue_address = dns:///\S+", f"postgate_queue_address = ipv4:127.0.0.1:{grpc_port}",
                         main_cf)
        with open(self.path("/etc/postgate/main.cf"), "w") as f:
            f.write(main_cf)
        with open(self.path("/etc/postgate/aliases"), "w") as f:
            f.write(config["aliases"])
        if "master.cf" in config:
            with open(self.path("/etc/postgate/master.cf"), "w") as f:
                f.write(config["master.cf"])
        # The other Secrets the gateway mounts, as the kubelet writes them: one file per key.
        gateway_pod = self.objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]
        mounts = {m["name"]: m["mountPath"] for m in gateway_pod["containers"][0]["volumeMounts"]}
        for volume in gateway_pod["volumes"]:
            if "secret" in volume and volume["name"] in mounts:
                directory = self.path(mounts[volume["name"]])
                os.makedirs(directory, exist_ok=True)
                for key, value in self.objects[("Secret", volume["secret"]["secretName"])]["data"].items():
                    with open(os.path.join(directory, key), "wb") as f:
                        f.write(base64.b64decode(value))
        secret = self.objects[("Secret", "pg-postgate-admin")]["data"]["token"]
        os.makedirs(self.path("/run/secrets/postgate/admin"))
        with open(self.path("/run/secrets/postgate/admin/token"), "wb") as f:
            f.write(base64.b64decode(secret))
        os.makedirs(self.path("/var/lib/postgate"))
        return main_cf

    def command(self, container, env):
        argv = [self.path(a) for a in container["args"]]
        argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in argv]
        return argv

    def test_rendered_workloads_run_and_pass_their_probes(self):
        queue_pod = self.objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]
        gateway_pod = self.objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]
        queue_container, gateway_container = queue_pod["containers"][0], gateway_pod["containers"][0]
        grpc_port = next(p["containerPort"] for p in queue_container["ports"] if p["name"] == "grpc")
        main_cf = self.materialize(grpc_port)
        self.assertIn("postgate_queue_listen = 127.0.0.1:50051", main_cf)

        # Pod 0 of the StatefulSet: the downward API gives POD_INDEX=0.
        env = {"POD_INDEX": "0"}
        queue_argv = self.command(queue_container, env)
        self.assertEqual(queue_argv[-2:], ["-o", "postgate_queue_replica_id=0"])
        self.services.append(Service([os.path.join(BIN_DIR, "queue-service"), *queue_argv], "queue-service"))
        self.services[-1].wait_log(r"listening grpc=")
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = queue_container[kind]["grpc"]
            wait_for(lambda: probe(spec["port"], spec.get("service", "")), timeout=10, what=f"queue {kind}")

        self.services.append(Service([os.path.join(BIN_DIR, "smtp-gateway"), *self.command(gateway_container, {})],
                                     "smtp-gateway"))
        self.services[-1].wait_log(r"listening smtp=")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            spec = gateway_container[kind]["grpc"]
            wait_for(lambda: probe(spec["port"], spec.get("service", "")), timeout=10, what=f"gateway {kind}")

        # The SMTP container port the Service targets.
        smtp_port = next(p["containerPort"] for p in gateway_container["ports"] if p["name"] == "smtp")
        self.assertEqual(self.objects[("Service", "pg-postgate-smtp")]["spec"]["ports"][0]["targetPort"], "smtp")
        connection = SmtpConnection(smtp_port)
        self.assertEqual(connection.read_reply(), "220 mail.example.com ESMTP Postgate\r\n")
        connection.close()
        reply = send_message(smtp_port, sender="foo@example.com", recipients=("bar@mail169.com",))
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        queue_id = re.search(QUEUE_ID, reply).group(0)
        self.assertEqual(int(queue_id[-1], 16), 0)
        new = os.path.join(self.path("/var/lib/postgate"), "mail/bar/new")
        wait_for(lambda: os.path.isdir(new) and os.listdir(new),
                 what="delivery into the spool volume's Maildir")

        # The queue going away makes the gateway not ready, but still live (no restart loop).
        self.services[0].stop()
        wait_for(lambda: not probe(9111, "readiness"), timeout=10, what="gateway readiness to fail")
        self.assertTrue(probe(9111, ""))

    def test_submission_and_smtps_as_rendered(self):
        """submission (587 → 2587) and smtps (465 → 2465) from the chart's master.cf, with the TLS and
        users Secrets it mounts: a login and a message on each; port 25 offers no AUTH."""
        cert_dir = os.path.join(self.dir, "cert")
        subprocess.run([os.path.join(ROOT, "scripts/make-snakeoil-cert.sh"), cert_dir], check=True, capture_output=True)
        hashed = subprocess.run(["mkpasswd", "-m", "yescrypt", "Chart-Pass-5"], check=True, capture_output=True,
                                text=True).stdout.strip()
        self.render("--set", "submission.enabled=true", "--set", "smtps.enabled=true", "--set", "tls.enabled=true",
                    "--set-file", f"tls.cert={cert_dir}/snakeoil.pem", "--set-file", f"tls.key={cert_dir}/snakeoil.key",
                    "--set", f"saslUsers.users=foo:{hashed}")
        service_ports = {p["name"]: p["port"] for p in self.objects[("Service", "pg-postgate-smtp")]["spec"]["ports"]}
        self.assertEqual(service_ports, {"smtp": 25, "submission": 587, "smtps": 465})
        queue_pod = self.objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]
        gateway_container = self.objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]["containers"][0]
        self.materialize(next(p["containerPort"] for p in queue_pod["containers"][0]["ports"] if p["name"] == "grpc"))
        self.services.append(Service([os.path.join(BIN_DIR, "queue-service"),
                                      *self.command(queue_pod["containers"][0], {"POD_INDEX": "0"})], "queue-service"))
        self.services[-1].wait_log(r"listening grpc=")
        self.services.append(Service([os.path.join(BIN_DIR, "smtp-gateway"), *self.command(gateway_container, {})],
                                     "smtp-gateway"))
        self.services[-1].wait_log(r"listening smtp=\S+ 2587=\S+:2587 2465=\S+:2465 ")
        ports = {p["name"]: p["containerPort"] for p in gateway_container["ports"]}
        context = insecure_tls_context()  # The test's self-signed certificate.
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=15) as client:
            client.ehlo("client.test")
            self.assertFalse(client.has_extn("auth"))
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=15) as client:
            client.starttls(context=context)
            client.login("foo", "Chart-Pass-5")
            self.assertEqual(client.sendmail("foo@example.com", ["bar@mail169.com"], "Subject: 587\r\n\r\nx\r\n"), {})
        with smtplib.SMTP_SSL("127.0.0.1", ports["smtps"], context=context, timeout=15) as client:
            client.login("foo", "Chart-Pass-5")
            self.assertEqual(client.sendmail("foo@example.com", ["bar@mail169.com"], "Subject: 465\r\n\r\nx\r\n"), {})
        new = os.path.join(self.path("/var/lib/postgate"), "mail/bar/new")
        wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 2, what="both messages in bar's Maildir")

    def test_console_as_rendered_signs_in_with_the_secret_and_shows_the_queue(self):
        """console.enabled: queue-console with the rendered args (its --server the headless Service,
        here the one replica's loopback address), the kubelet's httpGet probes, a sign-in with the
        admin token from the rendered Secret, and the overview naming the replica."""
        self.render("--set", "console.enabled=true")
        queue_pod = self.objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]
        console = self.objects[("Deployment", "pg-postgate-console")]["spec"]["template"]["spec"]["containers"][0]
        grpc_port = next(p["containerPort"] for p in queue_pod["containers"][0]["ports"] if p["name"] == "grpc")
        self.materialize(grpc_port)
        self.services.append(Service([os.path.join(BIN_DIR, "queue-service"),
                                      *self.command(queue_pod["containers"][0], {"POD_INDEX": "0"})], "queue-service"))
        self.services[-1].wait_log(r"listening grpc=")
        self.assertEqual(console["command"], ["/usr/local/bin/queue-console"])
        # "--flag=/pod/path" → the local path, as command() does for whole arguments.
        argv = [a.split("=", 1)[0] + "=" + self.path(a.split("=", 1)[1]) if "=" in a else a for a in console["args"]]
        argv = [a.replace("0.0.0.0:", "127.0.0.1:") for a in argv]
        self.assertIn("--server=dns:///pg-postgate-queue-headless.mail.svc.cluster.local:50051", argv)
        argv = [f"--server=127.0.0.1:{grpc_port}" if a.startswith("--server=") else a for a in argv]
        self.services.append(Service([os.path.join(BIN_DIR, "queue-console"), *argv], "queue-console"))
        http_port = next(p["containerPort"] for p in console["ports"] if p["name"] == "http")
        self.services[-1].wait_log(rf"listening on http://127\.0\.0\.1:{http_port}/")

        def get(path, headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            try:
                connection.request("GET", path, headers=headers or {})
                response = connection.getresponse()
                return response.status, response.getheader("Set-Cookie"), response.read().decode()
            finally:
                connection.close()

        for kind in ("readinessProbe", "livenessProbe"):
            self.assertEqual(console[kind]["httpGet"]["port"], "http")
            self.assertEqual(get(console[kind]["httpGet"]["path"])[0], 200, kind)
        token = base64.b64decode(self.objects[("Secret", "pg-postgate-admin")]["data"]["token"]).decode()
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        connection.request("POST", "/login", body=urllib.parse.urlencode({"operator": "k8s-admin", "token": token}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        connection.close()
        self.assertEqual(response.status, 303)
        cookie = response.getheader("Set-Cookie").split(";", 1)[0]
        status, _, page = get("/", {"Cookie": cookie})
        self.assertEqual(status, 200)
        self.assertIn(f"127.0.0.1:{grpc_port}", page)
        self.assertIn("<td>0</td>", page)  # Replica 0 answered.


if __name__ == "__main__":
    unittest.main()
