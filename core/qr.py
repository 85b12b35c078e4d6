"""QR codes of short URLs, drawn by segno (pure Python, so it runs under PyPy).

An image costs a few milliseconds to draw (about 1.4 ms for the code and 0.4
to 4 ms for the PNG, by scale, under PyPy), so the last ones drawn are kept.
"""

import functools
import io

import segno

FORMATS = ("png", "svg")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


@functools.lru_cache(maxsize=512)
def qr_image(text: str, kind: str, scale: int, border: int) -> bytes:
    """``text`` as a QR code image: ``kind`` png or svg.

    Args:
        text: What the code holds (a short URL).
        kind: ``png`` or ``svg``.
        scale: Pixels (SVG: user units) per module.
        border: Quiet zone around the code, in modules (the standard asks 4).
    """
    if kind not in FORMATS:
        raise ValueError(f"kind must be one of {FORMATS}, got {kind!r}")
    buffer = io.BytesIO()
    # Level M: a quarter of the code may be damaged; segno raises the level
    # when the same version has room for it.
    segno.make(text, error="m", micro=False).save(
        buffer, kind=kind, scale=scale, border=border
    )
    return buffer.getvalue()
