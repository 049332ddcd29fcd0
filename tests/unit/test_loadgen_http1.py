"""Framing HTTP/1.1 replies: any server's heads and bodies, however the bytes arrive."""

from __future__ import annotations

import math

import pytest

from bench.load.http1 import CHUNKED, UNTIL_CLOSE, BadResponse, ChunkedBody, app_ms_from, parse_head


def test_a_plain_head_without_trace_or_timing():
    head = parse_head(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 6\r\nConnection: keep-alive\r\n")
    assert (head.status, head.body_bytes, head.close, head.trace_id) == (200, 6, False, None)
    assert math.isnan(head.app_ms)


def test_header_names_match_in_any_case_and_values_are_stripped():
    head = parse_head(b"HTTP/1.1 201 Created\r\ncontent-LENGTH:   12 \r\nx-trace-id:  3-7\r\n"
                      b"SERVER-TIMING: db;dur=1, app;desc=\"x\";dur=0.25\r\nCONNECTION: Close\r\n")
    assert (head.status, head.body_bytes, head.close, head.trace_id) == (201, 12, True, b"3-7")
    assert head.app_ms == pytest.approx(0.25)


def test_chunked_wins_over_content_length():
    head = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n")
    assert head.body_bytes == CHUNKED


@pytest.mark.parametrize("status", [204, 304, 100])
def test_replies_that_have_no_body(status):
    assert parse_head(b"HTTP/1.1 %d X\r\nContent-Length: 50\r\n" % status).body_bytes == 0


def test_no_length_means_the_body_ends_at_close():
    head = parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n")
    assert head.body_bytes == UNTIL_CLOSE and head.close


def test_http_1_0_closes_unless_it_says_keep_alive():
    assert parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n").close
    assert not parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n").close


@pytest.mark.parametrize("head", [b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 2x0 OK\r\n", b"HTTP/2 200\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: six\r\n"])
def test_what_is_not_an_http_1_reply_is_refused(head):
    with pytest.raises(BadResponse):
        parse_head(head)


@pytest.mark.parametrize("value, expected", [(b"app;dur=1.5", 1.5), (b"total;dur=9, app;dur=2", 2.0),
                                             (b"myapp;dur=3", math.nan), (b"app", math.nan),
                                             (b'app;dur="4"', 4.0), (b"app;dur=x", math.nan), (None, math.nan)])
def test_server_timing_app_duration(value, expected):
    got = app_ms_from(value)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


BODY = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: yes\r\n\r\nNEXT"


def _feed_in_pieces(pieces: list[bytes]) -> tuple[bool, bytes]:
    """Feed as a connection does: keep what was not consumed, prepend it to the next piece."""
    chunked, pending = ChunkedBody(), b""
    for piece in pieces:
        data = pending + piece
        done, pos = chunked.feed(data, 0)
        pending = data[pos:]
        if done:
            return True, pending
    return False, pending


def test_a_chunked_body_in_one_read_ends_where_it_ends():
    done, pos = ChunkedBody().feed(BODY, 0)
    assert done and BODY[pos:] == b"NEXT"


def test_a_chunked_body_split_at_every_byte():
    done, rest = _feed_in_pieces([BODY[i:i + 1] for i in range(len(BODY))])
    assert done and rest == b""  # done at the blank line; "NEXT" was never fed


def test_a_chunked_body_split_inside_sizes_and_data():
    done, rest = _feed_in_pieces([BODY[:3], BODY[3:12], BODY[12:20], BODY[20:]])
    assert done and rest == b"NEXT"


def test_an_unfinished_chunked_body_is_not_done():
    assert _feed_in_pieces([BODY[:25]]) == (False, b"")


@pytest.mark.parametrize("body", [b"zz\r\n", b"-5\r\nhello\r\n"])
def test_a_bad_chunk_size_is_refused(body):
    with pytest.raises(BadResponse):
        ChunkedBody().feed(body, 0)
