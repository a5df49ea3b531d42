"""The web console in a real browser: headless Chromium (Debian's), driven by Playwright
(console_browser.cjs), against a real queue with deferred, held and delivered mail. Signs in,
loads every page, holds/releases/deletes through the buttons, follows the live feed, and writes a
screenshot of each page to $POSTGATE_SCREENSHOT_DIR (default build/console-screenshots; the
README's copies: POSTGATE_SCREENSHOT_DIR=tests/e2e/screenshots scripts/e2e test_console_browser)."""
import json
import os
import re
import subprocess

import grpc

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, SOURCE_DIR, PostgateTestCase, send_message, wait_for
from test_console import HOSTILE_SUBJECT, send_hostile


class ConsoleBrowserTest(PostgateTestCase):
    aliases = "ghost: nosuchuser\n"  # Accepted at RCPT, its target unknown: a bounce.

    def deferred(self, recipient):
        queue_id = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=(recipient,))).group(0)
        wait_for(lambda: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).state
                 == queue_pb2.MESSAGE_STATE_DEFERRED)
        return queue_id

    def test_every_page_and_the_actions_in_chromium(self):
        self.stub = queue_pb2_grpc.QueueServiceStub(self.postgate.grpc_channel())
        console, base = self.postgate.start_console("--token-file", self.postgate.token_file)
        for i in range(3):
            send_message(self.postgate.smtp_port, body=f"Subject: delivered {i}\r\n\r\nhello\r\n")
        self.postgate.wait_delivered("bar", 3)
        hostile = send_hostile(self.postgate.smtp_port)
        hold, delete = self.deferred("hold-me@example.org"), self.deferred("delete-me@example.org")
        held = self.deferred("x@example.net")
        self.stub.Hold(queue_pb2.MessageRequest(queue_id=held, reason="held before the browser came"),
                       metadata=self.postgate.admin_metadata())
        bounced = re.search(QUEUE_ID, send_message(self.postgate.smtp_port, recipients=("ghost@mail169.com",))).group(0)
        wait_for(lambda: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=bounced)).state == queue_pb2.MESSAGE_STATE_DONE)
        screenshots = os.environ.get("POSTGATE_SCREENSHOT_DIR") or os.path.join(SOURCE_DIR, "build", "console-screenshots")
        os.makedirs(screenshots, exist_ok=True)
        node_path = subprocess.run([os.path.join(SOURCE_DIR, "scripts/browser-tools.sh")], check=True, capture_output=True,
                                   text=True).stdout.strip()
        run = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "console_browser.cjs")],
                             capture_output=True, text=True, timeout=240,
                             env={**os.environ, "NODE_PATH": node_path, "CONSOLE_URL": base,
                                  "ADMIN_TOKEN": self.postgate.admin_token, "SCREENSHOT_DIR": screenshots,
                                  "HOSTILE_ID": hostile, "HOLD_ID": hold, "DELETE_ID": delete, "BOUNCED_ID": bounced,
                                  "SMTP_PORT": str(self.postgate.smtp_port)})
        self.assertEqual(run.returncode, 0, run.stderr + "\n".join(console.log()[-20:]))
        seen = json.loads(run.stdout.splitlines()[-1])

        self.assertEqual(seen["loginUrl"], base + "/login?next=%2F")
        self.assertEqual(seen["cookies"], [{"name": "postgate_console", "httpOnly": True, "sameSite": "Strict", "secure": True}])
        self.assertEqual((seen["overviewDeferred"], seen["overviewHold"]), ("3", "1"))
        self.assertEqual(seen["overviewSparklines"], 4)
        self.assertEqual(set(seen["listIds"]), {hostile, hold, delete})
        self.assertIn(held, seen["heldIds"])
        self.assertIn(bounced, seen["doneIds"])
        self.assertEqual(seen["bouncedStates"], ["bounced"])
        # Nothing from the hostile message ran or became markup; it reads as text.
        self.assertIn(f"Subject: {HOSTILE_SUBJECT}", seen["hostileHeaders"])
        self.assertIn("<script>alert(4)</script>", seen["hostileBody"])
        self.assertFalse(seen["pwned"])
        self.assertFalse(seen["pwnedAfterFeed"])
        self.assertEqual(seen["injectedElements"], 0)
        self.assertEqual(seen["dialogs"], [])
        self.assertEqual(seen["cspViolations"], [])  # The console's own pages need no exception.
        self.assertEqual(seen["pageErrors"], [])
        # The actions, as the browser saw them and as the queue has them.
        self.assertEqual(seen["confirmTitle"], f"Hold message {hold}?")
        self.assertEqual((seen["afterHold"], seen["afterRelease"]), ("hold", "deferred"))
        self.assertEqual(seen["holdNotice"], "The message is on hold.")
        self.assertNotEqual(self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=hold)).state, queue_pb2.MESSAGE_STATE_HOLD)
        with self.assertRaises(grpc.RpcError) as gone:
            self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=delete))
        self.assertEqual(gone.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(seen["deleteNotice"], "The message is deleted.")
        audit = "\n".join(line for line in console.log() if "audit:" in line)
        for action, queue_id in (("hold", hold), ("release", hold), ("delete", delete)):
            self.assertIn(f"operator=alice client=127.0.0.1 action={action} queue_id={queue_id} result=ok", audit)
        # The feed showed the new message's events (newest first), its subject nowhere as markup.
        kinds = [row[1] for row in seen["eventRows"]]
        self.assertIn("received", kinds)
        self.assertIn("deferred", kinds)
        self.assertTrue(all(row[4] in ("", "watch@feed.example") for row in seen["eventRows"]), seen["eventRows"])
        for name in ("login", "overview", "list", "message", "confirm", "events"):
            path = os.path.join(screenshots, f"console-{name}.png")
            with open(path, "rb") as png:
                self.assertEqual(png.read(8), b"\x89PNG\r\n\x1a\n", path)
            self.assertGreater(os.path.getsize(path), 5000, path)
