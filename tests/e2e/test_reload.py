"""main.cf reload without a restart: a Kubernetes-style ConfigMap update (the ..data symlink swapped
under the running gateway) and SIGHUP apply a new file to new sessions while open sessions keep
theirs and are not dropped; a file that does not load is refused with a log line naming the
parameter, and the running settings stay in force."""
import os
import re
import signal
import unittest
import urllib.request

from postgate_harness import QUEUE_ID, Postgate, SmtpConnection, wait_for


def ehlo_size(port):
    connection = SmtpConnection(port)
    try:
        connection.read_reply()
        reply = connection.command("EHLO reload.test")
        return int(re.search(r"250[- ]SIZE (\d+)", reply).group(1))
    finally:
        connection.close()


def reloads(port, result):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r'^postgate_smtpd_config_reloads_total\{result="%s"\} (\S+)$' % result, text, re.M)
    return float(match.group(1)) if match else None


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.postgate = Postgate()
        # Lay the files out as a ConfigMap volume does: name -> ..data/name, ..data -> ..<timestamp>.
        self.volume = os.path.join(self.postgate.dir, "configmap")
        with open(self.postgate.config) as f:
            self.base_text = f.read()
        with open(os.path.join(self.postgate.dir, "aliases")) as f:
            self.aliases = f.read()
        self.generation = 0
        self.publish(self.base_text)
        for name in ("main.cf", "aliases"):
            os.symlink(os.path.join("..data", name), os.path.join(self.volume, name))
        self.postgate.config = os.path.join(self.volume, "main.cf")
        self.postgate.start()

    def tearDown(self):
        self.postgate.cleanup()

    def publish(self, text):
        """What the kubelet does on a ConfigMap change: a new directory, then one atomic rename."""
        self.generation += 1
        directory = os.path.join(self.volume, f"..generation_{self.generation}")
        os.makedirs(directory)
        for name, content in (("main.cf", text), ("aliases", self.aliases)):
            with open(os.path.join(directory, name), "w") as f:
                f.write(content)
        temporary = os.path.join(self.volume, "..data_tmp")
        os.symlink(os.path.basename(directory), temporary)
        os.rename(temporary, os.path.join(self.volume, "..data"))

    def test_configmap_update_applies_to_new_sessions_and_keeps_open_ones(self):
        port = self.postgate.smtp_port
        self.assertEqual(ehlo_size(port), 10240000)
        # A session in the middle of a transaction while the file changes.
        open_session = SmtpConnection(port)
        open_session.read_reply()
        self.assertIn("SIZE 10240000", open_session.command("EHLO open.test"))
        self.assertTrue(open_session.command("MAIL FROM:<foo@mail169.com>").startswith("250"))

        self.publish(self.base_text + "\nmessage_size_limit = 5000\n")
        wait_for(lambda: ehlo_size(port) == 5000, timeout=10, what="new sessions to see SIZE 5000")
        self.postgate.gateway.wait_log(r"reload \(main\.cf changed\): .* reloaded")

        # The open session was not dropped and still runs on its settings: 6000 bytes fit its 10240000.
        self.assertTrue(open_session.command("RCPT TO:<bar@mail169.com>").startswith("250"))
        self.assertTrue(open_session.command("DATA").startswith("354"))
        open_session.send(b"Subject: big\r\n\r\n" + b"x" * 6000 + b"\r\n.\r\n")
        self.assertRegex(open_session.read_reply(), r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        self.assertTrue(open_session.command("QUIT").startswith("221"))
        open_session.close()
        self.assertEqual(reloads(self.postgate.gateway_metrics_port, "applied"), 1)

        # A broken file is refused, named in the log; the running settings stay.
        self.publish(self.base_text + "\nmessage_size_limit = 5000\nmynetworks = 127.0.0.0/8, not-a-network\n")
        self.postgate.gateway.wait_log(r"reload \(main\.cf changed\) refused, the running configuration stays in "
                                       r"force: .*main\.cf:\d+: mynetworks")
        self.assertEqual(ehlo_size(port), 5000)
        self.assertEqual(reloads(self.postgate.gateway_metrics_port, "refused"), 1)
        self.assertIsNone(self.postgate.gateway.process.poll())

    def test_sighup_reloads_and_names_restart_only_changes(self):
        port = self.postgate.smtp_port
        # Edited in place (no new inode is not guaranteed, so SIGHUP is what the admin sends).
        with open(os.path.join(self.volume, "..data", "main.cf"), "a") as f:
            f.write("\nsmtpd_banner = $myhostname ESMTP reloaded\npostgate_smtpd_threads = 7\n")
        self.postgate.gateway.process.send_signal(signal.SIGHUP)
        wait_for(lambda: self.greeting(port) == "220 mail169.com ESMTP reloaded\r\n", timeout=10,
                 what="the new banner")
        self.postgate.gateway.wait_log(r"reload: postgate_smtpd_threads changed; that takes a restart")

    def greeting(self, port):
        connection = SmtpConnection(port)
        try:
            return connection.read_reply()
        finally:
            connection.close()


if __name__ == "__main__":
    unittest.main()
