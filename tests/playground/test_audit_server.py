"""Audit of the playground server: inputs a page (or another program) should not be able to
crash it with, exports the run tools accept, and the command's binding errors."""

from __future__ import annotations

import http.client
import itertools
import json
import math
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.playground.config import Config, FieldError
from chainrule.playground.export import export_run
from chainrule.playground.server import ACTIONS, make_server, perform
from chainrule.playground.session import Session

# values a page, a script or a fuzzer might send in place of any field
ODD = [None, [], {}, [[1]], [{}], [None], "abc", "", 10**400, -(10**400), True, math.nan,
       math.inf, "nan", "1e999", "\x00", 2**63, [1e308], ["x1"], 1e308]  # fmt: skip


def _call(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True)
    for k, v in {"Host": f"127.0.0.1:{port}", **headers}.items():
        conn.putheader(k, v.encode("latin-1") if isinstance(v, str) else v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data)


def test_a_token_with_non_ascii_characters_is_refused_not_a_crash(server):
    # secrets.compare_digest raises TypeError for non-ASCII str: the server dropped the
    # connection with a traceback instead of answering 403
    status, reply = _call(server.port, "GET", "/?token=%C3%A9t%C3%A9", {})
    assert status == 403 and "token" in reply["error"]
    status, reply = _call(server.port, "GET", "/", {"X-Token": "\xe9t\xe9"})
    assert status == 403 and "token" in reply["error"]


class _Srv:
    """What ``perform`` needs of the server: the export root and the sessions."""

    def __init__(self, root: Path) -> None:
        self.export_dir = root
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()


def test_no_setting_value_escapes_as_anything_but_a_field_error(tmp_path):
    # features [[1]] raised TypeError (unhashable), an integer beyond float's range OverflowError:
    # both crashed the request instead of a 400 naming the field
    srv = _Srv(tmp_path)
    for name, value in itertools.product(Config.__dataclass_fields__, ODD):
        s = Session()
        try:
            perform(s, "config", {"config": {**Config().to_dict(), name: value}}, srv)  # type: ignore[arg-type]
        except FieldError as exc:
            assert exc.field == name, (name, value, exc)


def test_no_action_field_value_escapes_as_anything_but_a_field_error(tmp_path):
    srv = _Srv(tmp_path)
    base = {"x1": 0.5, "x2": 0.5, "label": 1, "problem": "classification",
            "text": "1,1,1\n2,2,0\n", "name": "n", "epochs": 1}  # fmt: skip
    for act, key, value in itertools.product([a for a in ACTIONS if a != "close"], base, ODD):
        s = Session()
        try:
            perform(s, act, {**base, key: value}, srv)  # type: ignore[arg-type]
        except FieldError:
            pass


def test_bad_fields_get_a_400_naming_the_field_over_http(server):
    _, reply = _call(server.port, "POST", f"/api/session?token={server.token}", {}, b"{}")
    sid = reply["sid"]
    path = f"/api/action?token={server.token}"
    for raw, field in (
        ('{"features": [["x1"]]}', "features"),
        ('{"features": [{}]}', "features"),
        ('{"lr": 1' + "0" * 400 + "}", "lr"),
        ('{"seed": 2147483648}', "seed"),
    ):
        body = f'{{"sid": "{sid}", "action": "config", "config": {raw}}}'.encode()
        status, reply = _call(server.port, "POST", path, {}, body)
        assert status == 400 and reply["field"] == field, (raw, reply)
    # the bound is printed as an integer, not 2.14748e+09
    assert "2147483647" in reply["error"]
    # a fractional number of epochs is refused, not silently truncated
    body = json.dumps({"sid": sid, "action": "step", "epochs": 1.5}).encode()
    status, reply = _call(server.port, "POST", path, {}, body)
    assert status == 400 and reply["field"] == "epochs"
    # and the session lives on
    body = json.dumps({"sid": sid, "action": "step", "epochs": 2}).encode()
    status, reply = _call(server.port, "POST", path, {}, body)
    assert status == 200 and reply["result"]["epoch"] == 2


@pytest.mark.parametrize(
    "raw", [{"dataset": "spiral", "hidden": [8, 8]}, {"dataset": "multigauss", "features": ["x1"]}]
)
def test_an_export_is_accepted_by_evaluate_predict_and_info(raw, tmp_path, capsys):
    # the history was written one row per frame, not per epoch: evaluate refused the run
    s = Session(Config(**{**Config().to_dict(), **raw}))
    s.train_epochs(3)
    s.train_epochs(budget_s=0.01)  # frames in between epochs: several records per epoch
    out = export_run(s, tmp_path, "run")
    assert main(["evaluate", str(out)]) == 0
    assert main(["info", str(out)]) == 0
    state = json.loads(next(out.glob("gen-*/train_state.json")).read_text())
    assert state["history"]["epoch"] == list(range(1, s.epoch + 1))
    test = np.loadtxt(out / "test.csv", delimiter=",", skiprows=1, ndmin=2)
    np.savetxt(tmp_path / "x.csv", test[:, :-1], delimiter=",")
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "x.csv")]) == 0
    assert len(capsys.readouterr().out.split()) == len(test)


