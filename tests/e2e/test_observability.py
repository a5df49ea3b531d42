"""Metrics as operators use them: the alert rules and the Grafana dashboard in deploy/ are valid
and only query metrics a real scrape has, and a real Prometheus server scrapes both services."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse
import urllib.request

from postgate_harness import SOURCE_DIR, PostgateTestCase, SmtpConnection, free_port, send_message, wait_for

RULES = os.path.join(SOURCE_DIR, "deploy/prometheus/postgate-rules.yml")
DASHBOARD = os.path.join(SOURCE_DIR, "deploy/grafana/postgate-dashboard.json")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def metric_names(expression):
    """postgate_* metric names an expression reads, without histogram suffixes."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"postgate_[a-z0-9_]+", expression)}


class ObservabilityTest(PostgateTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for _ in range(2):
            send_message(cls.postgate.smtp_port)
        connection = SmtpConnection(cls.postgate.smtp_port)
        connection.read_reply()
        connection.command("MAIL FROM:<foo@mail169.com>")
        connection.command("RCPT TO:<nobody@mail169.com>")
        connection.close()
        cls.postgate.wait_delivered("bar", 2)

    def exported(self):
        names = set()
        for port in (self.postgate.gateway_metrics_port, self.postgate.queue_metrics_port):
            names |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"^(postgate_[a-z0-9_]+)", scrape(port), re.M)}
        return names

    def test_rules_are_valid_and_fire_as_tested(self):
        checked = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True, timeout=60)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("SUCCESS: 5 rules found", checked.stdout)
        tested = subprocess.run(["promtool", "test", "rules", RULES.replace(".yml", ".test.yml")],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(tested.returncode, 0, tested.stdout + tested.stderr)

    def test_rules_and_dashboard_only_use_exported_metrics(self):
        exported = self.exported()
        with open(RULES) as f:
            rule_metrics = metric_names(f.read())
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        dashboard_metrics = set()
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                dashboard_metrics |= metric_names(target["expr"])
        self.assertEqual(dashboard["uid"], "postgate")
        self.assertGreaterEqual(len(dashboard["panels"]), 10)
        self.assertTrue(rule_metrics and dashboard_metrics)
        self.assertEqual(rule_metrics - exported, set())
        self.assertEqual(dashboard_metrics - exported, set())

    def test_no_unbounded_labels(self):
        for port in (self.postgate.gateway_metrics_port, self.postgate.queue_metrics_port):
            text = scrape(port)
            labels = re.findall(r"^postgate_[a-z0-9_]+\{([^}]*)\}", text, re.M)
            self.assertTrue(labels)
            for label_set in labels:
                self.assertNotRegex(label_set, r"@|[0-9A-F]{13}", "no addresses or queue IDs in labels")

    def test_prometheus_server_scrapes_both_services(self):
        directory = tempfile.mkdtemp(prefix="postgate-prom-")
        port = free_port()
        with open(os.path.join(directory, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"rule_files: ['{RULES}']\n"
                    "scrape_configs:\n"
                    f"  - job_name: smtp-gateway\n    static_configs: [{{targets: ['127.0.0.1:{self.postgate.gateway_metrics_port}']}}]\n"
                    f"  - job_name: queue-service\n    static_configs: [{{targets: ['127.0.0.1:{self.postgate.queue_metrics_port}']}}]\n")
        server = subprocess.Popen(["prometheus", f"--config.file={directory}/prometheus.yml",
                                   f"--storage.tsdb.path={directory}/data", f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def query(expression):
                url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        return json.load(response)["data"]["result"]
                except OSError:
                    return []

            up = wait_for(lambda: len(query("up == 1")) == 2 and query("up == 1"), timeout=60, interval=0.5,
                          what="Prometheus to scrape both services")
            self.assertEqual(sorted(r["metric"]["job"] for r in up), ["queue-service", "smtp-gateway"])
            accepted = wait_for(lambda: query("postgate_smtpd_messages_accepted_total"), timeout=30, interval=0.5)
            self.assertEqual(float(accepted[0]["value"][1]), 2.0)
            delivered = wait_for(lambda: query('postgate_queue_deliveries_total{result="sent"}'), timeout=30, interval=0.5)
            self.assertEqual(sum(float(r["value"][1]) for r in delivered), 2.0)
        finally:
            server.terminate()
            server.wait(timeout=30)
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
