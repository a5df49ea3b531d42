"""The web console (queue-console) over HTTP against a real queue: sign-in, the pages, the actions
and what they change in the queue, paging merged over two replicas, the live feed, and the
security checks — no session, wrong token, forged or cross-site requests, hostile mail content.
The same pages in a real browser: test_console_browser.py."""
import http.client
import json
import re
import socket
import threading
import time
import urllib.parse

from postgate.queue.v1 import queue_pb2, queue_pb2_grpc
from postgate_harness import QUEUE_ID, Postgate, PostgateTestCase, SmtpConnection, send_message, wait_for

HOSTILE_SENDER = '"<script>alert(1)</script>"@evil.example'
HOSTILE_SUBJECT = "<script>window.__pwned=1</script><img src=x onerror=alert(2)>"
HOSTILE_RECIPIENT = '"<b>bold</b>"@example.org'


class Http:
    """A client that keeps the console's cookie and does not follow redirects."""

    def __init__(self, base):
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.cookie = None

    def request(self, method, path, form=None, headers=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            body = urllib.parse.urlencode(form) if form is not None else None
            sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
            if body is not None:
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            if self.cookie:
                sent["Cookie"] = self.cookie
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            cookie = response.getheader("Set-Cookie")
            if cookie and cookie.startswith("postgate_console="):
                value = cookie.split(";", 1)[0]
                self.cookie = None if value == "postgate_console=" else value
            return response.status, response, text
        finally:
            connection.close()

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, form, **kwargs):
        return self.request("POST", path, form=form, **kwargs)

    def sign_in(self, token, operator="alice"):
        status, response, _ = self.post("/login", {"operator": operator, "token": token, "next": "/"})
        assert status == 303, status
        return response

    def csrf(self, path):
        status, _, text = self.get(path)
        assert status == 200, (status, text[:500])
        return re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)


def send_hostile(port):
    """A deferred message whose sender, recipient and subject are markup."""
    connection = SmtpConnection(port)
    try:
        connection.read_reply()
        connection.command("EHLO client.test")
        assert connection.command(f"MAIL FROM:<{HOSTILE_SENDER}>").startswith("250")
        assert connection.command(f"RCPT TO:<{HOSTILE_RECIPIENT}>").startswith("250")
        assert connection.command("DATA").startswith("354")
        connection.send(f"Subject: {HOSTILE_SUBJECT}\r\nContent-Type: text/html\r\n\r\n"
                        "<html><body onload=\"alert(3)\"><script>alert(4)</script>hi</body></html>\r\n.\r\n")
        reply = connection.read_reply()
        connection.command("QUIT")
        return re.search(QUEUE_ID, reply).group(0)
    finally:
        connection.close()


