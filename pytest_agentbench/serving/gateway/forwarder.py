"""Reaching the gateway from a sandbox without a network: a forwarder on the sandbox's own loopback.

Sandboxes keep no network (``network=none``; bubblewrap ``--unshare-net``): the only way out
is the gateway's *agent socket*, a Unix socket whose folder the sandbox mounts read-only at
``/run/agentbench-gateway`` (``gateway_socket=`` of the docker and local sandboxes). Agents
speak HTTP over TCP, so :func:`forwarder_argv` wraps the agent's command in a small forwarder
that listens on ``127.0.0.1:PORT`` *inside* the sandbox, pipes each connection to the socket,
starts the agent, and exits with the agent's status (so the agent's base URL is
``http://127.0.0.1:PORT/v1`` and nothing else is reachable: there is no route anywhere else).

Why a Python forwarder and not socat: every sandbox has ``python3`` (the packet contract), socat
is in neither the base image nor the host's ``/usr``, and an image change would have to be built
from the registry for every machine. The forwarder is the standard library only (Python 3.8+),
passed as ``python3 -c SOURCE`` - nothing is written into the workspace - and costs one
interpreter start (~20 ms). It runs in the *same* command as the agent on purpose: the local
sandbox gives every command a fresh network namespace, and both sandboxes kill whatever a
command leaves behind when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FORWARDER_EXIT", "FORWARDER_SOURCE", "GATEWAY_PORT", "forwarder_argv"]

#: The port the forwarder listens on inside a sandbox (each sandbox has its own loopback).
GATEWAY_PORT = 8765
#: The forwarder's exit status when it cannot start (the port is taken, no command given).
FORWARDER_EXIT = 125

FORWARDER_SOURCE = r"""
import signal, socket, subprocess, sys, threading

EXIT = @EXIT@


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


def serve(conn, path):
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        up.connect(path)
    except OSError as exc:
        body = ('{"error": {"message": "agentbench forwarder: the gateway socket %s does not answer: %s", '
                '"type": "upstream_error"}}' % (path, exc)).encode()
        head = "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nConnection: close\r\n"
        conn.sendall((head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body)
        conn.close()
        up.close()
        return
    back = threading.Thread(target=pipe, args=(up, conn), daemon=True)
    back.start()
    pipe(conn, up)
    back.join()
    conn.close()
    up.close()


def accept(listener, path):
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, path), daemon=True).start()


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("agentbench forwarder: usage: SOCKET PORT -- COMMAND...\n")
        return EXIT
    path, port, command = argv[0], int(argv[1]), argv[3:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a previous run's connections in TIME_WAIT
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError as exc:
        sys.stderr.write("agentbench forwarder: cannot listen on 127.0.0.1:%d: %s\n" % (port, exc))
        return EXIT
    threading.Thread(target=accept, args=(listener, path), daemon=True).start()
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        sys.stderr.write("agentbench forwarder: cannot start %s: %s\n" % (command[0], exc))
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    code = child.wait()
    return 128 - code if code < 0 else code


sys.exit(main(sys.argv[1:]))
""".replace("@EXIT@", str(FORWARDER_EXIT))


def forwarder_argv(
    argv: Sequence[str], socket_path: str, *, port: int = GATEWAY_PORT, python: str = "python3"
) -> list[str]:
    """``argv`` run behind the forwarder: inside the sandbox, ``http://127.0.0.1:PORT`` is the gateway.

    ``socket_path`` is the socket as the sandbox sees it (the sandbox's ``gateway_socket_inside``).
    """
    if not argv:
        raise ValueError("forwarder_argv needs the agent's command: argv is empty")
    return [python, "-c", FORWARDER_SOURCE, socket_path, str(port), "--", *argv]
