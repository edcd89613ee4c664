"""N-MNIST / N-Caltech101 `.bin` bytes (ATIS 40-bit events) as Orchard et al.'s data sets store them, for
the talon.io and talon eval tests."""


def atis_bytes(events):
    """5 bytes per (x, y, t, p): x, y, polarity bit 7 + time bits 22..16, time bits 15..0 (y = 240: a
    timestamp overflow marker)."""
    out = bytearray()
    for x, y, t, p in events:
        out += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)
