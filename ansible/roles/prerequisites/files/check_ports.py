#!/usr/bin/env python3
"""Try TCP connections to peers; print which paths are blocked, as JSON.

An answer (open, or refused because nothing listens yet) proves the path works; a timeout
or "no route" means something drops the traffic on the way. A path that times out is tried
again: on a tailnet the first packets to a peer may wait for its tunnel to come up (a
handshake through the relay), which a single short try can take for a block.
"""

import base64
import errno
import json
import socket
import sys
import time

TRIES = 3


def probe(address: str, port: int, timeout: float) -> str | None:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return None
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return None
        return exc.strerror or str(exc)


def main() -> None:
    targets = json.loads(base64.b64decode(sys.argv[1]))
    timeout = float(sys.argv[2])
    blocked = []
    for target in targets:
        for attempt in range(TRIES):
            error = probe(target["address"], int(target["port"]), timeout)
            if error != "timed out":
                break
            if attempt + 1 < TRIES:
                time.sleep(1)
        if error:
            blocked.append({**target, "error": error})
    print(json.dumps({"checked": len(targets), "blocked": blocked}))


main()
