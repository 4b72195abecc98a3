#!/usr/bin/env python3
"""Polls a balancer every 100 ms for SECONDS and writes the first epoch time at which it
reports upstream u2 down to OUT_FILE (nothing if it never does).
tandem-lb: GET /status on the admin port; HAProxy: 'show stat' on the stats socket."""
import json, socket, sys, time, urllib.request

kind, where, out, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def u2_down():
    if kind.startswith("tandem-lb"):
        with urllib.request.urlopen(f"http://127.0.0.1:{where}/status", timeout=1) as r:
            status = json.load(r)
        return any(c["name"] == "u2" and not c["healthy"] for c in status["clusters"])
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(1)
    s.connect(where)
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    for line in data.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "clusters" and f[1] == "u2":
            return f[17].startswith("DOWN")
    return False

end = time.time() + seconds
with open(out, "w") as f:
    while time.time() < end:
        try:
            if u2_down():
                f.write(f"{time.time()}\n")
                break
        except Exception:
            pass
        time.sleep(0.1)