def test_an_untrained_network_is_not_exported(tmp_path):
    with pytest.raises(FieldError, match="train at least one epoch"):
        export_run(Session(), tmp_path, "run")
    assert not (tmp_path / "run").exists()


def test_loopback_ipv6_serves(tmp_path):
    # '::1' is one of the loopback names the command accepts, but binding it failed
    # ("Address family for hostname not supported")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    srv = make_server("::1", 0, export_dir=tmp_path)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        assert srv.url.startswith("http://[::1]:")
        conn = http.client.HTTPConnection("::1", srv.port, timeout=10)
        conn.request("GET", f"/?token={srv.token}")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        srv.stop()
        thread.join(5)


def test_a_taken_port_is_one_line_naming_it(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["playground", "--port", str(port), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err and err.count("\n") == 1


def test_a_hidden_tabs_session_outlives_idle_s_and_a_closed_ones_does_not(server):
    # a hidden tab closes its stream (a browser has 6 connections per server) and says so:
    # its session must not be reaped as a closed tab's after idle_s
    path = f"/api/session?token={server.token}"
    sids = [_call(server.port, "POST", path, {}, b"{}")[1]["sid"] for _ in range(2)]
    body = json.dumps({"sid": sids[0], "action": "hide"}).encode()
    assert _call(server.port, "POST", f"/api/action?token={server.token}", {}, body)[0] == 200
    for s in server.sessions.values():
        s.last_seen -= server.idle_s + 1
    server.reap()
    assert list(server.sessions) == [sids[0]]


def test_diagnostics_of_a_diverged_network_say_so(server):
    # gradcheck answered 500 "f(x) is not finite"; backprop answered NaN in its JSON, which
    # the page's JSON parser refuses, and printed overflow warnings on the server's terminal
    status, reply = _call(server.port, "POST", f"/api/session?token={server.token}", {}, b"{}")
    sid = reply["sid"]
    s = server.sessions[sid]
    with s.lock:
        s.params[0][0].data[0, 0] = np.nan
    path = f"/api/action?token={server.token}"
    for act in ("gradcheck", "backprop"):
        body = json.dumps({"sid": sid, "action": act, "x1": 0.0, "x2": 0.0}).encode()
        status, reply = _call(server.port, "POST", path, {}, body)
        assert status == 400 and reply["field"] == "lr", reply
        assert "not finite" in reply["error"] and "lower the learning rate" in reply["error"]


def test_the_step_reply_of_a_diverging_network_is_valid_json(server):
    # the reply held NaN, which is not JSON: the page's r.json() threw instead of showing
    # the "lower the learning rate" message
    config = {"dataset": "plane", "problem": "regression", "activation": "linear", "lr": 10,
              "hidden": [8, 8]}  # fmt: skip
    body = json.dumps({"config": config}).encode()
    sid = _call(server.port, "POST", f"/api/session?token={server.token}", {}, body)[1]["sid"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "POST",
        f"/api/action?token={server.token}",
        json.dumps({"sid": sid, "action": "step", "epochs": 3}),
    )
    raw = conn.getresponse().read().decode()
    conn.close()
    reply = json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} in the reply {raw}"))
    assert reply["result"]["train_loss"] is None
    assert "lower the learning rate" in server.sessions[sid].message


def test_a_csv_of_one_row_is_refused_not_silently_ignored(tmp_path):
    # it was accepted (200) while the session kept its old dataset: the page then showed
    # "your data" over the previous points
    s = Session()
    with pytest.raises(FieldError, match="1 data row; at least 2"):
        perform(s, "load_csv", {"text": "1,1,1\n", "problem": "classification"}, _Srv(tmp_path))  # type: ignore[arg-type]
    assert s.cfg.dataset == "circle"


def test_hide_and_close_of_a_closed_session_are_no_errors(server):
    # a closing tab sends "hide" (visibilitychange) and then "close" (pagehide); the close
    # beacon may arrive first, and the hide then got a 404 in the page's console
    sid = _call(server.port, "POST", f"/api/session?token={server.token}", {}, b"{}")[1]["sid"]
    path = f"/api/action?token={server.token}"
    for act in ("close", "hide", "close"):
        body = json.dumps({"sid": sid, "action": act}).encode()
        assert _call(server.port, "POST", path, {}, body) == (200, {"ok": True})
    assert sid not in server.sessions
    body = json.dumps({"sid": sid, "action": "step"}).encode()
    assert _call(server.port, "POST", path, {}, body)[0] == 404  # other actions still need one
