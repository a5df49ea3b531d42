#!/usr/bin/python3
"""A deliberately slow SMTP sink for bench/outbound.sh: answers every command at once but holds
each message's end of DATA for HOLD seconds before its 250, so a sender's conversations pile up.
Counts messages and the most conversations it held at the same time; writes them to STATS (JSON)
every half second and on SIGTERM.

    slow_sink.py PORT HOLD STATS
"""
import asyncio
import json
import signal
import sys

port, hold, stats_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
stats = {"connections": 0, "messages": 0, "holding": 0, "most_held": 0, "open": 0, "most_open": 0}


async def session(reader, writer):
    stats["connections"] += 1
    stats["open"] += 1
    stats["most_open"] = max(stats["most_open"], stats["open"])
    try:
        writer.write(b"220 slow.sink ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO",):
                writer.write(b"250-slow.sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                while True:
                    data = await reader.readline()
                    if not data:
                        return
                    if data == b".\r\n":
                        break
                stats["holding"] += 1
                stats["most_held"] = max(stats["most_held"], stats["holding"])
                await asyncio.sleep(hold)
                stats["holding"] -= 1
                stats["messages"] += 1
                writer.write(b"250 2.0.0 Ok: held and taken\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"250 2.0.0 Ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        stats["open"] -= 1
        writer.close()


def save():
    with open(stats_path + ".tmp", "w") as out:
        json.dump(stats, out)
    import os
    os.replace(stats_path + ".tmp", stats_path)


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=4096, limit=65536)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        while not stop.is_set():
            save()
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
    save()


asyncio.run(main())
