"""``dsim-explore``: serve the explorer (:mod:`sim.explore.app`) on this machine.

It listens on 127.0.0.1 (this machine only) unless ``--host`` says otherwise, and prints the
address to open and who can reach it. The socket is bound before the server starts, so a busy port
is one line on stderr (exit code 2), and ``--port 0`` takes a free port and prints it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading

PROGRAM = "dsim-explore"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Serve the dsim explorer in the browser (see docs/explorer.md).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 lets other machines connect)")
    parser.add_argument("--port", type=int, default=8765,
                        help="port to listen on (default 8765; 0 takes a free port)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port: give a number from 0 to 65535")
    return args


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; a one-line OSError message if that is impossible."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"--host {host} is not an address of this machine ({exc.strerror}): "
                      "use 127.0.0.1 or 0.0.0.0") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise OSError(f"port {port} on {host} is in use: choose another with --port "
                          "(--port 0 takes a free one)") from None
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def _configure_solara() -> None:
    """Settings for Solara, before it is imported: this app, production mode, and no calls to
    outside services (the usage telemetry and the version check are off)."""
    os.environ["SOLARA_APP"] = "sim.explore.app"
    os.environ.setdefault("SOLARA_MODE", "production")
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")


def _warm_up() -> None:
    """Load (or compile, the very first time) the model's compiled kernels while the browser
    connects, so the first answer does not wait for them."""
    try:
        from ..model import run
        from ..params import RunConfig

        cfg = RunConfig(replications=2, progress=False)
        run(cfg.replace(scenario={"weeks": 2}))
    except Exception:  # the page reports any real problem on its first run
        pass


def main(argv: list[str] | None = None) -> None:
    """Console entry point of ``dsim-explore``."""
    args = parse_args(argv)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if args.host in LOCAL_HOSTS:
        who = "listening on this machine only; --host 0.0.0.0 lets other machines connect"
    else:
        who = (f"listening on {args.host}: anyone who can reach this machine on port {port} can use "
               "it and run the model")
    threading.Thread(target=_warm_up, daemon=True, name="dsim-warm-up").start()
    _configure_solara()
    import uvicorn

    config = uvicorn.Config("solara.server.starlette:app", log_level="warning", lifespan="on",
                            ws_ping_interval=20, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else shown
    print(f"{PROGRAM}: the explorer is at http://{url_host}:{port}/ ({who}). Ctrl+C stops it.",
          flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
