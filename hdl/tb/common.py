"""Pieces the cocotb testbenches share: packing values into flat ports, and a driver that offers
a beat when its pattern says so and holds it until the DUT accepts it."""


def pack(values, width):
    """Little-endian pack of signed or unsigned ``values``, ``width`` bits each."""
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def unpack_signed(word, width, count):
    out = []
    for i in range(count):
        v = (word >> (i * width)) & ((1 << width) - 1)
        out.append(v - (1 << width) if v >> (width - 1) else v)
    return tuple(out)


class HoldDriver:
    """Offers the next beat in a cycle whose pattern bit is set; keeps offering it until accepted."""

    def __init__(self, beats, pattern):
        self.beats, self.pattern = beats, pattern
        self.presenting, self.next = None, 0

    def step(self, t, accepted_last_cycle):
        if accepted_last_cycle:
            self.presenting = None
        if self.presenting is None and self.next < len(self.beats) and t < len(self.pattern) and self.pattern[t]:
            self.presenting, self.next = self.beats[self.next], self.next + 1
        return self.presenting
