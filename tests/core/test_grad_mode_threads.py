"""Grad mode belongs to the thread that sets it, as in PyTorch.

The playground's HTTP server answers requests on several threads; with one
process-wide switch, two interleaved ``no_grad()`` blocks restored each other's
saved value and left recording off for the whole process (every later
``backward()`` failed). These tests interleave blocks across threads on purpose.
"""

from __future__ import annotations

import threading

import chainrule as cr


def _run(*targets):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()


def test_interleaved_no_grad_blocks_in_two_threads_leave_recording_on():
    # A enters, B enters, A leaves, B leaves: the order that broke a shared switch
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with cr.no_grad():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b():
        a_in.wait(10)
        with cr.no_grad():
            b_in.set()
            a_out.wait(10)
        seen["b after"] = cr.is_grad_enabled()

    _run(a, b)
    assert seen["b after"] is True
    assert cr.is_grad_enabled()
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad is not None


def test_no_grad_in_one_thread_does_not_switch_off_recording_in_another():
    inside, recorded = threading.Event(), threading.Event()
    seen = {}

    def quiet():
        with cr.no_grad():
            inside.set()
            recorded.wait(10)
            seen["quiet records"] = (cr.tensor(1.0, requires_grad=True) * 2).requires_grad

    def training():
        inside.wait(10)
        x = cr.tensor(3.0, requires_grad=True)
        y = x * x
        y.backward()
        seen["grad"] = float(x.grad.data)
        recorded.set()

    _run(quiet, training)
    assert seen == {"quiet records": False, "grad": 6.0}


def test_a_new_thread_starts_with_grad_mode_on_even_under_no_grad():
    seen = {}
    with cr.no_grad():
        t = threading.Thread(target=lambda: seen.setdefault("on", cr.is_grad_enabled()))
        t.start()
        t.join(10)
        assert not cr.is_grad_enabled()
    assert seen["on"] is True


def test_one_no_grad_object_shared_by_threads_restores_each_threads_mode():
    shared = cr.no_grad()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with cr.enable_grad():
            with shared:
                a_in.set()
                b_in.wait(10)
            seen["a"] = cr.is_grad_enabled()
        a_out.set()

    def b():
        a_in.wait(10)
        with cr.no_grad():  # b's outer mode is off
            with shared:
                b_in.set()
                a_out.wait(10)
            seen["b"] = cr.is_grad_enabled()

    _run(a, b)
    assert seen == {"a": True, "b": False}
