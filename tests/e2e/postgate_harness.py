"""Starts real queue-service and smtp-gateway binaries on free loopback ports for a test.

Each Postgate instance gets its own data directory and main.cf (config/main.cf plus overrides),
reads the ports the services report in their "listening" log lines, and offers helpers that wait
on conditions with a deadline (never a bare sleep).
"""
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

BIN_DIR = os.environ.get("POSTGATE_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SOURCE_DIR = os.environ.get("POSTGATE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
QUEUE_ID = r"[0-9A-F]{13}"


def wait_for(condition, timeout=15.0, interval=0.02, what="condition"):
    """Polls condition() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error: |SUMMARY: UndefinedBehaviorSanitizer")


class Service:
    """One running binary whose stderr is collected line by line."""

    def __init__(self, argv, name):
        self.name = name
        self.lines = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def log(self):
        with self._lock:
            return list(self.lines)

    def wait_log(self, pattern, timeout=15.0):
        regex = re.compile(pattern)

        def find():
            for line in self.log():
                match = regex.search(line)
                if match:
                    return match
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n" + "\n".join(self.log()))
            return None

        return wait_for(find, timeout, what=f"{self.name} log /{pattern}/")

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        self.process.stdout.close()
        # Under the sanitizer build (scripts/sanitize) a report fails the test that ran the service.
        lines = self.log()
        first = next((i for i, line in enumerate(lines) if SANITIZER_REPORT.search(line)), None)
        if first is not None:  # The report itself, with the lines that led to it.
            raise AssertionError(f"{self.name}: sanitizer report:\n" + "\n".join(lines[max(0, first - 10):first + 70]))


class Postgate:
    """queue-service + smtp-gateway with a private data directory."""

    def __init__(self, overrides=None, aliases=None, master_cf=None):
        """`master_cf`: the text of a master.cf beside main.cf (SMTP services with -o overrides)."""
        self.dir = tempfile.mkdtemp(prefix="postgate-e2e-")
        self.data_dir = os.path.join(self.dir, "var")
        self.config = os.path.join(self.dir, "main.cf")
        with open(os.path.join(SOURCE_DIR, "config/main.cf")) as source:
            text = source.read()
        # Both services expand $postgate_data_directory (the TLS files live under it).
        text += f"\npostgate_data_directory = {self.data_dir}\n"
        subprocess.run([os.path.join(SOURCE_DIR, "scripts/make-snakeoil-cert.sh"), os.path.join(self.data_dir, "tls")],
                       check=True, capture_output=True)
        # The admin token config/main.cf names ($postgate_data_directory/admin-token).
        self.admin_token = "e2e-admin-token-" + os.path.basename(self.dir)
        self.token_file = os.path.join(self.data_dir, "admin-token")
        with open(self.token_file, "w") as out:
            out.write(self.admin_token + "\n")
        for name, value in (overrides or {}).items():
            text += f"\n{name} = {value}\n"
        with open(self.config, "w") as out:
            out.write(text)
        if master_cf is not None:
            with open(os.path.join(self.dir, "master.cf"), "w") as out:
                out.write(master_cf)
        shutil.copy(os.path.join(SOURCE_DIR, "config/aliases"), os.path.join(self.dir, "aliases"))
        if aliases:
            with open(os.path.join(self.dir, "aliases"), "a") as out:
                out.write(aliases)
        # Probes on port 0: several instances run side by side.
        with open(self.config, "a") as out:
            out.write("\npostgate_smtpd_health_listen = 127.0.0.1:0\n")
        self.queue = None
        self.gateway = None
        self.grpc_port = None
        self.consoles = []

    def start_queue(self, extra_args=(), host="127.0.0.1", prefix=()):
        """Starts queue-service; a restart listens on the port of the first start (the gateway's
        --queue names it), which free_port() chose outside the ephemeral range for that reason."""
        port = self.grpc_port or free_port(host)
        self.queue = Service([*prefix, os.path.join(BIN_DIR, "queue-service"), "--config", self.config,
                              "--data-dir", self.data_dir, "--listen", f"{host}:{port}",
                              "--metrics", "127.0.0.1:0", *extra_args], "queue-service")
        match = self.queue.wait_log(r"listening grpc=127\.0\.0\.\d+:(\d+) metrics=127\.0\.0\.1:(\d+)")
        self.grpc_port = int(match.group(1))
        self.queue_metrics_port = int(match.group(2))
        return self

    def start_gateway(self, queue_address=None, prefix=(), listen="127.0.0.1:0"):
        """`prefix`: a command that runs the gateway, e.g. ("prlimit", "--nofile=256")."""
        self.gateway = Service([*prefix, os.path.join(BIN_DIR, "smtp-gateway"), "--config", self.config,
                                "--listen", listen, "--queue", queue_address or f"127.0.0.1:{self.grpc_port}",
                                "--metrics", "127.0.0.1:0"], "smtp-gateway")
        match = self.gateway.wait_log(
            r"listening smtp=[0-9.]+:(\d+)((?: \S+=\S+)*?) metrics=127\.0\.0\.1:(\d+) health=127\.0\.0\.1:(\d+)")
        self.smtp_port = int(match.group(1))
        # master.cf's other services: name → their first port.
        self.service_ports = {name: int(port) for name, port in re.findall(r" (\S+)=[^ ,]*:(\d+)", match.group(2))}
        self.gateway_metrics_port = int(match.group(3))
        self.gateway_health_port = int(match.group(4))
        return self

    def start(self):
        # A failed start must not leave the other service running (setUp failures skip tearDown).
        try:
            return self.start_queue().start_gateway()
        except BaseException:
            self.cleanup()
            raise

    def stop(self):
        problems = []
        for service in (*self.consoles, self.gateway, self.queue):
            if service:
                try:
                    service.stop()
                except AssertionError as problem:  # A sanitizer report: stop the rest, then say it.
                    problems.append(problem)
        if problems:
            raise problems[0]

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_console(self, *args, servers=None):
        """queue-console on a free port, over this queue (or `servers`); returns (Service, base URL).
        Stopped with the others by stop()/cleanup()."""
        console = Service([os.path.join(BIN_DIR, "queue-console"), "--listen", "127.0.0.1:0",
                           "--server", servers or f"127.0.0.1:{self.grpc_port}", *args], "queue-console")
        port = int(console.wait_log(r"listening on http://127\.0\.0\.1:(\d+)/").group(1))
        self.consoles.append(console)
        return console, f"http://127.0.0.1:{port}"

    def maildir_files(self, user, sub="new"):
        path = os.path.join(self.data_dir, "mail", user, sub)
        if not os.path.isdir(path):
            return []
        return sorted(os.path.join(path, name) for name in os.listdir(path))

    def read_maildir(self, user):
        contents = []
        for path in self.maildir_files(user):
            with open(path, "rb") as f:
                contents.append(f.read().decode("utf-8", "replace"))
        return contents

    def wait_delivered(self, user, count, timeout=15.0):
        return wait_for(lambda: len(self.maildir_files(user)) >= count and self.read_maildir(user),
                        timeout, what=f"{count} message(s) in {user}'s Maildir")

    def admin_metadata(self):
        return (("authorization", f"Bearer {self.admin_token}"),)

    def grpc_channel(self):
        import grpc
        return grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")


class SmtpConnection:
    """A raw SMTP client: sends exact bytes and reads whole replies."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def read_reply(self):
        """Returns one complete (possibly multi-line) reply as text, CRLFs included."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed; got so far: %r" % (b"".join(lines) + self.buffer))
                self.buffer += data
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line + b"\r\n")
            if len(line) < 4 or line[3:4] == b" ":
                return b"".join(lines).decode()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def command(self, line):
        self.send(line + "\r\n")
        return self.read_reply()

    def close(self):
        self.sock.close()


def read_to_close(connection):
    """Everything the server says on `connection` (an SmtpConnection) until it closes."""
    data = connection.buffer
    connection.buffer = b""
    while True:
        chunk = connection.sock.recv(65536)
        if not chunk:
            return data.decode()
        data += chunk


def send_message(port, sender="foo@mail169.com", recipients=("bar@mail169.com",), body="Subject: t\r\n\r\nhello\r\n"):
    """One complete session; returns the reply to the end of DATA."""
    connection = SmtpConnection(port)
    try:
        connection.read_reply()
        connection.command("EHLO client.test")
        reply = connection.command(f"MAIL FROM:<{sender}>")
        assert reply.startswith("250"), reply
        for recipient in recipients:
            reply = connection.command(f"RCPT TO:<{recipient}>")
            assert reply.startswith("250"), reply
        reply = connection.command("DATA")
        assert reply.startswith("354"), reply
        connection.send(body + ".\r\n")
        reply = connection.read_reply()
        connection.command("QUIT")
        return reply
    finally:
        connection.close()


class PostgateTestCase(unittest.TestCase):
    """One Postgate for all tests of a class; `overrides` (main.cf) and `aliases` configure it."""

    overrides = None
    aliases = None

    @classmethod
    def setUpClass(cls):
        cls.postgate = Postgate(cls.overrides, cls.aliases).start()

    @classmethod
    def tearDownClass(cls):
        cls.postgate.cleanup()


class AcknowledgedLoad:
    """`senders` clients sending one message per session to bar@ until stop(); remembers each
    (marker, queue ID) that got "250 … queued as", and counts the sessions that did not (451 or a
    reset: not acknowledged, a real client would send again)."""

    def __init__(self, postgate, senders=4):
        self.postgate = postgate
        self.acknowledged = []
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(senders)]
        for thread in self._threads:
            thread.start()

    def _send(self, worker):
        n = 0
        while not self._stop.is_set():
            n += 1
            marker = f"load-{worker}-{n}"
            try:
                reply = send_message(self.postgate.smtp_port, body=f"Subject: {marker}\r\n\r\n{marker}\r\n")
            except (OSError, AssertionError, ConnectionError):
                reply = ""
            match = re.match(rf"250 2\.0\.0 Ok: queued as ({QUEUE_ID})", reply)
            with self._lock:
                if match:
                    self.acknowledged.append((marker, match.group(1)))
                else:
                    self.refused += 1

    def count(self):
        with self._lock:
            return len(self.acknowledged)

    def stop(self):
        """Stops the senders; returns the acknowledged (marker, queue ID) pairs."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        with self._lock:
            return list(self.acknowledged)


def delivery_counts(postgate, acknowledged, timeout=180):
    """Waits until every acknowledged message is in bar's Maildir (at most `timeout` seconds),
    then returns (delivered once, duplicated, lost), matching each by the queue ID in its
    Received: header and its marker. Counting files would not do: a message whose client heard
    451 (the queue stored it, then died before it could say so) is delivered too, and is not
    among the acknowledged."""
    def counts():
        copies = {}
        for text in postgate.read_maildir("bar"):
            match = re.search(r"\bid (" + QUEUE_ID + r")\n", text)
            if match:
                copies.setdefault(match.group(1), []).append(text)
        once = duplicated = lost = 0
        for marker, queue_id in acknowledged:
            found = [t for t in copies.get(queue_id, []) if marker in t]
            if not found:
                lost += 1
            elif len(found) == 1:
                once += 1
            else:
                duplicated += 1
        return once, duplicated, lost

    deadline = time.monotonic() + timeout
    while True:
        result = counts()
        if result[2] == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


SMTP_SINK = "/usr/sbin/smtp-sink"


def insecure_tls_context():
    """A client TLS context that accepts the tests' self-signed certificates."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def smtp_replies(port, lines, starttls=False, wrapped=False):
    """The greeting, then each line's reply (a multi-line reply's lines joined by newlines, CRLF
    dropped). `starttls`: EHLO and STARTTLS first (their replies not returned); `wrapped`: TLS from
    the first byte (smtps)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    if wrapped:
        sock = insecure_tls_context().wrap_socket(sock)
    stream = sock.makefile("rb")

    def reply():
        out = []
        while True:
            line = stream.readline().decode()
            out.append(line.rstrip("\r\n"))
            if len(line) < 4 or line[3] != "-":
                return "\n".join(out)
    try:
        answers = [reply()]
        if starttls:
            sock.sendall(b"EHLO client.test\r\n")
            reply()
            sock.sendall(b"STARTTLS\r\n")
            started = reply()
            if not started.startswith("220"):
                raise AssertionError(f"STARTTLS refused: {started}")
            sock = insecure_tls_context().wrap_socket(sock)
            stream = sock.makefile("rb")
        for line in lines:
            sock.sendall(line.encode() + b"\r\n")
            answers.append(reply())
        return answers
    finally:
        sock.close()


