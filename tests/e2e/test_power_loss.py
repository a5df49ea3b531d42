"""Power cuts, not just crashes: the data directory lives on LazyFS (../shared/tools/lazyfs), which
keeps written data in its own cache until fsync; `lazyfs::clear-cache` drops what was not synced, as
a power failure drops a disk's page cache. Under load both services are SIGKILLed, the unsynced data
dropped, both restarted: every acknowledged message is delivered with its exact bytes – exactly once
to a Maildir, and to an mbox at most once more per cut and local worker (an append cannot be undone).
A targeted fault kills the file system itself just before a Maildir file is renamed into new/.

POSTGATE_POWER_CUTS (default 2 per mailbox format) sets the number of cuts; the long version:
POSTGATE_POWER_CUTS=50 scripts/e2e test_power_loss"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from postgate_harness import QUEUE_ID, SOURCE_DIR, AcknowledgedLoad, Postgate, delivery_counts, wait_for
from test_mbox import mbox_counts

CUTS = int(os.environ.get("POSTGATE_POWER_CUTS", "2"))
# LazyFS allocates its whole cache up front (512 MiB: 0.5 s and 580 MiB of RSS, one run here on
# 2026-11-30; CI runs image builds beside it). The 2-cut run left a data directory of 232 KiB that
# day; a cache that fills up
# writes through, which makes data durable early (a weaker test, never a false failure), so the
# long run keeps 512 MiB.
CACHE_SIZE = "128mb" if CUTS <= 5 else "512mb"
LAZYFS_BUILD = os.path.join(SOURCE_DIR, "..", "shared", "tools", "lazyfs", "build.sh")
CONFIG = """[faults]
fifo_path="{fifo}"
[cache]
apply_eviction=false
[cache.simple]
custom_size="{cache_size}"
blocks_per_page=1
[filesystem]
log_all_operations=false
logfile=""
"""


class LazyFs:
    """A LazyFS mount of `root` at `mount`, with its fault FIFO."""

    def __init__(self, work):
        self.binary = subprocess.run([LAZYFS_BUILD, os.path.join(SOURCE_DIR, "build", "lazyfs")], check=True,
                                     capture_output=True, text=True).stdout.strip().splitlines()[-1]
        self.mount, self.root = os.path.join(work, "mnt"), os.path.join(work, "root")
        self.fifo, self.config = os.path.join(work, "faults.fifo"), os.path.join(work, "lazyfs.toml")
        if "-o" in self.config.lower():
            raise AssertionError(f"LazyFS would read {self.config} as a mount option: set TMPDIR to a path without '-o'")
        os.makedirs(self.mount)
        os.makedirs(self.root)
        os.mkfifo(self.fifo)
        with open(self.config, "w") as out:
            out.write(CONFIG.format(fifo=self.fifo, cache_size=CACHE_SIZE))
        self.log = os.path.join(work, "lazyfs.log")
        self.process = None

    def start(self):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([self.binary, self.mount, "--config-path", self.config, "-o",
                                             "allow_other", "-o", "modules=subdir", "-o", f"subdir={self.root}", "-f"],
                                            stdout=log, stderr=subprocess.STDOUT)

        def mounted():
            if self.process.poll() is not None:
                raise AssertionError(f"LazyFS exited with {self.process.returncode} before mounting:\n{self.log_tail()}")
            return os.path.ismount(self.mount)
        try:
            # Allocating the cache takes ~0.5 s on a quiet machine; CI runs image builds beside this.
            wait_for(mounted, timeout=60, what="LazyFS mounted")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.log_tail()}") from None

    def log_tail(self):
        with open(self.log, errors="replace") as log:
            return "".join(log.readlines()[-15:])

    def command(self, text):
        with open(self.fifo, "w") as fifo:  # The trailing newline matters.
            fifo.write(text + "\n")

    def restart_after_crash(self):
        """After a crash fault killed LazyFS: unmount what is left and mount the root again."""
        self.process.wait(timeout=30)
        subprocess.run(["fusermount3", "-u", "-z", self.mount], capture_output=True)
        wait_for(lambda: not os.path.ismount(self.mount), what="the dead mount gone")
        self.start()

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        subprocess.run(["fusermount3", "-u", "-z", self.mount], capture_output=True)


class PowerLossTest(unittest.TestCase):
    def setUp(self):
        # No "-o" in the path: LazyFS a47a5ba takes a --config-path value containing "-o" (any case)
        # for a mount option and falls back to config/default.toml ("power-o…" failed 1 run in 37).
        self.work = tempfile.mkdtemp(prefix="postgate_power_")
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        self.postgate = None
        self.addCleanup(lambda: self.postgate and self.postgate.cleanup())
        # Cleanups run last-in first-out: the file system stops first. Should LazyFS hang, its clients
        # wait in the kernel and cannot even be killed until its daemon is gone. Registered before the
        # mount so that a mount that fails still leaves no process behind.
        self.lazyfs = LazyFs(self.work)
        self.addCleanup(self.lazyfs.stop)
        self.lazyfs.start()

    def start_postgate(self, mailbox_format):
        data = os.path.join(self.lazyfs.mount, "var")
        self.postgate = Postgate({"postgate_data_directory": data, "postgate_mailbox_format": mailbox_format,
                                  "postgate_queue_timeout": "3s"})
        shutil.copytree(self.postgate.data_dir, data)  # TLS files and the admin token, synced:
        for directory, _, files in os.walk(data):      # a cut must not take the configuration.
            for name in files:
                fd = os.open(os.path.join(directory, name), os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        self.postgate.data_dir = data
        self.postgate.token_file = os.path.join(data, "admin-token")
        self.postgate.start()

    def load_and_cut(self, cuts):
        acknowledged = []
        for _ in range(cuts):
            load = AcknowledgedLoad(self.postgate)
            try:
                wait_for(lambda: load.count() >= 150, timeout=120, what="150 acknowledged messages")
            finally:
                self.postgate.gateway.stop(signal.SIGKILL)  # Mid-load: sessions break, unacknowledged.
                acknowledged += load.stop()
            self.postgate.queue.stop(signal.SIGKILL)
            self.lazyfs.command("lazyfs::clear-cache")
            self.postgate.start_queue().start_gateway()
        return acknowledged

    def assert_exact_bytes(self, texts, acknowledged):
        by_marker = {}
        for text in texts:
            match = re.search(r"\nSubject: (load-\d+-\d+)\n\n", text)
            if match:
                by_marker.setdefault(match.group(1), []).append(text)
        for marker, _ in acknowledged:
            for text in by_marker.get(marker, []):
                self.assertTrue(text.endswith(f"\nSubject: {marker}\n\n{marker}\n"), text[-200:])

    def test_maildir_power_cuts_lose_nothing_and_deliver_once(self):
        self.start_postgate("maildir")
        acknowledged = self.load_and_cut(CUTS)
        once, duplicated, lost = delivery_counts(self.postgate, acknowledged, timeout=120)
        print(f"\npower loss (Maildir): {CUTS} cuts, {len(acknowledged)} acknowledged, {once} delivered once, "
              f"{duplicated} duplicated, {lost} lost", flush=True)
        self.assertEqual((once, duplicated, lost), (len(acknowledged), 0, 0))
        self.assert_exact_bytes(self.postgate.read_maildir("bar"), acknowledged)

    def test_mbox_power_cuts_lose_nothing_and_repeat_at_most_the_message_in_flight(self):
        self.start_postgate("mbox")
        acknowledged = self.load_and_cut(CUTS)
        path = os.path.join(self.postgate.data_dir, "mail", "bar.mbox")
        deadline = time.monotonic() + 120
        while mbox_counts(path, acknowledged)[2] and time.monotonic() < deadline:
            time.sleep(0.2)
        once, duplicates, lost, damaged = mbox_counts(path, acknowledged)
        print(f"\npower loss (mbox): {CUTS} cuts, {len(acknowledged)} acknowledged, {duplicates} repeated, "
              f"{lost} lost, {damaged} damaged", flush=True)
        self.assertEqual((lost, damaged), (0, 0))
        self.assertLessEqual(duplicates, 2 * CUTS)

    def test_file_system_dies_before_a_maildir_rename(self):
        # The moment between a synced file in tmp/ and its name in new/: the file system itself
        # crashes (no fsync after this point happens), then everything restarts.
        self.start_postgate("maildir")
        # (from_rgx too: LazyFS a47a5ba never fires a rename fault that names to_rgx alone.)
        self.lazyfs.command("lazyfs::crash::timing=before::op=rename::from_rgx=/mail/bar/tmp/::to_rgx=/mail/bar/new/")
        load = AcknowledgedLoad(self.postgate)
        try:
            wait_for(lambda: self.lazyfs.process.poll() is not None, timeout=60, what="LazyFS to crash at the rename")
        finally:
            acknowledged = load.stop()
        self.postgate.gateway.stop(signal.SIGKILL)
        self.postgate.queue.stop(signal.SIGKILL)
        self.lazyfs.restart_after_crash()
        self.postgate.start_queue().start_gateway()
        self.assertGreater(len(acknowledged), 0)
        once, duplicated, lost = delivery_counts(self.postgate, acknowledged, timeout=120)
        self.assertEqual((once, duplicated, lost), (len(acknowledged), 0, 0))
        self.assert_exact_bytes(self.postgate.read_maildir("bar"), acknowledged)


if __name__ == "__main__":
    unittest.main()
