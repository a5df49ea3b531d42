"""The container images: built from deploy/docker/Dockerfile by deploy/docker/build-images.sh
(debootstrap base, buildah; no registry), then run with podman on the host network – root file
system read-only, as the chart runs them – for an SMTP session and a scrape of both metrics
endpoints. Also checks what the images declare: non-root user, exposed ports, OCI labels.

The images take the binaries under test (`build-images.sh --prebuilt`, POSTGATE_BIN_DIR) rather
than compiling them a second time in the Dockerfile's `source` stage, beside the rest of the suite.
That stage is run by `deploy/docker/build-images.sh` without options (a
separate command, tests/README.md); here it is checked to copy every source folder the build adds."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from postgate_harness import BIN_DIR, QUEUE_ID, SmtpConnection, free_port, send_message, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STORE = os.environ.get("POSTGATE_CONTAINERS", os.path.join(ROOT, ".tools/containers"))
PODMAN = ["podman", "--root", f"{STORE}/root", "--runroot", f"{STORE}/run", "--storage-driver", "vfs",
          "--runtime", "runc"]
GATEWAY = "localhost/postgate-smtp-gateway:0.1.0"
QUEUE = "localhost/postgate-queue-service:0.1.0"
# runc needs both limits below the hard limits here; host networking only (never a bridge).
RUN = ["run", "--detach", "--log-driver", "k8s-file", "--network", "host", "--read-only", "--ulimit", "nofile=4096:4096",
       "--ulimit", "nproc=4096:4096"]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


class DockerfileTest(unittest.TestCase):
    """Needs no image: what the from-source build would miss."""

    def test_source_stage_copies_every_source_folder_the_build_adds(self):
        with open(os.path.join(ROOT, "CMakeLists.txt")) as cmake:
            folders = set(re.findall(r"^\s*add_subdirectory\((\S+)\)", cmake.read(), re.MULTILINE)) - {"tests"}
        with open(os.path.join(ROOT, "deploy/docker/Dockerfile")) as dockerfile:
            source_stage = dockerfile.read().split(" AS source\n", 1)[1].split("\nFROM ", 1)[0]
        copied = set(re.findall(r"^COPY (\S+) /src/\1$", source_stage, re.MULTILINE))
        self.assertTrue(folders, "no add_subdirectory found in CMakeLists.txt")
        self.assertEqual(folders - copied, set(), "folders the build adds that the source stage does not copy")
        self.assertIn("COPY CMakeLists.txt /src/", source_stage)


class ImagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = subprocess.run([os.path.join(ROOT, "deploy/docker/build-images.sh"), "--prebuilt", BIN_DIR],
                               capture_output=True, text=True, timeout=1500)
        if build.returncode != 0:
            raise AssertionError("build-images.sh failed:\n" + build.stderr[-4000:])

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postgate-images-")
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        os.chmod(self.spool, 0o777)  # The containers run as uid 10001.
        self.containers = []

    def tearDown(self):
        for name in self.containers:
            subprocess.run(PODMAN + ["logs", name], capture_output=True)
            subprocess.run(PODMAN + ["rm", "--force", "--time", "5", name], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, image, args, volumes=()):
        name = f"{name}-{os.getpid()}"
        argv = PODMAN + RUN + ["--name", name]
        for volume in volumes:
            argv += ["--volume", volume]
        result = subprocess.run(argv + [image, "--config", "/etc/postgate/main.cf", *args], capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.containers.append(name)
        return name

    def logs(self, name):
        logs = subprocess.run(PODMAN + ["logs", name], capture_output=True, text=True)
        return logs.stdout + logs.stderr  # The services log to stderr; podman keeps the streams apart.

    def test_images_declare_a_non_root_user_ports_and_labels(self):
        for image, ports, title in ((GATEWAY, {"2525/tcp", "9101/tcp", "9111/tcp"}, "postgate-smtp-gateway"),
                                    (QUEUE, {"50051/tcp", "9102/tcp"}, "postgate-queue-service")):
            inspect = json.loads(subprocess.run(PODMAN + ["image", "inspect", image], capture_output=True,
                                                text=True, check=True).stdout)[0]
            config = inspect["Config"]
            self.assertEqual(config["User"], "10001:10001")
            self.assertEqual(set(config["ExposedPorts"]), ports)
            self.assertEqual(config["Labels"]["org.opencontainers.image.title"], title)
            self.assertIn("org.opencontainers.image.revision", config["Labels"])
            self.assertEqual(config["Entrypoint"][0].split("/")[-1], title.replace("postgate-", ""))
        # queuectl and the web console ship in the queue image (the chart's console runs it there).
        for tool in ("queuectl", "queue-console"):
            result = subprocess.run(PODMAN + ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                                              "--ulimit", "nproc=1000:1000", "--entrypoint", f"/usr/local/bin/{tool}",
                                              QUEUE, "--help"], capture_output=True, text=True, timeout=120)
            self.assertIn(tool, result.stdout)

    def test_containers_take_mail_and_serve_metrics(self):
        grpc_port, queue_metrics, smtp_port, gateway_metrics, health = (free_port() for _ in range(5))
        queue = self.start("postgate-queue", QUEUE, [
            "-o", f"postgate_queue_listen=127.0.0.1:{grpc_port}", "-o", f"postgate_queue_metrics_listen=127.0.0.1:{queue_metrics}",
            "-o", "postgate_data_directory=/var/lib/postgate", "-o", "postgate_queue_admin_token_file="],
            volumes=[f"{self.spool}:/var/lib/postgate"])
        wait_for(lambda: "queue-service listening" in self.logs(queue), timeout=60, what="queue-service in its container")
        gateway = self.start("postgate-gateway", GATEWAY, [
            "-o", f"postgate_smtpd_port={smtp_port}", "-o", f"postgate_queue_address=127.0.0.1:{grpc_port}",
            "-o", f"postgate_smtpd_metrics_listen=127.0.0.1:{gateway_metrics}",
            "-o", f"postgate_smtpd_health_listen=127.0.0.1:{health}", "-o", "smtpd_tls_security_level=none"])
        wait_for(lambda: "smtp-gateway listening" in self.logs(gateway), timeout=60, what="smtp-gateway in its container")

        connection = SmtpConnection(smtp_port)
        self.assertEqual(connection.read_reply(), "220 mail169.com ESMTP Postgate\r\n")
        self.assertIn("250-PIPELINING\r\n250-SIZE 10240000\r\n", connection.command("EHLO image.test"))
        connection.close()
        reply = wait_for(lambda: (r := send_message(smtp_port)).startswith("250") and r, timeout=30,
                         what="a message accepted through the containers")
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as " + QUEUE_ID)
        wait_for(lambda: os.path.isdir(os.path.join(self.spool, "mail/bar/new")) and
                 os.listdir(os.path.join(self.spool, "mail/bar/new")), what="delivery into the mounted spool")

        for port, family in ((gateway_metrics, "postgate_smtpd_messages_accepted_total 1"),
                             (queue_metrics, "postgate_queue_messages_stored_total 1")):
            text = wait_for(lambda: family in (t := scrape(port)) and t, what=family)
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        # SIGTERM (podman stop) ends both cleanly: exit code 0.
        for name in (gateway, queue):
            subprocess.run(PODMAN + ["stop", "--time", "30", name], capture_output=True, timeout=60, check=True)
            state = json.loads(subprocess.run(PODMAN + ["inspect", name], capture_output=True, text=True).stdout)[0]
            self.assertEqual(state["State"]["ExitCode"], 0, self.logs(name))


if __name__ == "__main__":
    unittest.main()
