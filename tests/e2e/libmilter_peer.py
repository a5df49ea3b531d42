"""A milter built on libmilter itself (Debian's python3-milter binds it), for the actions no
packaged filter exercises. What it does is chosen by the message: the sender's or recipient's
local part at MAIL/RCPT, an "X-Test:" header at the end of the message.

    /usr/bin/python3 libmilter_peer.py PORT     (listens on inet:PORT@127.0.0.1)

MAIL from reject-mail@…: REJECT; RCPT to …+reply-rcpt@…: a custom 550 reply; …+tempfail-rcpt@…:
TEMPFAIL. X-Test: chgfrom | addrcpt | delrcpt | addalias | delalias (team@mail169.com) | replbody | headers | quarantine | reply |
discard | tempfail | stall (sleeps STALL seconds) | die (the process exits in the body).
Each connection is logged on stdout as "connect: <name> <address> <{daemon_name}> <_>", each message
seen as "seen: <queue id> <headers it was shown>".
"""
import os
import sys
import time

import Milter

STALL = float(os.environ.get("STALL", "5"))


class TestMilter(Milter.Base):
    def __init__(self):
        self.headers = []
        self.test = ""

    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        print("connect:", hostname, hostaddr[0], self.getsymval("{daemon_name}"), self.getsymval("_"), flush=True)
        return Milter.CONTINUE

    def envfrom(self, sender, *params):
        self.headers = []
        self.test = ""
        if sender.strip("<>").startswith("reject-mail@"):
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, recipient, *params):
        local = recipient.strip("<>").split("@")[0]
        if local.endswith("+reply-rcpt"):
            self.setreply("550", "5.7.1", "Recipient refused by the test milter")
            return Milter.REJECT
        if local.endswith("+tempfail-rcpt"):
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    def header(self, name, value):
        self.headers.append(f"{name}: {value}")
        if name.lower() == "x-test":
            self.test = value.strip()
        return Milter.CONTINUE

    def body(self, chunk):
        if self.test == "die":
            sys.stdout.flush()
            os._exit(3)  # Mid-body: the connection closes under the MTA.
        return Milter.CONTINUE

    def eom(self):
        queue_id = self.getsymval("i")
        print("seen:", queue_id, "|".join(self.headers), flush=True)
        test = self.test
        if test == "chgfrom":
            self.chgfrom("<changed@mail169.com>")
        elif test == "addrcpt":
            self.addrcpt("<foo@mail169.com>")
        elif test == "delrcpt":
            self.delrcpt("<bar@mail169.com>")
            self.addrcpt("<foo@mail169.com>")
        elif test == "addalias":
            self.addrcpt("<team@mail169.com>")
        elif test == "delalias":
            self.delrcpt("<team@mail169.com>")
            self.addrcpt("<bar@mail169.com>")
        elif test == "replbody":
            self.replacebody(b"replaced body line 1\r\nline 2\r\n")
        elif test == "headers":
            self.addheader("X-Added", "added by milter")
            self.addheader("X-Inserted", "at the top", 0)
            self.chgheader("Subject", 1, "changed subject")
            self.chgheader("X-Remove-Me", 1, "")
        elif test == "quarantine":
            self.quarantine("held by the test milter")
        elif test == "reply":
            self.setreply("550", "5.7.1", "Message refused by the test milter")
            return Milter.REJECT
        elif test == "discard":
            return Milter.DISCARD
        elif test == "tempfail":
            return Milter.TEMPFAIL
        elif test == "stall":
            time.sleep(STALL)
        return Milter.ACCEPT


def main():
    port = int(sys.argv[1])
    Milter.factory = TestMilter
    Milter.set_flags(Milter.CHGBODY | Milter.CHGHDRS | Milter.ADDHDRS | Milter.ADDRCPT | Milter.DELRCPT |
                     Milter.CHGFROM | Milter.QUARANTINE)
    print("listening", port, flush=True)
    Milter.runmilter("postgate-test", f"inet:{port}@127.0.0.1", 60)


if __name__ == "__main__":
    main()
