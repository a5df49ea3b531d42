"""The Helm chart and the kustomize manifests, offline (there is no API server here): helm lint
--strict, helm template with defaults and with non-default values, yamllint, schema validation of
every rendered object (kubernetes-models), the values schema, the open-relay guard, and the
chart-vs-kustomize comparison."""
import base64
import copy
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, ".tools")
HELM = os.path.join(TOOLS, "bin/helm")
KUBECTL = os.path.join(TOOLS, "bin/kubectl")
CHART = os.path.join(ROOT, "deploy/helm/postgate")
KUSTOMIZE = os.path.join(ROOT, "deploy/kubernetes")
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
TEST_CERT = os.path.join(ROOT, "scripts/make-snakeoil-cert.sh")

VARIANTS = {
    "defaults": [],
    "tls": ["--set", "tls.enabled=true", "--set", "tls.securityLevel=encrypt",
            "--set-file", "tls.cert={dir}/snakeoil.pem", "--set-file", "tls.key={dir}/snakeoil.key"],
    "hpa": ["--set", "gateway.autoscaling.enabled=true", "--set", "gateway.autoscaling.maxReplicas=8"],
    "three-queues": ["--set", "queue.replicaCount=3"],
    "proxy-protocol": ["--set", "gateway.proxyProtocol.enabled=true",
                       "--set", "gateway.proxyProtocol.trustedNetworks={10.0.0.0/8}",
                       "--set", "mainCf.mynetworks=127.0.0.0/8 10.244.0.0/16"],
    "monitoring": ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true"],
    "relay-auth": ["--set", "relayAuth.enabled=true",
                   "--set", "relayAuth.passwordMaps=[smtp.example.net]:587 user:chart-test-secret",
                   "--set", "mainCf.relayhost=[smtp.example.net]:587", "--set", "mainCf.defer_transports=",
                   "--set", "mainCf.smtp_tls_security_level=encrypt",
                   "--set", "mainCf.smtp_sasl_tls_security_options=noanonymous"],
    "submission": ["--set", "tls.enabled=true", "--set-file", "tls.cert={dir}/snakeoil.pem",
                   "--set-file", "tls.key={dir}/snakeoil.key", "--set", "submission.enabled=true",
                   "--set", "smtps.enabled=true", "--set", "saslUsers.users=app1:$y$j9T$x$y"],
    "dkim": ["--set", "dkim.enabled=true", "--set", "dkim.existingSecret=mail-dkim"],
    "milter-sidecar": ["-f", os.path.join(CHART, "..", "examples", "milter-rspamd-sidecar.yaml")],
    "tables": ["--set-string", "tables.sender_access=example.com OK",
               "--set", "mainCf.smtpd_sender_restrictions=check_sender_access texthash:/etc/postgate/sender_access\\, reject"],
    "console": ["--set", "console.enabled=true", "--set", "console.ingress.enabled=true",
                "--set", "console.ingress.host=queue.example.org", "--set", "console.ingress.className=nginx",
                "--set", "console.ingress.tls[0].secretName=console-tls",
                "--set", "console.ingress.tls[0].hosts[0]=queue.example.org",
                "--set", "console.networkPolicy.from[0].namespaceSelector.matchLabels.name=ingress-nginx"],
    "console-proxy": ["--set", "console.enabled=true", "--set", "console.trustedUserHeader=X-Forwarded-User",
                      "--set", "console.trustedProxies={10.244.0.0/16}", "--set", "console.readAccess=open"],
    "nodeport-local": ["--set", "gateway.service.type=NodePort", "--set", "gateway.service.nodePort=30025",
                       "--set", "gateway.service.externalTrafficPolicy=Local",
                       "--set", "mainCf.mynetworks=127.0.0.0/8 10.244.7.0/24"],
}


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def documents(text):
    return [d for d in yaml.safe_load_all(text) if d]


def by_key(docs):
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def without_helm_labels(document):
    document = copy.deepcopy(document)
    labels = document.get("metadata", {}).get("labels", {})
    for key in HELM_ONLY_LABELS:
        labels.pop(key, None)
    return document


class ChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="postgate-chart-")
        subprocess.run([TEST_CERT, cls.dir], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def template(self, args, release="pg", namespace="mail"):
        args = [a.replace("{dir}", self.dir) for a in args]
        result = run([HELM, "template", release, CHART, "--namespace", namespace, *args])
        return result

    def render(self, args, **kwargs):
        result = self.template(args, **kwargs)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def check_rendered(self, name, text):
        path = os.path.join(self.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        lint = run(["yamllint", "-d", "{extends: relaxed, rules: {line-length: {max: 160}}}", path])
        self.assertEqual(lint.returncode, 0, lint.stdout)
        valid = run(["node", os.path.join(ROOT, "tests/deploy/validate.mjs"), path],
                    env={**os.environ, "POSTGATE_NODE_MODULES": os.path.join(TOOLS, "node/node_modules")})
        self.assertEqual(valid.returncode, 0, valid.stdout + valid.stderr)
        return by_key(documents(text))

    def test_lint_strict_every_variant(self):
        for name, args in VARIANTS.items():
            with self.subTest(variant=name):
                args = [a.replace("{dir}", self.dir) for a in args]
                result = run([HELM, "lint", "--strict", CHART, *args])
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_variant_renders_valid_objects(self):
        for name, args in VARIANTS.items():
            with self.subTest(variant=name):
                objects = self.check_rendered(name, self.render(args))
                gateway = objects[("Deployment", "pg-postgate-gateway")]
                queue = objects[("StatefulSet", "pg-postgate-queue")]
                for workload in (gateway, queue):
                    pod = workload["spec"]["template"]["spec"]
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                    self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
                    container = pod["containers"][0]
                    self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
                    self.assertEqual(container["securityContext"]["capabilities"]["drop"], ["ALL"])
                    self.assertIn("limits", container["resources"])
                    self.assertTrue(pod["topologySpreadConstraints"])
                self.assertEqual(queue["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "spool")
                main_cf = objects[("ConfigMap", "pg-postgate-config")]["data"]["main.cf"]
                self.assertIn("postgate_queue_address = dns:///pg-postgate-queue-headless.mail.svc.cluster.local:50051",
                              main_cf)
                smtp = objects[("Service", "pg-postgate-smtp")]
                self.assertEqual(smtp["spec"]["ports"][0]["port"], 25)
                self.assertEqual(smtp["spec"]["ports"][0]["targetPort"], "smtp")
                self.assertEqual(objects[("Service", "pg-postgate-queue-headless")]["spec"]["clusterIP"], "None")
                self.check_variant(name, objects, main_cf)

    def check_variant(self, name, objects, main_cf):
        gateway = objects[("Deployment", "pg-postgate-gateway")]
        queue = objects[("StatefulSet", "pg-postgate-queue")]
        if name == "defaults":
            self.assertEqual(gateway["spec"]["replicas"], 2)
            self.assertNotIn(("HorizontalPodAutoscaler", "pg-postgate-gateway"), objects)
            self.assertIn("smtpd_tls_security_level = none", main_cf)
            self.assertIn(("NetworkPolicy", "pg-postgate-queue"), objects)
            self.assertIn(("PodDisruptionBudget", "pg-postgate-queue"), objects)
            self.assertIn(("ConfigMap", "pg-postgate-dashboard"), objects)
            self.assertIn(("Secret", "pg-postgate-admin"), objects)
            self.assertEqual(objects[("Service", "pg-postgate-smtp")]["spec"]["type"], "LoadBalancer")
        elif name == "tls":
            self.assertIn("smtpd_tls_security_level = encrypt", main_cf)
            self.assertEqual(objects[("Secret", "pg-postgate-tls")]["type"], "kubernetes.io/tls")
            mounts = gateway["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            self.assertIn("/run/secrets/postgate/tls", [m["mountPath"] for m in mounts])
        elif name == "hpa":
            hpa = objects[("HorizontalPodAutoscaler", "pg-postgate-gateway")]
            self.assertEqual(hpa["spec"]["maxReplicas"], 8)
            self.assertNotIn("replicas", gateway["spec"])
        elif name == "three-queues":
            self.assertEqual(queue["spec"]["replicas"], 3)
            args = queue["spec"]["template"]["spec"]["containers"][0]["args"]
            self.assertIn("postgate_queue_replica_id=$(POD_INDEX)", args)
        elif name == "proxy-protocol":
            self.assertIn("smtpd_upstream_proxy_protocol = haproxy", main_cf)
            self.assertIn("postgate_proxy_networks = 10.0.0.0/8", main_cf)
        elif name == "monitoring":
            for component in ("gateway", "queue"):
                monitor = objects[("ServiceMonitor", f"pg-postgate-{component}")]
                self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")
            rule = objects[("PrometheusRule", "pg-postgate")]
            with open(os.path.join(CHART, "files/postgate-rules.yml")) as f:
                self.assertEqual(rule["spec"]["groups"], yaml.safe_load(f)["groups"])
        elif name == "relay-auth":
            self.assertIn("smtp_sasl_auth_enable = yes", main_cf)
            self.assertIn("smtp_sasl_password_maps = texthash:/run/secrets/postgate/sasl/sasl_passwd", main_cf)
            self.assertNotIn("chart-test-secret", main_cf)  # The password is in the Secret only.
            secret = objects[("Secret", "pg-postgate-relay-auth")]
            self.assertEqual(base64.b64decode(secret["data"]["sasl_passwd"]).decode(),
                             "[smtp.example.net]:587 user:chart-test-secret")
            pod = queue["spec"]["template"]["spec"]
            # A directory mount (no subPath), so a rotated Secret reaches the running pod.
            mount = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "relay-auth"][0]
            self.assertEqual(mount["mountPath"], "/run/secrets/postgate/sasl")
            self.assertNotIn("subPath", mount)
            self.assertIn({"name": "relay-auth", "secret": {"secretName": "pg-postgate-relay-auth", "defaultMode": 0o440}},
                          pod["volumes"])
            gateway_mounts = gateway["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            self.assertNotIn("relay-auth", [m["name"] for m in gateway_mounts])  # Only queue-service logs in.
        elif name in ("console", "console-proxy"):
            self.check_console(name, objects)
        elif name == "nodeport-local":
            smtp = objects[("Service", "pg-postgate-smtp")]
            self.assertEqual(smtp["spec"]["ports"][0]["nodePort"], 30025)
            self.assertIn("postgate_client_address_preserved = yes", main_cf)

    def check_console(self, name, objects):
        deployment = objects[("Deployment", "pg-postgate-console")]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        self.assertEqual(container["image"], objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]
                         ["containers"][0]["image"])  # queue-console ships in the queue image.
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        self.assertIn("--server=dns:///pg-postgate-queue-headless.mail.svc.cluster.local:50051", container["args"])
        self.assertIn("--token-file=/run/secrets/postgate/admin/token", container["args"])
        self.assertIn({"name": "admin-token", "secret": {"secretName": "pg-postgate-admin"}}, pod["volumes"])
        service = objects[("Service", "pg-postgate-console")]
        self.assertEqual(service["spec"]["type"], "ClusterIP")
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], "http")
        # The queue's NetworkPolicy admits the console to its gRPC port; the console's own admits HTTP.
        queue_policy = objects[("NetworkPolicy", "pg-postgate-queue")]["spec"]["ingress"][0]
        console_peers = [p for p in queue_policy["from"]
                         if p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "console"]
        self.assertEqual(len(console_peers), 1)
        self.assertEqual(queue_policy["ports"], [{"port": "grpc", "protocol": "TCP"}])
        console_policy = objects[("NetworkPolicy", "pg-postgate-console")]["spec"]
        self.assertEqual(console_policy["ingress"][0]["ports"], [{"port": "http", "protocol": "TCP"}])
        if name == "console":
            self.assertIn("--read-access=sign-in", container["args"])
            ingress = objects[("Ingress", "pg-postgate-console")]["spec"]
            self.assertEqual(ingress["ingressClassName"], "nginx")
            self.assertEqual(ingress["rules"][0]["host"], "queue.example.org")
            self.assertEqual(ingress["rules"][0]["http"]["paths"][0]["backend"]["service"],
                             {"name": "pg-postgate-console", "port": {"name": "http"}})
            self.assertEqual(ingress["tls"], [{"secretName": "console-tls", "hosts": ["queue.example.org"]}])
            self.assertEqual(console_policy["ingress"][0]["from"],
                             [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}])
        else:
            self.assertIn("--read-access=open", container["args"])
            self.assertIn("--trusted-user-header=X-Forwarded-User", container["args"])
            self.assertIn("--trusted-proxy=10.244.0.0/16", container["args"])
            self.assertNotIn(("Ingress", "pg-postgate-console"), objects)
            self.assertNotIn("from", console_policy["ingress"][0])

    def test_console_is_off_by_default_and_refuses_an_unsafe_setup(self):
        objects = by_key(documents(self.render([])))
        self.assertFalse([key for key in objects if key[1].endswith("-console")])
        queue_policy = objects[("NetworkPolicy", "pg-postgate-queue")]["spec"]["ingress"][0]
        self.assertEqual(len(queue_policy["from"]), 2)  # Gateways and queue replicas only.
        for args, expected in (
                (["--set", "console.enabled=true", "--set", "console.trustedUserHeader=X-User"], "needs console.trustedProxies"),
                (["--set", "console.enabled=true", "--set", "console.ingress.enabled=true"], "needs console.ingress.host"),
                (["--set", "console.readAccess=everyone"], "readAccess"),
                (["--set", "console.trustedUserHeader=X User"], "trustedUserHeader")):
            with self.subTest(args=args):
                result = self.template(args)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(expected, result.stderr)

    def test_values_schema_rejects_unknown_and_mistyped_values(self):
        for args, expected in (
                (["--set", "mainCf.mynetwork=127.0.0.0/8"], "additional properties 'mynetwork' not allowed"),
                (["--set", "mainCf.postgate_data_directory=/x"], "additional properties 'postgate_data_directory'"),
                (["--set", "mainCf.message_size_limit=big"], "mainCf/message_size_limit"),
                (["--set", "queue.replicaCount=17"], "replicaCount"),
                (["--set", "gatway.replicaCount=3"], "additional properties 'gatway' not allowed")):
            with self.subTest(args=args):
                result = self.template(args)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(expected, result.stderr)

    def test_schema_is_generated_from_the_parameter_table(self):
        result = run([os.path.join(ROOT, "scripts/chart-schema.py"), "--check"])
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_refuses_the_accidental_open_relay(self):
        result = self.template(["--set", "mainCf.mynetworks=127.0.0.0/8 10.244.3.0/24"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("mainCf.mynetworks: 10.244.3.0/24 overlaps the cluster range 10.244.0.0/16", result.stderr)
        result = self.template(["--set", "mainCf.mynetworks=10.0.0.0/8", "--set", "cluster.nodeNetworks={10.128.0.0/20}"])
        self.assertIn("overlaps the cluster range", result.stderr)
        # Either way of keeping client addresses makes it safe; an unrelated range is fine anyway.
        self.render(["--set", "mainCf.mynetworks=10.244.3.0/24", "--set", "gateway.service.externalTrafficPolicy=Local"])
        self.render(["--set", "mainCf.mynetworks=127.0.0.0/8 192.168.0.0/24"])
        result = self.template(["--set", "gateway.proxyProtocol.enabled=true"])
        self.assertIn("needs gateway.proxyProtocol.trustedNetworks", result.stderr)

    def test_admin_token_is_random_unless_given(self):
        first = by_key(documents(self.render([])))[("Secret", "pg-postgate-admin")]["data"]["token"]
        second = by_key(documents(self.render([])))[("Secret", "pg-postgate-admin")]["data"]["token"]
        self.assertNotEqual(first, second)
        objects = by_key(documents(self.render(["--set", "adminToken.existingSecret=mine"])))
        self.assertNotIn(("Secret", "pg-postgate-admin"), objects)
        volumes = objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]["volumes"]
        self.assertIn({"name": "admin-token", "secret": {"secretName": "mine"}}, volumes)

    def test_relay_auth_needs_a_secret_and_takes_an_existing_one(self):
        result = self.template(["--set", "relayAuth.enabled=true"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("relayAuth.enabled needs relayAuth.existingSecret, or relayAuth.passwordMaps", result.stderr)
        objects = by_key(documents(self.render(["--set", "relayAuth.enabled=true",
                                                "--set", "relayAuth.existingSecret=provider-login"])))
        self.assertNotIn(("Secret", "pg-postgate-relay-auth"), objects)
        volumes = objects[("StatefulSet", "pg-postgate-queue")]["spec"]["template"]["spec"]["volumes"]
        self.assertIn({"name": "relay-auth", "secret": {"secretName": "provider-login", "defaultMode": 0o440}}, volumes)

    def test_submission_needs_tls_and_users_and_port_25_auth_can_use_them(self):
        result = self.template(["--set", "submission.enabled=true"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("submission and smtps need tls.enabled", result.stderr)
        # saslUsers alone: the file is mounted for mainCf's smtpd_sasl_auth_enable on port 25.
        objects = by_key(documents(self.render(["--set", "saslUsers.existingSecret=submission-users",
                                                "--set", "mainCf.smtpd_sasl_auth_enable=yes"])))
        self.assertNotIn(("Secret", "pg-postgate-sasl-users"), objects)
        volumes = objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]["volumes"]
        self.assertIn({"name": "sasl-users", "secret": {"secretName": "submission-users"}}, volumes)
        config = objects[("ConfigMap", "pg-postgate-config")]["data"]
        self.assertIn("postgate_smtpd_sasl_users_file = /run/secrets/postgate/users/users", config["main.cf"])
        self.assertNotIn("master.cf", config)

    def test_dkim_needs_an_existing_secret_mounted_where_main_cf_points(self):
        result = self.template(["--set", "dkim.enabled=true"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("dkim.enabled needs dkim.existingSecret", result.stderr)
        objects = by_key(documents(self.render(["--set", "dkim.enabled=true", "--set", "dkim.existingSecret=mail-dkim"])))
        pod = objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]
        self.assertIn({"name": "dkim", "secret": {"secretName": "mail-dkim"}}, pod["volumes"])
        self.assertIn({"name": "dkim", "mountPath": "/run/secrets/postgate/dkim", "readOnly": True},
                      pod["containers"][0]["volumeMounts"])
        main_cf = objects[("ConfigMap", "pg-postgate-config")]["data"]["main.cf"]
        self.assertIn("postgate_dkim_key_table = /run/secrets/postgate/dkim/KeyTable", main_cf)
        self.assertIn("postgate_dkim_signing_table = /run/secrets/postgate/dkim/SigningTable", main_cf)
        notes = run([HELM, "install", "pg", CHART, "--namespace", "mail", "--dry-run=client",
                     "--set", "dkim.enabled=true", "--set", "dkim.existingSecret=mail-dkim"])
        self.assertIn("kubectl -n mail exec deployment/pg-postgate-gateway -- smtp-gateway --config "
                      "/etc/postgate/main.cf --dkim-records", notes.stdout)
        self.assertNotIn("dkim", self.render([]).lower())

    def test_milter_sidecar_shares_a_socket_volume_and_the_spool_is_sized(self):
        objects = by_key(documents(self.render([a for a in VARIANTS["milter-sidecar"]])))
        pod = objects[("Deployment", "pg-postgate-gateway")]["spec"]["template"]["spec"]
        self.assertEqual([c["name"] for c in pod["containers"]], ["smtp-gateway", "rspamd"])
        self.assertIn({"name": "milter-sockets", "mountPath": "/run/milter"}, pod["containers"][0]["volumeMounts"])
        self.assertIn({"name": "milter-spool", "mountPath": "/var/spool/postgate-milter"},
                      pod["containers"][0]["volumeMounts"])
        self.assertIn({"name": "milter-spool", "emptyDir": {"sizeLimit": "2Gi"}}, pod["volumes"])
        main_cf = objects[("ConfigMap", "pg-postgate-config")]["data"]["main.cf"]
        self.assertIn("smtpd_milters = unix:/run/milter/rspamd.sock", main_cf)
        self.assertIn("postgate_milter_spool_directory = /var/spool/postgate-milter", main_cf)
        self.assertIn({"name": "rspamd-local", "configMap": {"name": "rspamd-local"}}, pod["volumes"])
        # A sidecar without an image is refused by the values schema.
        result = self.template(["--set-json", 'milters.sidecars=[{"name": "x"}]'])
        self.assertNotEqual(result.returncode, 0)

    def test_tables_become_files_beside_main_cf(self):
        objects = by_key(documents(self.render(["--set-string", "tables.sender_access=example.com OK",
                                                "--set-string", "tables.header_checks=/^X-Spam: yes/ HOLD"])))
        data = objects[("ConfigMap", "pg-postgate-config")]["data"]
        self.assertEqual(data["sender_access"], "example.com OK\n")
        self.assertEqual(data["header_checks"], "/^X-Spam: yes/ HOLD\n")
        result = self.template(["--set-string", "tables.main\\.cf=x"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("tables.main.cf: that name is the chart's own file", result.stderr)

    def test_notes_tell_how_to_send_and_query(self):
        result = run([HELM, "install", "pg", CHART, "--namespace", "mail", "--dry-run=client"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("swaks --server", result.stdout)
        self.assertIn("queuectl list", result.stdout)
        self.assertNotIn("web console", result.stdout)
        console = run([HELM, "install", "pg", CHART, "--namespace", "mail", "--dry-run=client", "--set", "console.enabled=true"])
        self.assertIn("kubectl -n mail port-forward service/pg-postgate-console 8025:80", console.stdout)
        self.assertIn("kubectl -n mail get secret pg-postgate-admin -o jsonpath='{.data.token}' | base64 -d", console.stdout)

    def test_kustomize_base_equals_the_chart_defaults(self):
        chart = {key: without_helm_labels(d) for key, d in by_key(documents(
            self.render([], release="postgate", namespace="postgate"))).items() if key[0] != "Secret"}
        base = run([KUBECTL, "kustomize", os.path.join(KUSTOMIZE, "base")])
        self.assertEqual(base.returncode, 0, base.stderr)
        kustomized = by_key(documents(base.stdout))
        self.assertEqual(sorted(kustomized), sorted(chart))
        for key in chart:
            self.assertEqual(kustomized[key], chart[key], f"{key} differs: run scripts/render-kustomize-base.py")
        self.check_rendered("kustomize-base", base.stdout)

    def test_example_overlay_builds(self):
        work = os.path.join(self.dir, "kubernetes")
        shutil.copytree(KUSTOMIZE, work)
        with open(os.path.join(work, "overlays/example/admin-token"), "w") as f:
            f.write("an-admin-token\n")
        result = run([KUBECTL, "kustomize", os.path.join(work, "overlays/example")])
        self.assertEqual(result.returncode, 0, result.stderr)
        objects = self.check_rendered("overlay", result.stdout)
        self.assertEqual(objects[("Deployment", "postgate-gateway")]["spec"]["replicas"], 3)
        self.assertIn("token", objects[("Secret", "postgate-admin")]["data"])
        self.assertTrue(all(d["metadata"].get("namespace") == "postgate"
                            for key, d in objects.items() if key[0] != "Namespace"))


if __name__ == "__main__":
    unittest.main()
