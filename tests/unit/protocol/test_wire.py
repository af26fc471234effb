import pytest

from dqueue.protocol import wire


def test_round_trip_plain_values():
    body = {"a": [1, 2, "x"], "b": b"\x00\xff", "c": None}
    kind, got = wire.decode(wire.encode(b"cmd", body))
    assert kind == b"cmd"
    assert got == body


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [b"\x01", b"cmd"],
        [b"\x02", b"cmd", b"\x80"],
        [b"\x01", b"", b"\x80"],
        [b"\x01", b"k" * 33, b"\x80"],
        [b"\x01", b"cmd", b"\xc1"],
        [b"\x01", b"cmd", b"\x92\x01"],
        [b"\x01", b"cmd", b"\x80", b"extra"],
    ],
)
def test_garbage_raises_frame_error_only(frames):
    with pytest.raises(wire.FrameError):
        wire.decode(frames)
