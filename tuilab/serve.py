"""`tuilab serve`: the dashboard in a web browser, through textual-serve (the optional [web] extra).

Each browser tab that opens the page gets its own tuilab process, started by the server with the
run options given before `serve` (e.g. `tuilab --preset rosenbrock-zoo serve`)."""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys

from tuilab.errors import TuilabError
from tuilab.install import pip_install


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """One clear line now for a port taken or out of range, rather than a traceback from aiohttp."""
    if not 0 < port < 65536:
        raise TuilabError(f"--port must be a whole number from 1 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TuilabError(f"--host {host!r} is not an address this machine can listen on ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TuilabError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port") from None


def serve_command(run_args: list[str]) -> str:
    """The command the server starts for each browser tab: this tuilab, with the run options given."""
    return shlex.join([sys.executable, "-m", "tuilab", *run_args])


def serve(host: str, port: int, run_args: list[str], stream=None) -> int:
    stream = stream or sys.stderr
    try:
        from textual_serve.server import Server
    except ImportError:
        raise TuilabError(f"serving to a browser needs textual-serve: {pip_install('web')}") from None
    check_port_free(host, port)
    if not is_loopback(host):
        print(f"tuilab: warning: serving on {host}, not on this machine alone: anyone who can reach "
              f"{host}:{port} can open the dashboard and start runs here", file=stream)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    print(f"tuilab: the dashboard is at {url} (Ctrl+C stops the server)", file=stream, flush=True)
    Server(serve_command(run_args), host=host, port=port, title="tuilab").serve()
    return 0
