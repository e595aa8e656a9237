"""Image files that are not 8-bit colour: found from their header, converted by the decoder, said once.

An Airbus image is an 8-bit RGB JPEG. A file that is a grey JPEG or PNG, a PNG with an alpha
channel or a 16-bit PNG (whatever its name says) is still read as (H, W, 3) uint8 RGB, a sound
conversion: grey is copied to R, G and B, the alpha channel is dropped, 16-bit values are divided
by 256. It is not done silently: the first such file of a run is named in a warning, and
`conversions()` gives their count (a run's summary shows it). The header is read, not decoded
twice: a few bytes of a PNG, the markers before a JPEG's frame header.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the component count.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_HOW = {"grey": "grey copied to R, G and B", "alpha": "its alpha channel dropped",
        "16-bit": "each 16-bit value divided by 256", "CMYK": "converted from CMYK by OpenCV"}

_lock = threading.Lock()
_files: dict[str, dict[str, None]] = {}  # kind -> the files of that kind read since the last reset, in order


def unusual_traits(data: np.ndarray) -> list[str]:
    """What makes an encoded image other than 8-bit colour (keys of `_HOW`); [] for an ordinary one."""
    head = memoryview(data)
    if bytes(head[:8]) == PNG_SIGNATURE and len(head) >= 26:
        depth, colour = head[24], head[25]  # IHDR: bit depth, colour type (0 grey, 2 RGB, 3 palette, 4/6 +alpha)
        return [t for t, found in (("grey", colour in (0, 4)), ("alpha", colour in (4, 6)), ("16-bit", depth == 16))
                if found]
    if bytes(head[:2]) == b"\xff\xd8":
        components = _jpeg_components(head)
        return {1: ["grey"], 4: ["CMYK"]}.get(components, [])
    return []


def _jpeg_components(head: memoryview) -> int:
    """The component count of a JPEG's frame header (0 when not found)."""
    at = 2
    for _ in range(200):  # segments before the frame header: APPn (EXIF, ICC), DQT, COM...
        if at + 10 > len(head) or head[at] != 0xFF:
            return 0
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker in _SOF:
            return head[at + 9]
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
        else:
            at += 2 + (head[at + 2] << 8 | head[at + 3])
    return 0


def note(path, data: np.ndarray) -> None:
    """Count the file if it is not 8-bit colour; warn for the first such file (of each kind) of a run."""
    traits = unusual_traits(data)
    if not traits:
        return
    kind = " ".join(traits)
    with _lock:
        first = kind not in _files
        _files.setdefault(kind, {})[str(path)] = None  # a file read again (each epoch) counts once
    if first:
        warnings.warn(f"Image file {str(path)!r} is not an 8-bit colour image ({kind}): it is read as 8-bit RGB "
                      f"({', '.join(_HOW[t] for t in traits)}). Other such files are converted without a further "
                      "warning; their count is in the run's summary.", stacklevel=3)


def conversions(reset: bool = False) -> str | None:
    """One line: how many files were converted since the last reset, of which kinds, one of each named."""
    with _lock:
        files = {kind: list(paths) for kind, paths in _files.items()}
        if reset:
            _files.clear()
    if not files:
        return None
    kinds = ", ".join(f"{len(paths)} {kind} (e.g. {paths[0]})" for kind, paths in files.items())
    return (f"converted {sum(map(len, files.values()))} image file(s) that are not 8-bit colour to 8-bit RGB: "
            f"{kinds}")
