"""The member card's scannable images, drawn server-side as SVG (segno for QR, python-barcode for
Code 128) and handed to the page as data URIs (the Content-Security-Policy allows ``data:``
images, no script draws anything)."""

from __future__ import annotations

import base64

import barcode
import segno
from barcode.writer import SVGWriter


def _data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def qr_svg_uri(data: str) -> str:
    """QR code of ``data`` (error correction M, a 4-module quiet zone as scanners expect)."""
    svg = segno.make(data, error="m", micro=False).svg_inline(scale=8, border=4, dark="#000", light="#fff")
    if "xmlns=" not in svg:
        svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return _data_uri(svg.encode())


def barcode_svg_uri(data: str) -> str:
    """Code 128 barcode of ``data`` (tills scan Code 128 as text), without the human-readable line:
    the page prints the number itself in a larger font."""
    code = barcode.get("code128", data, writer=SVGWriter())
    svg = code.render({"module_width": 0.33, "module_height": 20, "quiet_zone": 6, "write_text": False})
    return _data_uri(svg)