class ConsoleTest(PostgateTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.console, cls.base = cls.postgate.start_console("--token-file", cls.postgate.token_file, "--page-size", "3")
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.postgate.grpc_channel())

    def setUp(self):
        self.http = Http(self.base)

    def deferred(self, recipient="someone@example.org", subject="console"):
        reply = send_message(self.postgate.smtp_port, recipients=(recipient,), body=f"Subject: {subject}\r\n\r\nbody\r\n")
        queue_id = re.search(QUEUE_ID, reply).group(0)
        wait_for(lambda: self.state(queue_id) == queue_pb2.MESSAGE_STATE_DEFERRED, what=f"{queue_id} deferred")
        return queue_id

    def state(self, queue_id):
        try:
            return self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).state
        except Exception:  # NOT_FOUND after a delete.
            return None

    def audit_lines(self):
        return [line for line in self.console.log() if "audit:" in line]

    def test_pages_need_signing_in_and_a_wrong_token_gets_nothing(self):
        status, response, _ = self.http.get("/messages?state=deferred")
        self.assertEqual(status, 303)
        self.assertEqual(response.getheader("Location"), "/login?next=%2Fmessages%3Fstate%3Ddeferred")
        for path in ("/", "/message/ABCDEF0123456", "/events"):
            self.assertEqual(self.http.get(path)[0], 303, path)
        self.assertEqual(self.http.get("/events/stream")[0], 401)
        status, response, text = self.http.post("/login", {"operator": "mallory", "token": "wrong", "next": "/"})
        self.assertEqual(status, 401)
        self.assertIsNone(response.getheader("Set-Cookie"))
        self.assertIn("Wrong token.", text)
        self.assertEqual(self.http.get("/")[0], 303)
        self.console.wait_log(r"warning: console: login failed: operator=mallory client=127\.0\.0\.1")
        # A forged cookie is no session.
        self.http.cookie = "postgate_console=" + "0" * 64
        self.assertEqual(self.http.get("/")[0], 303)

    def test_sign_in_sets_a_strict_http_only_secure_cookie_and_sign_out_ends_it(self):
        response = self.http.sign_in(self.postgate.admin_token)
        cookie = response.getheader("Set-Cookie")
        self.assertRegex(cookie, r"^postgate_console=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict; Secure$")
        self.assertEqual(self.http.get("/")[0], 200)
        session = self.http.cookie
        csrf = self.http.csrf("/")
        status, response, _ = self.http.post("/logout", {"csrf": csrf})
        self.assertEqual(status, 303)
        self.assertIn("Max-Age=0", response.getheader("Set-Cookie"))
        self.http.cookie = session  # The old cookie no longer works.
        self.assertEqual(self.http.get("/")[0], 303)
        self.console.wait_log(r"audit: operator=alice client=127\.0\.0\.1 action=sign-out result=ok")

    def test_every_response_forbids_inline_script_framing_and_sniffing(self):
        self.http.sign_in(self.postgate.admin_token)
        for path in ("/", "/messages", "/events", "/login", "/static/console.js", "/nowhere", "/healthz"):
            status, response, _ = self.http.get(path)
            csp = response.getheader("Content-Security-Policy")
            self.assertIn("script-src 'self';", csp, path)
            self.assertNotIn("unsafe-inline", csp, path)
            self.assertIn("frame-ancestors 'none'", csp, path)
            self.assertEqual(response.getheader("X-Content-Type-Options"), "nosniff", path)
        self.assertEqual(self.http.get("/nowhere")[0], 404)
        self.assertEqual(self.http.request("PUT", "/")[0], 405)

    def test_actions_change_the_queue_and_each_leaves_an_audit_line(self):
        self.http.sign_in(self.postgate.admin_token, operator="ops.alice")
        queue_id = self.deferred()
        page = f"/message/{queue_id}"
        for action, state in (("hold", queue_pb2.MESSAGE_STATE_HOLD), ("release", None), ("requeue", None), ("flush", None)):
            status, _, text = self.http.get(f"{page}/{action}")
            self.assertEqual(status, 200)
            self.assertIn(f'<form method="post" action="{page}/{action}">', text)  # The confirmation.
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)
            status, response, _ = self.http.post(f"{page}/{action}", {"csrf": csrf})
            self.assertEqual(status, 303, action)
            self.assertEqual(response.getheader("Location"), f"{page}?done={action}")
            if state is not None:
                self.assertEqual(self.state(queue_id), state)
            else:  # Released, requeued, flushed: attempted again (and deferred again: example.org is held).
                wait_for(lambda: self.state(queue_id) in (queue_pb2.MESSAGE_STATE_DEFERRED, queue_pb2.MESSAGE_STATE_ACTIVE))
            self.console.wait_log(rf"audit: operator=ops\.alice client=127\.0\.0\.1 action={action} queue_id={queue_id} result=ok")
        held = self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id))
        self.assertNotEqual(held.state, queue_pb2.MESSAGE_STATE_HOLD)
        csrf = self.http.csrf(f"{page}/delete")
        status, response, _ = self.http.post(f"{page}/delete", {"csrf": csrf})
        self.assertEqual((status, response.getheader("Location")), (303, "/?deleted=1"))
        self.assertIsNone(self.state(queue_id))
        self.assertEqual(self.http.get(page)[0], 404)
        # A hold names the operator in the queue itself too.
        other = self.deferred()
        self.http.post(f"/message/{other}/hold", {"csrf": self.http.csrf(f"/message/{other}/hold")})
        self.assertEqual(self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=other)).hold_reason,
                         "held by ops.alice (web console)")
        # Flush by domain, on every replica.
        csrf = self.http.csrf("/flush?domain=example.org")
        status, response, _ = self.http.post("/flush", {"csrf": csrf, "domain": "example.org"})
        self.assertEqual(status, 303)
        self.assertRegex(response.getheader("Location"), r"^/\?flushed=\d+$")
        self.console.wait_log(r"audit: operator=ops\.alice client=127\.0\.0\.1 action=flush domain=example\.org result=ok")

    def test_forged_cross_site_and_anonymous_actions_change_nothing(self):
        queue_id = self.deferred()
        path = f"/message/{queue_id}/hold"
        audits = len(self.audit_lines())
        # No session at all.
        self.assertEqual(self.http.post(path, {"csrf": "0" * 64})[0], 403)
        self.http.sign_in(self.postgate.admin_token)
        csrf = self.http.csrf(path)
        # A session, but a missing or wrong CSRF token (a forged form).
        self.assertEqual(self.http.post(path, {})[0], 403)
        self.assertEqual(self.http.post(path, {"csrf": "f" * 64})[0], 403)
        # The right token, but sent from another site (Origin / Sec-Fetch-Site).
        self.assertEqual(self.http.post(path, {"csrf": csrf}, headers={"Origin": "http://evil.example"})[0], 403)
        self.assertEqual(self.http.post(path, {"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})[0], 403)
        # Another session's token is not this one's.
        other = Http(self.base)
        other.sign_in(self.postgate.admin_token, operator="bob")
        self.assertEqual(other.post(path, {"csrf": csrf})[0], 403)
        # GET never acts.
        self.assertEqual(self.http.get(path)[0], 200)
        self.assertEqual(self.state(queue_id), queue_pb2.MESSAGE_STATE_DEFERRED)
        self.assertEqual(len(self.audit_lines()), audits + 2)  # Only the two sign-ins.
        self.console.wait_log(r"warning: console: refused POST /message/\w+/hold from 127\.0\.0\.1: This request came from another site")

    def test_hostile_addresses_subject_and_body_are_shown_as_text(self):
        queue_id = send_hostile(self.postgate.smtp_port)
        wait_for(lambda: self.state(queue_id) == queue_pb2.MESSAGE_STATE_DEFERRED)
        self.http.sign_in(self.postgate.admin_token)
        _, _, listing = self.http.get("/messages?recipient=%3Cb%3E")
        _, _, message = self.http.get(f"/message/{queue_id}")
        for page in (listing, message):
            self.assertNotIn("<script>alert", page)
            self.assertNotIn("<b>bold", page)
            self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
            self.assertIn("&quot;&lt;b&gt;bold&lt;/b&gt;&quot;@example.org", page)
        self.assertIn(queue_id, listing)
        self.assertIn("Subject: &lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;", message)
        self.assertIn("&lt;html&gt;&lt;body onload=&quot;alert(3)&quot;&gt;", message)
        self.assertNotIn("<script>", message)

    def test_list_pages_through_every_message_once_in_arrival_order(self):
        self.http.sign_in(self.postgate.admin_token)
        ids = [self.deferred(recipient=f"page{i}@paging.example") for i in range(7)]
        seen, path = [], "/messages?recipient=%40paging.example"
        while path:
            status, _, text = self.http.get(path)
            self.assertEqual(status, 200)
            rows = re.findall(r'<tr data-queue-id="(\w+)"', text)
            self.assertLessEqual(len(rows), 3)  # --page-size 3
            seen += rows
            link = re.search(r'<a rel="next" href="([^"]+)"', text)
            path = link.group(1).replace("&amp;", "&") if link else None
        self.assertEqual(seen, ids)
        _, _, newest = self.http.get("/messages?recipient=%40paging.example&order=newest")
        self.assertEqual(re.findall(r'<tr data-queue-id="(\w+)"', newest), ids[::-1][:3])
        # Filters: state and age.
        _, _, held = self.http.get("/messages?state=hold&recipient=%40paging.example")
        self.assertEqual(re.findall(r'<tr data-queue-id="(\w+)"', held), [])
        _, _, old = self.http.get("/messages?recipient=%40paging.example&min_age=3600")
        self.assertEqual(re.findall(r'<tr data-queue-id="(\w+)"', old), [])
        self.assertEqual(self.http.get("/messages?state=bogus")[0], 400)
        self.assertEqual(self.http.get("/messages?after=..%2Fx")[0], 400)

    def test_overview_counts_states_and_the_last_hour(self):
        self.http.sign_in(self.postgate.admin_token)
        queue_id = self.deferred()
        send_message(self.postgate.smtp_port)
        self.postgate.wait_delivered("bar", 1)
        status = self.stub.GetQueueStatus(queue_pb2.GetQueueStatusRequest())
        deferred = next(s.messages for s in status.by_state if s.state == queue_pb2.MESSAGE_STATE_DEFERRED)
        activity = self.stub.GetActivity(queue_pb2.GetActivityRequest())
        self.assertEqual(len(activity.minutes), 60)
        received = sum(m.received for m in activity.minutes)
        self.assertGreaterEqual(received, 2)
        _, _, page = self.http.get("/")
        self.assertIn(f'data-state="deferred">{deferred}<', page)
        self.assertRegex(page, r'data-series="received">(\d+)<')
        self.assertGreaterEqual(int(re.search(r'data-series="received">(\d+)<', page).group(1)), received)
        self.assertGreaterEqual(int(re.search(r'data-series="delivered">(\d+)<', page).group(1)), 1)
        self.assertIn(f"127.0.0.1:{self.postgate.grpc_port}", page)
        self.assertIn(queue_id, self.http.get("/messages?state=deferred&order=newest")[2])

    def test_live_feed_streams_events_for_the_chosen_domain_only(self):
        self.http.sign_in(self.postgate.admin_token)
        events, opened = [], threading.Event()

        def follow():
            sock = socket.create_connection((self.http.host, self.http.port), timeout=30)
            sock.sendall(f"GET /events/stream?domain=feed.example HTTP/1.1\r\nHost: x\r\nCookie: {self.http.cookie}\r\n\r\n".encode())
            buffer = b""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(events) < 2:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                if b"event: ready\n" in buffer:  # Every replica has the watch in place.
                    opened.set()
                for data in re.findall(rb"event: queue\ndata: (.*)\n\n", buffer):
                    event = json.loads(data)
                    if event not in events:
                        events.append(event)
            sock.close()

        reader = threading.Thread(target=follow)
        reader.start()
        wait_for(opened.is_set, what="the feed to open")
        self.deferred(recipient="other@elsewhere.example")
        feed_id = self.deferred(recipient="x@feed.example")
        reader.join(timeout=40)
        self.assertGreaterEqual(len(events), 2, events)
        self.assertEqual({e["queue_id"] for e in events}, {feed_id})
        self.assertEqual([e["kind"] for e in events[:2]], ["received", "deferred"])
        self.assertEqual(events[1]["recipient"], "x@feed.example")

    def test_no_open_redirect_and_no_forged_log_lines(self):
        for target in ("//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example/"):
            http = Http(self.base)
            status, response, _ = http.post("/login", {"operator": "alice", "token": self.postgate.admin_token, "next": target})
            self.assertEqual((status, response.getheader("Location")), (303, "/"), target)
        http = Http(self.base)
        http.sign_in(self.postgate.admin_token)
        csrf = http.csrf("/")
        self.assertEqual(http.get("/flush?domain=x%0Aaudit:+operator%3Droot")[0], 400)
        self.assertEqual(http.post("/flush", {"csrf": csrf, "domain": "x\naudit: operator=root"})[0], 400)
        self.assertEqual(http.post("/message/%0Afake-line/hold", {"csrf": "0"})[0], 403)
        self.console.wait_log(r"refused POST /message/\?fake-line/hold")
        self.assertFalse([line for line in self.console.log() if line.startswith(("fake-line", "audit: operator=root"))])

    def test_a_long_body_shows_its_first_256_kib(self):
        line = "0123456789" * 10 + "\r\n"
        reply = send_message(self.postgate.smtp_port, recipients=("long@example.org",),
                             body="Subject: long\r\n\r\n" + line * 3000 + "THE-END\r\n")  # 306 KB
        queue_id = re.search(QUEUE_ID, reply).group(0)
        self.http.sign_in(self.postgate.admin_token)
        _, _, page = self.http.get(f"/message/{queue_id}")
        body = re.search(r'<pre class="body">(.*?)</pre>', page, re.S).group(1)
        self.assertEqual(len(body.encode()), 256 * 1024)  # Digits and line ends: nothing to escape.
        self.assertNotIn("THE-END", page)
        self.assertIn("The body is longer; only its beginning is shown.", page)

    def test_the_admin_token_never_reaches_a_page_or_the_log(self):
        self.http.sign_in(self.postgate.admin_token)
        self.http.post("/login", {"operator": "eve", "token": self.postgate.admin_token + "x"})
        pages = "".join(self.http.get(path)[2] for path in ("/", "/messages", "/events", "/login"))
        self.assertNotIn(self.postgate.admin_token, pages)
        self.assertFalse([line for line in self.console.log() if self.postgate.admin_token in line])


class ConsoleOpenReadAndProxyTest(PostgateTestCase):
    """--read-access open: pages without signing in, but no content and no actions; and a trusted
    reverse proxy's header naming the operator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.console, cls.base = cls.postgate.start_console(
            "--token-file", cls.postgate.token_file, "--read-access", "open",
            "--trusted-user-header", "X-Forwarded-User", "--trusted-proxy", "127.0.0.1")
        cls.stub = queue_pb2_grpc.QueueServiceStub(cls.postgate.grpc_channel())

    def test_open_pages_show_no_content_and_refuse_actions(self):
        reply = send_message(self.postgate.smtp_port, recipients=("a@example.org",), body="Subject: secret plans\r\n\r\nbody\r\n")
        queue_id = re.search(QUEUE_ID, reply).group(0)
        http = Http(self.base)
        status, _, page = http.get(f"/message/{queue_id}")
        self.assertEqual(status, 200)
        self.assertNotIn("secret plans", page)
        self.assertIn("Sign in to see the headers and the text.", page)
        self.assertNotIn("/hold\"", page)
        self.assertEqual(http.get(f"/message/{queue_id}/hold")[0], 303)  # To the login form.
        self.assertEqual(http.post(f"/message/{queue_id}/hold", {"csrf": "x"})[0], 403)

    def test_repeated_wrong_tokens_make_the_address_wait(self):
        http = Http(self.base)
        for _ in range(10):
            self.assertEqual(http.post("/login", {"operator": "guess", "token": "wrong"})[0], 401)
        status, response, text = http.post("/login", {"operator": "guess", "token": self.postgate.admin_token})
        self.assertEqual(status, 429)  # Even the right token, until the 5 minutes are over.
        self.assertIsNone(response.getheader("Set-Cookie"))
        self.assertIn("Too many failed attempts", text)
        self.console.wait_log(r"warning: console: sign-in refused for 127\.0\.0\.1: too many failures")

    def test_live_feeds_are_limited_to_a_quarter_of_the_threads(self):
        console, base = self.postgate.start_console("--read-access", "open", "--threads", "4")
        port = int(base.rsplit(":", 1)[1])
        first = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            first.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"event: ready" not in received:
                received += first.recv(4096)
            self.assertIn(b"text/event-stream", received)
            status, response, _ = Http(base).get("/events/stream")
            self.assertEqual((status, response.getheader("Retry-After")), (503, "10"))
            self.assertEqual(Http(base).get("/healthz")[0], 200)  # Pages still answer.
        finally:
            first.close()

    def test_a_trusted_proxy_names_the_operator(self):
        reply = send_message(self.postgate.smtp_port, recipients=("b@example.org",))
        queue_id = re.search(QUEUE_ID, reply).group(0)
        wait_for(lambda: self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).state == queue_pb2.MESSAGE_STATE_DEFERRED)
        http = Http(self.base)
        proxy = {"X-Forwarded-User": "carol@example.com"}
        status, _, page = http.get(f"/message/{queue_id}/hold", headers=proxy)
        self.assertEqual(status, 200)
        self.assertIn("carol@example.com", page)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        self.assertEqual(http.post(f"/message/{queue_id}/hold", {"csrf": csrf}, headers=proxy)[0], 303)
        self.assertEqual(self.stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=queue_id)).state, queue_pb2.MESSAGE_STATE_HOLD)
        self.console.wait_log(rf"audit: operator=carol@example\.com client=127\.0\.0\.1 action=hold queue_id={queue_id} result=ok")
        # The proxy's token is bound to the name: another name cannot reuse it.
        self.assertEqual(http.post(f"/message/{queue_id}/release", {"csrf": csrf}, headers={"X-Forwarded-User": "dave"})[0], 403)


class ConsoleReplicasTest(PostgateTestCase):
    """Two replicas behind one console: the overview sums them, the list pages through both in
    arrival order, actions reach the replica that holds the message."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.second = Postgate({"postgate_queue_replica_id": "1"})
        cls.second.admin_token = cls.postgate.admin_token
        with open(cls.second.token_file, "w") as out:
            out.write(cls.postgate.admin_token + "\n")
        cls.second.start()
        servers = f"127.0.0.1:{cls.postgate.grpc_port},127.0.0.1:{cls.second.grpc_port}"
        cls.console, cls.base = cls.postgate.start_console("--token-file", cls.postgate.token_file, "--page-size", "2",
                                                           servers=servers)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.second.cleanup()
        finally:
            super().tearDownClass()

    def test_pages_merge_both_replicas_and_actions_find_the_holder(self):
        ids = []
        for i in range(6):
            port = (self.postgate if i % 2 == 0 else self.second).smtp_port
            ids.append(re.search(QUEUE_ID, send_message(port, recipients=(f"r{i}@both.example",))).group(0))
        http = Http(self.base)
        http.sign_in(self.postgate.admin_token)
        seen, path = [], "/messages?recipient=%40both.example"
        while path:
            _, _, text = http.get(path)
            seen += re.findall(r'<tr data-queue-id="(\w+)"', text)
            link = re.search(r'<a rel="next" href="([^"]+)"', text)
            path = link.group(1).replace("&amp;", "&") if link else None
        self.assertEqual(seen, sorted(ids))  # Each once, in ID (= arrival) order across both replicas.
        self.assertEqual({i[-1] for i in seen}, {"0", "1"})  # The last digit names the replica.
        on_second = ids[1]
        csrf = http.csrf(f"/message/{on_second}/hold")
        self.assertEqual(http.post(f"/message/{on_second}/hold", {"csrf": csrf})[0], 303)
        stub = queue_pb2_grpc.QueueServiceStub(self.second.grpc_channel())
        self.assertEqual(stub.GetMessage(queue_pb2.GetMessageRequest(queue_id=on_second)).state, queue_pb2.MESSAGE_STATE_HOLD)
        _, _, overview = http.get("/")
        self.assertIn(f"127.0.0.1:{self.second.grpc_port}", overview)
        self.assertIn('data-state="hold">1<', overview)
