#!/usr/bin/env python3
"""bench/probe.py — SMTP measurements smtp-source cannot make (bench/run.sh calls them).

  probe.py latency HOST PORT --rate R --seconds S [--connections C] [--size B]
      Sends messages at a fixed rate R (open loop: a slow reply does not slow the schedule) over
      C persistent sessions (MAIL, RCPT, DATA, RSET) and times each from the moment the final
      "<CRLF>.<CRLF>" is written to the moment its 250 is read. Prints rate, p50, p90, p99, max.
  probe.py idle HOST PORT --idle N --wait W [--rss-pid PID] [latency options]
      Opens N connections that send nothing and counts those greeted with 220 within W seconds
      (and reads PID's RSS then); then, with all of them still open, runs the latency probe.
  probe.py big HOST PORT --sessions N --size B
      N concurrent sessions each send one message of B bytes (in 64 KiB writes) and wait for
      their 250; prints how many were accepted and how long it took.

Every phase has a deadline; the output is one line of key=value pairs.
"""
import argparse
import asyncio
import resource
import sys
import time

SENDER = "foo@mail169.com"
RECIPIENT = "bar@mail169.com"


async def read_reply(reader):
    """One SMTP reply (all its lines); returns (code, text)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return int(lines[-1][:3]), "\n".join(lines)


async def command(reader, writer, text, expect):
    writer.write(text.encode() + b"\r\n")
    code, reply = await read_reply(reader)
    if code // 100 != expect:
        raise RuntimeError(f"{text!r} -> {reply!r}")
    return reply


async def open_session(host, port):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    code, reply = await read_reply(reader)
    if code != 220:
        raise RuntimeError(f"greeting {reply!r}")
    await command(reader, writer, "EHLO probe.test", 2)
    return reader, writer


def body(size):
    line = b"x" * 76 + b"\r\n"
    text = b"Subject: probe\r\n\r\n" + line * (max(0, size) // len(line) + 1)
    return text[:size] + b"\r\n" if size > 0 else b"Subject: probe\r\n\r\nx\r\n"


async def latency(host, port, rate, seconds, connections, size):
    message = body(size)
    queue = asyncio.Queue()
    samples, errors = [], []

    async def session():
        reader, writer = await open_session(host, port)
        try:
            while True:
                due = await queue.get()
                if due is None:
                    return
                await command(reader, writer, f"MAIL FROM:<{SENDER}>", 2)
                await command(reader, writer, f"RCPT TO:<{RECIPIENT}>", 2)
                await command(reader, writer, "DATA", 3)
                writer.write(message)
                await writer.drain()
                start = time.perf_counter()
                writer.write(b".\r\n")
                code, reply = await read_reply(reader)
                if code != 250:
                    errors.append(reply)
                else:
                    samples.append(time.perf_counter() - start)
        finally:
            writer.close()

    sessions = [asyncio.create_task(session()) for _ in range(connections)]
    begin = time.perf_counter()
    count = int(rate * seconds)
    for i in range(count):  # Open loop: message i is due at begin + i / rate.
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
    for _ in sessions:
        queue.put_nowait(None)
    try:
        await asyncio.wait_for(asyncio.gather(*sessions), timeout=seconds + 60)
    except Exception as error:  # Counted below: fewer samples than messages.
        errors.append(repr(error))
    elapsed = time.perf_counter() - begin
    samples.sort()

    def quantile(q):
        return 1000 * samples[min(len(samples) - 1, int(q * len(samples)))] if samples else float("nan")

    return (f"sent={count} accepted={len(samples)} errors={len(errors)} rate={len(samples) / elapsed:.1f} "
            f"p50_ms={quantile(0.50):.2f} p90_ms={quantile(0.90):.2f} p99_ms={quantile(0.99):.2f} "
            f"max_ms={(1000 * samples[-1]) if samples else float('nan'):.2f}"
            + (f" first_error={errors[0]!r}" if errors else ""))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def idle(host, port, count, wait, probe, rss_pid):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    greeted_at = []
    holders = []
    begin = time.perf_counter()

    async def hold():
        reader, writer = await asyncio.open_connection(host, port)
        holders.append(writer)
        line = await reader.readline()
        if line.startswith(b"220"):
            greeted_at.append(time.perf_counter() - begin)

    tasks = [asyncio.create_task(hold()) for _ in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=wait)
    refused = sum(1 for t in done if t.exception() is not None)
    result = (f"idle={count} greeted_within_{wait:g}s={len(greeted_at)} refused={refused} silent={len(pending)} "
              f"last_greeting_s={max(greeted_at) if greeted_at else float('nan'):.2f}")
    if rss_pid:
        result += f" server_rss_mib={rss_mib(rss_pid):.0f}"  # With all of them still open.
    alongside = await latency(host, port, *probe) if probe else ""
    for task in pending:
        task.cancel()
    for writer in holders:
        writer.close()
    return result + " " + alongside


async def big(host, port, sessions, size):
    chunk = (b"y" * 1022 + b"\r\n") * 64
    accepted, errors = 0, []

    async def one():
        nonlocal accepted
        reader, writer = await open_session(host, port)
        try:
            await command(reader, writer, f"MAIL FROM:<{SENDER}> SIZE={size}", 2)
            await command(reader, writer, f"RCPT TO:<{RECIPIENT}>", 2)
            await command(reader, writer, "DATA", 3)
            writer.write(b"Subject: big\r\n\r\n")
            sent = 0
            while sent < size:
                piece = chunk[: size - sent]
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
            writer.write(b"\r\n.\r\n")
            code, reply = await read_reply(reader)
            if code == 250:
                accepted += 1
            else:
                errors.append(reply)
        finally:
            writer.close()

    begin = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(sessions)), return_exceptions=True),
                                     timeout=600)
    errors += [repr(r) for r in results if isinstance(r, BaseException)]
    return (f"sessions={sessions} size={size} accepted={accepted} errors={len(errors)} "
            f"seconds={time.perf_counter() - begin:.2f}" + (f" first_error={errors[0]!r}" if errors else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["latency", "idle", "big"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--wait", type=float, default=5)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rss-pid", type=int, default=0, help="idle: report this process's RSS with all open")
    args = parser.parse_args()
    if args.mode == "latency":
        line = asyncio.run(latency(args.host, args.port, args.rate, args.seconds, args.connections, args.size))
    elif args.mode == "idle":
        probe = (args.rate, args.seconds, args.connections, args.size) if args.seconds > 0 else None
        line = asyncio.run(idle(args.host, args.port, args.idle, args.wait, probe, args.rss_pid))
    else:
        line = asyncio.run(big(args.host, args.port, args.sessions, args.size))
    print(line)
    return 0 if "errors=" not in line or "errors=0 " in line + " " else 1


if __name__ == "__main__":
    sys.exit(main())
