"""The playground's HTTP server: the standard library's ``http.server`` and Server-Sent Events.

Routes (every request carries the session token, ``?token=`` or the
``X-Token`` header; a foreign ``Host`` or ``Origin`` is refused with 403):

- ``GET /``: the page; ``GET /static/<name>``: its script and style sheet;
- ``POST /api/session``: a new session, ``{"sid": ...}``;
- ``GET /api/stream?sid=...``: the session's frames as Server-Sent Events;
  while playing, the stream's thread trains between frames, for what is left
  of 1/40 s after building the last frame (:func:`training_slice`);
- ``POST /api/action``: ``{"sid", "action", ...}`` with one of :data:`ACTIONS`.

A session whose stream has been closed for :attr:`PlaygroundServer.idle_s`
seconds is freed (a closed tab), as is one the page closes explicitly. A
browser keeps at most 6 connections to one server, and each open stream holds
one: a hidden tab closes its stream (its training pauses) and says ``hide``,
so that any number of tabs work; its session then waits :data:`HIDDEN_IDLE_S`
for the tab to come back.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chainrule.playground import datasets
from chainrule.playground.config import PROBLEMS, FieldError
from chainrule.playground.diagnostics import backprop_sample, check_gradients
from chainrule.playground.export import export_run, snippet
from chainrule.playground.session import Session

ACTIONS = (
    "config", "play", "pause", "step", "reset", "regenerate", "add_point", "clear_points",
    "load_csv", "gradcheck", "backprop", "export", "snippet", "hide", "close",
)  # fmt: skip
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BODY = 256 * 1024
MAX_SESSIONS = 32
HIDDEN_IDLE_S = 1800.0  # a hidden tab's session (no stream) is kept this long
FRAME_PERIOD_S = 1 / 40  # aim: 40 frames/s; training fills what building a frame leaves


def training_slice(frame_cost_s: float) -> float:
    """Seconds of training before the next frame, so that frames come every ``FRAME_PERIOD_S``."""
    return max(0.004, FRAME_PERIOD_S - frame_cost_s)


LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("", "0.0.0.0", "::")


class PlaygroundServer(ThreadingHTTPServer):
    """A threaded HTTP server holding the sessions, the token and the export root."""

    daemon_threads = True

    def __init__(self, host: str, port: int, export_dir: Path, idle_s: float = 60.0) -> None:
        if ":" in host:  # an IPv6 address such as ::1 (the default family is IPv4's)
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.token = secrets.token_urlsafe(24)
        self.export_dir = Path(export_dir)
        self.idle_s = idle_s
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self.stopping = threading.Event()
        self.host_name = host
        self.reaper = threading.Thread(target=self._reap, daemon=True)
        self.reaper.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host_name in WILDCARDS else self.host_name
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/?token={self.token}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left before its reply (a closed tab) is no error; others are printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def allowed_hosts(self) -> set[str]:
        names = set(LOOPBACK) | {self.host_name}
        return {f"{h}:{self.port}" if ":" not in h else f"[{h}]:{self.port}" for h in names}

    def _reap(self) -> None:
        while not self.stopping.wait(min(5.0, self.idle_s / 2)):
            self.reap()

    def reap(self) -> None:
        """Free the sessions without an open stream for ``idle_s`` seconds."""
        now = time.monotonic()
        with self.sessions_lock:
            for sid in [
                k
                for k, s in self.sessions.items()
                if s.streams == 0
                and now - s.last_seen
                > (max(self.idle_s, HIDDEN_IDLE_S) if s.hidden else self.idle_s)
            ]:
                del self.sessions[sid]

    def close(self) -> None:
        """End the streams and the reaper, and close the socket (when not serving)."""
        self.stopping.set()
        with self.sessions_lock:
            for s in self.sessions.values():
                s.changed.set()
        self.server_close()

    def stop(self) -> None:
        """Stop ``serve_forever`` (from another thread) and close."""
        self.shutdown()
        self.close()


class Handler(BaseHTTPRequestHandler):
    """One request: checks the token, Host and Origin, then serves a route."""

    server: PlaygroundServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: a playground's requests are not news."""

    # ------------------------------------------------------------ replies
    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; connect-src 'self'",
        )
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str, field: str | None = None) -> None:
        self._json(status, {"error": message, "field": field})

    # ------------------------------------------------------------ checks
    def _allowed(self) -> bool:
        srv = self.server
        host = self.headers.get("Host", "")
        wildcard = srv.host_name in WILDCARDS  # any address of this machine: the token guards it
        if not wildcard and host not in srv.allowed_hosts():
            self._error(HTTPStatus.FORBIDDEN, f"host {host!r} is not this playground")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":  # same origin only
            self._error(HTTPStatus.FORBIDDEN, f"cross-site request from {origin!r} refused")
            return False
        query = parse_qs(urlsplit(self.path).query)
        token = self.headers.get("X-Token") or query.get("token", [""])[0]
        # as bytes: compare_digest refuses str with non-ASCII characters (a TypeError)
        if not secrets.compare_digest(token.encode("utf-8", "replace"), srv.token.encode()):
            self._error(
                HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL the command printed"
            )
            return False
        return True

    def _session(self, sid: Any) -> Session | None:
        with self.server.sessions_lock:
            return self.server.sessions.get(sid) if isinstance(sid, str) else None

    # ------------------------------------------------------------ GET
    def do_GET(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        parts = urlsplit(self.path)
        if parts.path == "/":
            page = (
                resources.files("chainrule.playground")
                .joinpath("static/index.html")
                .read_text("utf-8")
            )
            self._send(
                HTTPStatus.OK,
                page.replace("{{TOKEN}}", self.server.token).encode(),
                "text/html; charset=utf-8",
            )
        elif parts.path.startswith("/static/") and parts.path[8:] in STATIC:
            name = parts.path[8:]
            body = resources.files("chainrule.playground").joinpath(f"static/{name}").read_bytes()
            self._send(HTTPStatus.OK, body, STATIC[name] + "; charset=utf-8")
        elif parts.path == "/api/stream":
            self._stream(parse_qs(parts.query).get("sid", [""])[0])
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page {parts.path!r}")

    def _stream(self, sid: str) -> None:
        s = self._session(sid)
        if s is None:
            self._error(HTTPStatus.NOT_FOUND, "no such session (it expired): reload the page")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with s.lock:
            s.hidden = False
            s.streams += 1
            s.stream_id += 1
            me = s.stream_id
        sent_data = sent_version = -1
        frame_cost = 0.0
        try:
            while (
                not self.server.stopping.is_set() and self._session(sid) is s and s.stream_id == me
            ):
                events = []
                with s.turn:  # an action waiting for the lock goes first
                    pass
                with s.lock:
                    s.last_seen = time.monotonic()
                    if s.playing:
                        s.train_epochs(budget_s=training_slice(frame_cost))
                    t0 = time.perf_counter()
                    if s.data_version != sent_data:
                        events.append(s.data_frame())
                        sent_data = s.data_version
                    if s.version != sent_version:
                        events.append(s.frame())
                        sent_version = s.version
                    playing = s.playing
                payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) or ": ping\n\n"
                frame_cost = time.perf_counter() - t0
                self.wfile.write(payload.encode())
                self.wfile.flush()
                if not playing and not events:
                    s.changed.wait(2.0)
                    s.changed.clear()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tab closed
        finally:
            with s.lock:
                s.streams -= 1
                s.last_seen = time.monotonic()

    # ------------------------------------------------------------ POST
    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"a request body holds at most {MAX_BODY} bytes",
            )
            return
        try:
            msg = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "the request body is not JSON")
            return
        if not isinstance(msg, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
            return
        if path == "/api/session":
            self._new_session(msg)
        elif path == "/api/action":
            self._action(msg)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {path!r}")

    def _new_session(self, msg: dict[str, Any]) -> None:
        srv = self.server
        srv.reap()
        with srv.sessions_lock:
            if len(srv.sessions) >= MAX_SESSIONS:
                self._error(
                    HTTPStatus.SERVICE_UNAVAILABLE, f"at most {MAX_SESSIONS} sessions: close a tab"
                )
                return
        s = Session()
        try:
            if msg.get("config"):
                s.configure(msg["config"])
        except FieldError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc), exc.field)
            return
        sid = secrets.token_urlsafe(12)
        with srv.sessions_lock:
            srv.sessions[sid] = s
        self._json(HTTPStatus.OK, {"sid": sid, "config": s.cfg.to_dict()})

    def _action(self, msg: dict[str, Any]) -> None:
        s = self._session(msg.get("sid"))
        if s is None and msg.get("action") in ("hide", "close"):
            # idempotent: a closing tab sends "hide" and then "close", which may overtake it
            self._json(HTTPStatus.OK, {"ok": True})
            return
        if s is None:
            self._error(HTTPStatus.NOT_FOUND, "no such session (it expired): reload the page")
            return
        action = msg.get("action")
        if action not in ACTIONS:
            self._error(
                HTTPStatus.BAD_REQUEST, f"unknown action {action!r}; known: {', '.join(ACTIONS)}"
            )
            return
        try:
            with s.turn, s.lock:  # turn: the training stream waits until this has run
                s.last_seen = time.monotonic()
                reply = perform(s, str(action), msg, self.server)
                s.version += 1
            s.changed.set()
        except FieldError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc), exc.field)
            return
        except (ValueError, OSError, ArithmeticError, RuntimeError) as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{action} failed: {exc}")
            return
        self._json(HTTPStatus.OK, {"ok": True, **reply})


