"""A tiny SMTP client for tests that must run inside a network namespace (`ip netns exec NS
/usr/bin/python3 netns_smtp.py HOST PORT`): reads the greeting, sends each stdin line as a command
and prints the replies as a JSON list (the greeting first)."""
import json
import socket
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port), timeout=10) as sock:
        stream = sock.makefile("rb")

        def reply():
            lines = []
            while True:
                line = stream.readline()
                if not line:
                    lines.append("(connection closed)")
                    return "".join(lines)
                lines.append(line.decode("utf-8", "replace"))
                if line[3:4] != b"-":
                    return "".join(lines)

        replies = [reply()]
        for command in sys.stdin.read().splitlines():
            sock.sendall(command.encode() + b"\r\n")
            replies.append(reply())
    print(json.dumps(replies))


if __name__ == "__main__":
    main()
