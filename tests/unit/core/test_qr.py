"""``GET /links/{code}/qr``: the short URL as a QR code, read back module by module.

No QR decoder runs under PyPy without C, so each image is read back into
its grid of modules (the PNG's pixels, the SVG's path) and compared with
the code segno builds for the short URL: the image holds that URL, at the
scale and border asked.
"""

import re
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest
import segno

from tests.support.problems import assert_problem

SVG = "{http://www.w3.org/2000/svg}svg"


def expected_modules(text):
    """The dark (True) and light modules of ``text``'s QR code, as segno makes it."""
    code = segno.make(text, error="m", micro=False)
    return [[bool(module) for module in row] for row in code.matrix]


def png_pixels(data: bytes):
    """The rows of a 1-bit greyscale PNG: True for black."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (1, 0) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = (width + 7) // 8
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - 1] if i else 0
            up, corner = previous[i], previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                nearest = min(
                    (abs(p - left), 0, left),
                    (abs(p - up), 1, up),
                    (abs(p - corner), 2, corner),
                )[2]
                line[i] = (line[i] + nearest) & 0xFF
            else:
                assert kind == 0
        rows.append([not (line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        previous = line
    return rows


def modules_of_png(data: bytes, scale: int, border: int):
    pixels = png_pixels(data)
    count = len(pixels) // scale - 2 * border
    assert len(pixels) == len(pixels[0]) == (count + 2 * border) * scale
    # Every pixel of a module has its colour, the quiet zone is light.
    for y, row in enumerate(pixels):
        for x, dark in enumerate(row):
            r, c = y // scale - border, x // scale - border
            inside = 0 <= r < count and 0 <= c < count
            assert dark == (inside and pixels[y - y % scale][x - x % scale])
    return [
        [pixels[(border + r) * scale][(border + c) * scale] for c in range(count)]
        for r in range(count)
    ]


def modules_of_svg(text: str, scale: int, border: int):
    root = ET.fromstring(text)
    assert root.tag == SVG
    size = int(root.get("width"))
    assert int(root.get("height")) == size and size % scale == 0
    count = size // scale - 2 * border
    (path,) = root.iter("{http://www.w3.org/2000/svg}path")
    assert path.get("transform") == f"scale({scale})"
    grid = [[False] * count for _ in range(count)]
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d. ]+)", path.get("d")):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:  # a line of dark modules, through the middle of its row
            for column in range(int(x), int(x + values[0])):
                grid[int(y) - border][column - border] = True
            x += values[0]
    return grid


@pytest.fixture
def code(client) -> str:
    return client.simulate_post("/links", json={"url": "example.com/spring"}).json[
        "code"
    ]


@pytest.mark.parametrize("scale, border", [(5, 4), (1, 0), (3, 10), (20, 2)])
def test_png_holds_the_short_url(client, code, scale, border):
    result = client.simulate_get(
        f"/links/{code}/qr", params={"format": "png", "scale": scale, "border": border}
    )
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/png"
    modules = modules_of_png(result.content, scale, border)
    assert modules == expected_modules(f"http://127.0.0.1:8000/{code}")


@pytest.mark.parametrize("scale, border", [(5, 4), (2, 0)])
def test_svg_holds_the_short_url(client, code, scale, border):
    result = client.simulate_get(
        f"/links/{code}/qr", params={"format": "svg", "scale": scale, "border": border}
    )
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/svg+xml"
    modules = modules_of_svg(result.text, scale, border)
    assert modules == expected_modules(f"http://127.0.0.1:8000/{code}")


def test_the_code_follows_public_base_url_and_aliases(make_client):
    client = make_client(public_base_url="https://sho.rt/s/")
    client.simulate_post(
        "/links", json={"url": "https://example.com/", "alias": "Spring-Sale"}
    )
    result = client.simulate_get("/links/Spring-Sale/qr?format=svg")
    assert modules_of_svg(result.text, 5, 4) == expected_modules(
        "https://sho.rt/s/Spring-Sale"
    )


def test_defaults_and_cache_headers(client, code):
    result = client.simulate_get(f"/links/{code}/qr")
    assert result.headers["content-type"] == "image/png"
    assert result.headers["cache-control"] == "public, max-age=86400"
    assert result.headers["vary"] == "Accept"
    assert result.headers["content-disposition"] == f'inline; filename="{code}.png"'
    assert len(modules_of_png(result.content, 5, 4)) == 29  # version 3


@pytest.mark.parametrize(
    "accept, media_type",
    [
        ("image/svg+xml", "image/svg+xml"),
        ("image/svg+xml, image/png;q=0.5", "image/svg+xml"),
        ("image/png", "image/png"),
        ("*/*", "image/png"),
        ("text/html", "image/png"),
    ],
)
def test_accept_chooses_without_format(client, code, accept, media_type):
    result = client.simulate_get(f"/links/{code}/qr", headers={"Accept": accept})
    assert result.headers["content-type"] == media_type
    svg = client.simulate_get(
        f"/links/{code}/qr?format=png", headers={"Accept": "image/svg+xml"}
    )
    assert svg.headers["content-type"] == "image/png"  # format wins


def test_qr_codes_are_public_and_ignore_a_bad_key(make_client, code):
    for caller in (make_client(scope=None), make_client(key="fpa_" + "0" * 38)):
        assert caller.simulate_get(f"/links/{code}/qr").status_code == 200


def test_expired_or_used_up_links_keep_their_code(client):
    code = client.simulate_post(
        "/links", json={"url": "example.com", "max_visits": 1}
    ).json["code"]
    client.simulate_get("/" + code)
    assert_problem(client.simulate_get("/" + code), 410)
    assert client.simulate_get(f"/links/{code}/qr").status_code == 200


def test_unknown_and_deleted_links_have_none(client, code):
    for unknown in ("0000000", "nosuchalias", "a.b"):
        assert_problem(client.simulate_get(f"/links/{unknown}/qr"), 404)
    client.simulate_delete("/links/" + code)
    assert_problem(client.simulate_get(f"/links/{code}/qr"), 404)


@pytest.mark.parametrize(
    "query",
    [
        "format=gif",
        "format=",
        "scale=0",
        "scale=21",
        "scale=x",
        "border=-1",
        "border=11",
    ],
)
def test_bad_qr_queries_are_422(client, code, query):
    problem = assert_problem(client.simulate_get(f"/links/{code}/qr?{query}"), 422)
    assert query.split("=")[0] in problem["errors"]