def _number(msg: dict[str, Any], name: str, lo: float, hi: float, *, whole: bool = False) -> float:
    v = msg.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        kind = "a whole number" if whole else "a number"
        raise FieldError(name, f"expected {kind} in [{lo:g}, {hi:g}], got {v!r}")
    if whole and v != int(v):
        raise FieldError(name, f"expected a whole number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _problem(msg: dict[str, Any]) -> str:
    p = msg.get("problem", "classification")
    if p not in PROBLEMS:
        raise FieldError("problem", f"{p!r} is not one of {', '.join(PROBLEMS)}")
    return str(p)


def perform(s: Session, action: str, msg: dict[str, Any], srv: PlaygroundServer) -> dict[str, Any]:
    """Do one documented action on session ``s``; returns what the reply adds."""
    e = datasets.EXTENT
    if action == "config":
        s.configure(msg.get("config"))
    elif action in ("play", "pause"):
        s.playing = action == "play"
        s.message = ""
    elif action == "step":
        s.playing = False
        return {
            "result": s.train_epochs(
                int(_number(msg, "epochs", 1, 100, whole=True)) if "epochs" in msg else 1
            )
        }
    elif action == "reset":
        s.configure(s.cfg.to_dict())
    elif action == "regenerate":
        s.regenerate()
    elif action == "add_point":
        p = _problem(msg)
        label = (
            _number(msg, "label", 0, 1) if p == "classification" else _number(msg, "label", -1, 1)
        )
        if p == "classification" and label not in (0.0, 1.0):
            raise FieldError("label", "a class label is 0 or 1")
        s.add_point(_number(msg, "x1", -e, e), _number(msg, "x2", -e, e), label, p)
    elif action == "clear_points":
        s.custom = (s.custom[0][:0], s.custom[1][:0])
        if s.cfg.dataset == "custom":
            s.configure({**s.cfg.to_dict(), "dataset": "circle"})
    elif action == "load_csv":
        text, p = msg.get("text"), _problem(msg)
        if not isinstance(text, str):
            raise FieldError("csv", "expected the CSV file's text")
        try:
            X, y = datasets.parse_csv(text, p)  # noqa: N806
        except ValueError as exc:
            raise FieldError("csv", str(exc)) from None
        if len(X) < 2:  # a drawing grows point by point; a file must be a dataset at once
            raise FieldError("csv", f"CSV: {len(X)} data row; at least 2 are needed")
        s.set_custom(X, y, p)
    elif action == "gradcheck":
        return {"result": check_gradients(s)}
    elif action == "backprop":
        return {"result": backprop_sample(s, _number(msg, "x1", -e, e), _number(msg, "x2", -e, e))}
    elif action == "export":
        out = export_run(s, srv.export_dir, msg.get("name"))
        return {"result": {"directory": str(out), "snippet": snippet(s)}}
    elif action == "snippet":
        return {"result": {"snippet": snippet(s)}}
    elif action == "hide":
        s.hidden = True  # the tab closed its stream: keep the session for HIDDEN_IDLE_S
    elif action == "close":
        with srv.sessions_lock:
            srv.sessions = {k: v for k, v in srv.sessions.items() if v is not s}
    return {}


def make_server(
    host: str = "127.0.0.1", port: int = 0, export_dir: str | Path = "runs", idle_s: float = 60.0
) -> PlaygroundServer:
    """A playground server bound to ``host:port`` (port 0: a free one); call ``serve_forever``.

    Examples
    --------
    >>> srv = make_server()
    >>> srv.url.startswith("http://127.0.0.1:")
    True
    >>> srv.close()
    """
    return PlaygroundServer(host, port, Path(export_dir), idle_s)
