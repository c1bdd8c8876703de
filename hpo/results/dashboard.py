"""optuna-dashboard on a storage, through its own WSGI app, served from this process.

``serve`` blocks until Ctrl-C, as ``hpo dashboard`` does. ``open_dashboard`` binds the port
and returns a ``Dashboard`` that a script or a test can run in a background thread and stop.
The dashboard shows every study in the storage, their intermediate R² curves and the trial
attributes hpo stores (family, n_params, seconds, device, seed, ended…).

Why not ``optuna_dashboard.run_server``: it blocks with no way to stop it from another
thread (tests and scripts need that), cannot listen on port 0 and tell which port it got,
serves one request at a time through Bottle's wsgiref server (a browser's open connection
stalls the next request), logs every API poll, and ends in a traceback on a busy port. It
serves the same app, ``optuna_dashboard.wsgi``, which this module uses as is.

Example:
    >>> serve("hpo.journal", port=8080)                        # doctest: +SKIP
    >>> with open_dashboard("hpo.journal", port=0) as dashboard:   # doctest: +SKIP
    ...     dashboard.start()
    ...     print(dashboard.url)
"""

from __future__ import annotations

import errno
import socket
import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hpo.errors import ConfigError
from hpo.store.storage import existing_storage, open_storage, shown

DEFAULT_HOST = "127.0.0.1"  # loopback: the dashboard can edit studies and has no login
DEFAULT_PORT = 8080


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection must not keep the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The dashboard polls its API every few seconds; a line per request buries the URL."""


class Dashboard:
    """An optuna-dashboard server bound to a port; ``start`` runs it in a thread, ``stop``
    (or leaving a ``with`` block) shuts it down and frees the port."""

    def __init__(self, server: WSGIServer, storage: str, host: str) -> None:
        self.server = server
        self.storage = storage
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}/"  # the bound port, even for 0

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop`` is called from another one (or Ctrl-C)."""
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> Dashboard:
        """Serve in a background thread; returns at once."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"hpo-dashboard-{self.url}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:  # shutdown() waits for a serve loop: only call it on one
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def open_dashboard(storage: str | None = None, *, host: str = DEFAULT_HOST,
                   port: int = DEFAULT_PORT, quiet: bool = True) -> Dashboard:
    """Bind ``host:port`` (0: any free port) to optuna-dashboard on ``storage``.

    Raises:
        StorageError: the storage does not exist yet or cannot be opened.
        ConfigError: the port is busy or the host cannot be bound.
    """
    import optuna_dashboard  # heavy; only this command needs it

    url = existing_storage(storage)
    app = optuna_dashboard.wsgi(open_storage(url))
    handler = _QuietHandler if quiet else WSGIRequestHandler
    try:
        server = make_server(host, port, app, server_class=_ThreadedServer,
                             handler_class=handler)
    except OSError as error:
        raise _bind_error(error, host, port) from None
    return Dashboard(server, url, host)


def serve(storage: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run optuna-dashboard on ``storage`` at ``http://host:port/`` until Ctrl-C."""
    dashboard = open_dashboard(storage, host=host, port=port)
    print(f"optuna-dashboard for {shown(dashboard.storage)}: {dashboard.url}  (Ctrl-C stops it)",
          flush=True)
    if host not in (DEFAULT_HOST, "localhost", "::1"):
        print(f"Warning: listening on {host}, not only this machine: anyone who can reach it "
              "can read and edit these studies (the dashboard has no login).", flush=True)
    try:
        dashboard.serve_forever()
    except KeyboardInterrupt:
        print("Dashboard stopped.")
    finally:
        dashboard.stop()


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _bind_error(error: OSError, host: str, port: int) -> ConfigError:
    if error.errno == errno.EADDRINUSE:
        return ConfigError(
            f"Port {port} on {host} is busy (another dashboard or server is using it); "
            f"pick a free one with --port {port + 1 if 0 < port < 65535 else 8081}, "
            "or --port 0 for any free port."
        )
    if error.errno == errno.EACCES:
        return ConfigError(
            f"Not allowed to listen on port {port} on {host} (ports below 1024 need "
            "privileges); pick another with --port, e.g. --port 8080."
        )
    return ConfigError(
        f"Cannot listen on {host}:{port}: {error.strerror or error}; expected a local address "
        f"such as {DEFAULT_HOST} for --host and a free port for --port."
    )
