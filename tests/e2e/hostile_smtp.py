"""Fake SMTP servers that misbehave on purpose, each on its own loopback port: what a remote any
domain's MX can point at would do to Postgate's SMTP client. One thread per connection."""
import socket
import struct
import threading
import time

OK_EHLO = b"250-hostile.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def _lines(conn):
    """Yields the client's lines (bytes, CRLF stripped) until it closes."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        line, buffer = buffer.split(b"\n", 1)
        yield line.rstrip(b"\r")


def endless_multiline(conn):
    line = b"220-more and more\r\n"
    while True:
        conn.sendall(line * 1000)


def wide_multiline(conn):
    line = b"220-" + b"w" * 2000 + b"\r\n"  # 33 lines pass 64 KiB long before 1000 lines.
    while True:
        conn.sendall(line * 10)


def huge_line(conn):
    conn.sendall(b"220-")
    chunk = b"a" * (1 << 20)
    for _ in range(100):  # 100 MB without a line end
        conn.sendall(chunk)


def drip(conn):
    for byte in b"220 slow.test ESMTP\r\n":
        conn.sendall(bytes([byte]))
        time.sleep(0.5)
    time.sleep(5)


def garbage_greeting(conn):
    conn.sendall(b"\x00\xff\xfe garbage \x1b[31m instead of a greeting\r\n")
    time.sleep(5)


def own_hostname(conn):
    conn.sendall(b"220 mail169.com ESMTP Postgate\r\n")
    for _ in _lines(conn):
        conn.sendall(b"250 ok\r\n")


def own_hostname_in_ehlo(conn):
    _session(conn, _lines(conn), ehlo=b"250-mail169.com\r\n250 8BITMIME\r\n")


def reset_in_data(conn):
    def cut(conn, lines):
        conn.sendall(b"354 go ahead\r\n")
        conn.recv(10)  # Some of the message, then a TCP reset.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _session(conn, _lines(conn), on_data=cut)


def early_reply(conn):
    def answer_early(conn, lines):
        conn.sendall(b"354 go ahead\r\n250 2.0.0 accepted before the data\r\n")
        for line in lines:
            if line == b".":
                conn.sendall(b"250 2.0.0 and again\r\n")
    _session(conn, _lines(conn), on_data=answer_early)


def _session(conn, lines, ehlo=OK_EHLO, on_starttls=None, on_data=None, greet=True):
    """A whole SMTP session. STARTTLS (when offered in `ehlo`) is handed to `on_starttls(conn)`,
    DATA to `on_data(conn, lines)` when given; otherwise each message accepted with its final dot
    is counted in HostileServer.delivered."""
    if greet:  # Not after STARTTLS: the client speaks first (EHLO again).
        conn.sendall(b"220 hostile.test ESMTP\r\n")
    in_data = False
    for line in lines:
        if in_data:
            if line == b".":
                in_data = False
                conn.sendall(b"250 2.0.0 Ok: queued\r\n")
                HostileServer.delivered += 1
            continue
        verb = line[:4].upper()
        if verb == b"EHLO":
            conn.sendall(ehlo)
        elif verb == b"STAR":
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            return on_starttls(conn)
        elif verb == b"DATA" and on_data:
            return on_data(conn, lines)
        elif verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            in_data = True
        elif verb == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return None
        else:
            conn.sendall(b"250 ok\r\n")
    return None


TLS_EHLO = b"250-tls.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"


def tls_garbage(conn):
    """STARTTLS offered, then bytes that are no TLS at all; plaintext sessions deliver."""
    def garbage(c):
        c.sendall(b"\x15\x03\x03 this is not TLS " * 20)
        return None
    _session(conn, _lines(conn), TLS_EHLO, garbage)


def tls_sni(conn):
    """A real TLS server (the snakeoil pair in HostileServer.tls_files) that notes the SNI name."""
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*HostileServer.tls_files)

    def note(ssl_socket, server_name, _):
        HostileServer.sni_names.append(server_name)

    context.sni_callback = note

    def upgrade(c):
        secure = context.wrap_socket(c, server_side=True)
        _session(secure, _lines(secure), TLS_EHLO.replace(b"250-STARTTLS\r\n", b""), lambda _: None,
                       greet=False)
        return None
    _session(conn, _lines(conn), TLS_EHLO, upgrade)


SCENARIOS = {function.__name__: function for function in (tls_garbage, tls_sni,
    endless_multiline, wide_multiline, huge_line, drip, own_hostname_in_ehlo, garbage_greeting, own_hostname, reset_in_data, early_reply)}


class HostileServer:
    """Listens on 127.0.0.1:port and plays `scenario` to every client."""
    delivered = 0          # Messages the TLS scenarios accepted (all servers together).
    sni_names = []         # Server names TLS clients sent (None: no SNI).
    tls_files = None       # (certificate, key) for tls_sni.

    def __init__(self, scenario):
        self.scenario = SCENARIOS[scenario]
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.scenario(conn)
        except OSError:
            pass  # The client gave up on us: that is the point.
        finally:
            conn.close()

    def stop(self):
        self._stop = True
        self.listener.close()
