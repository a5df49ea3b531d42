"""A bad main.cf stops each service at start with "file:line: parameter: what is wrong"."""
import os
import subprocess
import tempfile
import unittest

from postgate_harness import BIN_DIR, SOURCE_DIR


class ConfigErrorsTest(unittest.TestCase):
    def run_with(self, binary, extra_lines, *flags):
        with tempfile.TemporaryDirectory() as directory:
            config = os.path.join(directory, "main.cf")
            with open(os.path.join(SOURCE_DIR, "config/main.cf")) as source:
                base = source.read()
            with open(os.path.join(directory, "aliases"), "w") as aliases:
                aliases.write("postmaster: bar\n")
            with open(config, "w") as out:
                # The TLS files of config/main.cf live under the data directory: point it here.
                out.write(base + f"postgate_data_directory = {directory}/var\n" + extra_lines)
            subprocess.run([os.path.join(SOURCE_DIR, "scripts/make-snakeoil-cert.sh"), f"{directory}/var/tls"],
                           check=True, capture_output=True)
            line = base.count("\n") + 2  # The line appended after the data directory one.
            argv = [os.path.join(BIN_DIR, binary), "--config", config, "--metrics", "127.0.0.1:0", *flags]
            if binary == "queue-service":
                argv += ["--data-dir", os.path.join(directory, "var"), "--listen", "127.0.0.1:0"]
            else:
                argv += ["--listen", "127.0.0.1:0"]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return result, config, line

    def assertFailsWith(self, binary, extra_lines, expected_suffix, *flags):
        result, config, line = self.run_with(binary, extra_lines, *flags)
        self.assertEqual(result.returncode, 1, result.stderr)
        expected = expected_suffix.replace("FILE", config).replace("LINE", str(line))
        self.assertIn(f"{binary}: fatal: {expected}", result.stderr)

    def test_unknown_parameter_in_both_services(self):
        for binary in ("queue-service", "smtp-gateway"):
            self.assertFailsWith(binary, "mydestinaton = mail169.com\n", "FILE:LINE: mydestinaton: unknown parameter")

    def test_bad_values(self):
        self.assertFailsWith("smtp-gateway", "message_size_limit = 10M\n",
                             'FILE:LINE: message_size_limit: bad numerical value "10M"')
        self.assertFailsWith("queue-service", "queue_run_delay = 5y\n",
                             "FILE:LINE: queue_run_delay: unknown time unit 'y' (use s, m, h, d or w)")
        self.assertFailsWith("smtp-gateway", "mynetworks = 127.0.0.0/8, 192.168.0/24\n",
                             'FILE:LINE: mynetworks: "192.168.0/24" is not a network address')
        self.assertFailsWith("queue-service", "postgate_mailbox_format = mbx\n",
                             "FILE:LINE: postgate_mailbox_format: use maildir or mbox")
        self.assertFailsWith("smtp-gateway", "myorigin = $nosuch\n", "FILE:LINE: myorigin: undefined parameter $nosuch")
        self.assertFailsWith("smtp-gateway", "line_length_limit = 100\n", "FILE:LINE: line_length_limit: 100 is less than 512")
        self.assertFailsWith("queue-service", "notify_classes = bounce, bounces\n",
                             'FILE:LINE: notify_classes: "bounces": use bounce, 2bounce or delay')
        self.assertFailsWith("smtp-gateway", "undisclosed_recipients_header = undisclosed\n",
                             'FILE:LINE: undisclosed_recipients_header: "undisclosed" is not a header: '
                             'need "headername: headervalue"')
        self.assertFailsWith("smtp-gateway", "local_header_rewrite_clients = permit_mynetworks, check_address_map\n",
                             'FILE:LINE: local_header_rewrite_clients: "check_address_map" '
                             "is not supported")
        self.assertFailsWith("smtp-gateway", "postgate_queue_streams = 65\n", "FILE:LINE: postgate_queue_streams: at most 64")
        self.assertFailsWith("smtp-gateway", "alias_maps = dbm:/etc/aliases\n",
                             'FILE:LINE: alias_maps: "dbm:/etc/aliases": unsupported map type (use hash: or texthash:)')

    def test_missing_alias_file_is_named(self):
        result, config, _ = self.run_with("queue-service", "alias_maps = texthash:$config_directory/bad\n")
        self.assertEqual(result.returncode, 1)
        self.assertIn("alias_maps:", result.stderr)
        self.assertIn("cannot open", result.stderr)

    def test_tls_problems(self):
        self.assertFailsWith("smtp-gateway", "smtpd_tls_security_level = sometimes\n",
                             'FILE:LINE: smtpd_tls_security_level: "sometimes": use none, may or encrypt')
        result, _, _ = self.run_with("smtp-gateway", "smtpd_tls_cert_file = /nonexistent/cert.pem\n")
        self.assertEqual(result.returncode, 1)
        self.assertIn("smtp-gateway: fatal: smtpd_tls_cert_file: /nonexistent/cert.pem: cannot load certificate", result.stderr)

    def test_refuses_the_kubernetes_open_relay(self):
        result, _, _ = self.run_with("smtp-gateway", "postgate_cluster_networks = 192.168.0.0/16\n")
        self.assertEqual(result.returncode, 1)
        self.assertIn("mynetworks: 192.168.0.0/24 overlaps 192.168.0.0/16 (postgate_cluster_networks): clients "
                      "behind the load balancer would all look trusted", result.stderr)

    def test_flag_overrides_are_validated(self):
        bad = subprocess.run([os.path.join(BIN_DIR, "smtp-gateway"), "--config", os.path.join(SOURCE_DIR, "config/main.cf"),
                              "--listen", "127.0.0.1:99999"], capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 1)
        self.assertIn('smtp-gateway: fatal: --listen: bad port in "127.0.0.1:99999"', bad.stderr)
        missing = subprocess.run([os.path.join(BIN_DIR, "queue-service"), "--config", "/nonexistent/main.cf"],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("/nonexistent/main.cf: cannot open", missing.stderr)


if __name__ == "__main__":
    unittest.main()
