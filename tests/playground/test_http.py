"""The playground's HTTP protocol and security, against a live server on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

from chainrule.cli import main


def request(srv, method, path, body=None, headers=None, token=True):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    sep = "&" if "?" in path else "?"
    url = (
        f"{path}{sep}token={srv.token}"
        if token is True
        else (f"{path}{sep}token={token}" if token else path)
    )
    conn.request(method, url, body=None if body is None else json.dumps(body), headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (
        json.loads(data) if r.getheader("Content-Type", "").startswith("application/json") else data
    )


def session(srv, config=None):
    status, reply = request(srv, "POST", "/api/session", {"config": config} if config else {})
    assert status == 200, reply
    return reply["sid"]


def action(srv, sid, act, **kw):
    return request(srv, "POST", "/api/action", {"sid": sid, "action": act, **kw})


def test_page_and_static_files_need_the_token(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and server.token.encode() in page and b"<canvas" in page
    assert request(server, "GET", "/static/app.js")[0] == 200
    assert request(server, "GET", "/", token=False)[0] == 403
    assert request(server, "GET", "/", token="wrong")[0] == 403
    assert request(server, "GET", "/static/../server.py")[0] == 404
    assert request(server, "POST", "/api/session", {}, token=False)[0] == 403


def test_foreign_origin_and_host_are_refused(server):
    status, reply = request(
        server, "POST", "/api/session", {}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403 and "cross-site" in reply["error"]
    status, _ = request(server, "GET", "/", headers={"Host": f"evil.example:{server.port}"})
    assert status == 403  # DNS rebinding
    own = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert request(server, "POST", "/api/session", {}, headers=own)[0] == 200


def test_bad_fields_are_refused_and_the_session_lives_on(server):
    sid = session(server)
    for config, field in (
        ({"lr": "abc"}, "lr"),
        ({"lr": 0}, "lr"),
        ({"lr": -1}, "lr"),
        ({"hidden": [0]}, "hidden"),
        ({"hidden": [4] * 7}, "hidden"),
        ({"batch": 400}, "batch"),
        ({"features": []}, "features"),
        ({"activation": "os.system"}, "activation"),
        ({"evil": 1}, "evil"),
    ):
        status, reply = action(server, sid, "config", config=config)
        assert status == 400 and reply["field"] == field, (config, reply)
    assert request(server, "POST", "/api/action", None)[0] == 404  # no session in an empty body
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", f"/api/action?token={server.token}", body=b"{not json", headers={})
    assert conn.getresponse().status == 400
    assert action(server, sid, "rm -rf")[0] == 400
    status, reply = action(server, sid, "step", epochs=3)
    assert status == 200 and reply["result"]["epoch"] == 3


def test_export_names_cannot_leave_the_export_dir(server, tmp_path):
    sid = session(server)
    action(server, sid, "step", epochs=5)
    for name in ("../escape", "/etc/x", "a/b", "..", ".hidden", "x" * 100, 7):
        status, reply = action(server, sid, "export", name=name)
        assert status == 400 and reply["field"] == "name", name
    assert not (tmp_path / "escape").exists()
    status, reply = action(server, sid, "export", name="circle-run")
    assert status == 200
    out = server.export_dir / "circle-run"
    assert reply["result"]["directory"] == str(out)
    assert main(["evaluate", str(out)]) == 0  # chainrule evaluate accepts the run


def test_two_sessions_train_independently(server):
    a, b = session(server), session(server, {"dataset": "spiral", "hidden": [8, 8]})
    action(server, a, "step", epochs=4)
    _, ra = action(server, a, "step")
    _, rb = action(server, b, "step")
    assert ra["result"]["epoch"] == 5 and rb["result"]["epoch"] == 1


def test_stream_sends_data_and_frames_and_a_closed_session_is_freed(server):
    sid = session(server)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", f"/api/stream?sid={sid}&token={server.token}")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    kinds = []
    while len(kinds) < 2:
        line = r.fp.readline().decode()
        if line.startswith("data: "):
            kinds.append(json.loads(line[6:])["type"])
    assert kinds == ["data", "frame"]
    conn.close()
    assert action(server, sid, "close")[0] == 200
    assert action(server, sid, "play")[0] == 404
    other = session(server)
    deadline = time.monotonic() + 10
    while (
        other in server.sessions and time.monotonic() < deadline
    ):  # no stream: reaped after idle_s
        time.sleep(0.2)
        server.reap()
    assert other not in server.sessions


def test_csv_rows_are_validated_one_by_one(server):
    sid = session(server)
    bad = "x1,x2,label\n1,2,1\n1,abc,0\n9,0,1\n1,2,3\n"
    status, reply = action(server, sid, "load_csv", text=bad, problem="classification")
    assert status == 400 and reply["field"] == "csv"
    assert "line 3" in reply["error"] and "line 4" in reply["error"] and "line 5" in reply["error"]
    good = "\n".join(f"{i % 5 - 2},{i % 3 - 1},{i % 2}" for i in range(20))
    assert action(server, sid, "load_csv", text=good, problem="classification")[0] == 200
    assert (
        action(server, sid, "add_point", x1=1.0, x2=1.0, label=1, problem="classification")[0]
        == 200
    )
    assert (
        action(server, sid, "add_point", x1=100.0, x2=1.0, label=1, problem="classification")[0]
        == 400
    )


def test_the_command_prints_the_url_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "chainrule", "playground", "--port", "0", "--no-browser",
           "--export-dir", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "token=" in line
        url = line.split()[2]
        port = int(url.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", url[url.index("/?") :])
        assert conn.getresponse().status == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err and "stopped" in err


def test_a_remote_host_needs_an_explicit_flag(capsys):
    assert main(["playground", "--host", "0.0.0.0", "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert "--allow-remote" in err and len(err.strip().splitlines()) == 1
