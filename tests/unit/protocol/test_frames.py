"""Non-blocking multipart helpers over a real inproc socket pair."""

from __future__ import annotations

import pytest
import zmq

from dqueue.protocol.frames import recv_frames, send_frames


@pytest.fixture
def pair():
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://frames")
    b.connect("inproc://frames")
    yield a, b
    a.close(0)
    b.close(0)
    ctx.term()


def test_round_trip_keeps_every_frame(pair):
    a, b = pair
    send_frames(a, [b"\x01", b"kind", b"", b"body"])
    assert b.poll(1000)
    assert recv_frames(b) == [b"\x01", b"kind", b"", b"body"]


def test_empty_socket_raises_again(pair):
    _, b = pair
    with pytest.raises(zmq.Again):
        recv_frames(b)


def test_full_queue_raises_again_on_send():
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.IMMEDIATE, 1)
    dealer.connect("tcp://127.0.0.1:9")  # nothing listens: no connection, nothing queued
    try:
        with pytest.raises(zmq.Again):
            send_frames(dealer, [b"x", b"y"])
    finally:
        dealer.close(0)
        ctx.term()
