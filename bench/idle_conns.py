#!/usr/bin/env python3
"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET on each, reads the answer,
then keeps them idle. Writes the number opened to READY_FILE and waits until STOP_FILE exists.
CONCURRENCY (default 500) connections are opened and answered at a time: 1 measures what an
idle connection costs, 500 adds what the proxy keeps after a burst of requests in flight."""
import asyncio, os, sys

port, count, ready, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 500

async def one(held):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await r.readexactly(length)
        held.append(w)
    except Exception:
        pass

async def main():
    held = []
    sem = asyncio.Semaphore(concurrency)
    async def guarded():
        async with sem:
            await one(held)
    await asyncio.gather(*(guarded() for _ in range(count)))
    with open(ready + ".tmp", "w") as f:
        f.write(str(len(held)))
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(stop):
        await asyncio.sleep(0.1)
    for w in held:
        w.close()

asyncio.run(main())