def ephemeral_port_range():
    """The kernel's range for port 0 and for outgoing connections' local ports."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(field) for field in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host="127.0.0.1"):
    """A port free on `host` now, outside the kernel's ephemeral range.

    A port the kernel chose for port 0 is one it also gives to outgoing connections as their local
    port: once a service on it stops, any test's connection may take it, and the service restarted
    on the same port fails with EADDRINUSE (CI, 2026-12-02: queue-service restarted by
    test_durability). Outside that range only another test's free_port() can pick the same port,
    one chance in thousands, and it binds it first."""
    low, high = ephemeral_port_range()
    candidates = range(20000, low) if low - 20000 >= 4096 else range(high + 1, 65536)
    if len(candidates) < 4096:  # The ephemeral range covers nearly everything: the kernel's choice.
        with socket.socket() as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    for _ in range(1000):
        port = random.choice(candidates)
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port on {host} in {candidates.start}-{candidates.stop - 1}")


class Sink:
    """smtp-sink on 127.0.0.1:port; `options` e.g. ["-r", "rcpt"] (4xx) or ["-f", "rcpt"] (5xx)."""

    def __init__(self, port, options=()):
        self.dump = tempfile.mkdtemp(prefix="postgate-sink-")
        os.chmod(self.dump, 0o777)
        self.process = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-d", f"{self.dump}/%M.", *options,
                                         f"127.0.0.1:{port}", "64"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for(lambda: self.listening(port), what=f"smtp-sink on {port}")

    @staticmethod
    def listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def open_dump_files(self):
        """Files smtp-sink still has open: it writes a dump file as the session goes and closes it
        after the end of DATA, so only a closed file is a whole message."""
        fd_dir = f"/proc/{self.process.pid}/fd"
        paths = set()
        for fd in os.listdir(fd_dir):
            try:
                paths.add(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass  # Closed between the listing and the readlink.
        return paths

    def messages(self):
        """The whole messages the sink received, in the order of their file names."""
        texts = []
        names = sorted(os.listdir(self.dump))  # Before the open files: a file listed and then not
        open_files = self.open_dump_files()     # open is closed, hence whole.
        for name in names:
            if os.path.realpath(os.path.join(self.dump, name)) in open_files:
                continue
            with open(os.path.join(self.dump, name), "rb") as f:
                texts.append(f.read().decode("utf-8", "replace"))
        return texts

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dump, ignore_errors=True)
