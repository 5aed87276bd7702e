"""Which keys each preset of a SoundFont can actually sound, read from the file's zone key ranges.

Presets do not always cover the whole keyboard (TimGM6mb's whistle is silent above its samples'
range), and a label must never claim a note that rendered as silence. FluidSynth does not expose
zone ranges through its API, so we read the SF2 "pdta" chunk directly: small, and parsed once.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_KEY_RANGE, _INSTRUMENT, _SAMPLE_ID = 43, 41, 53


def _chunks(data: bytes, start: int, end: int) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        cid = data[pos : pos + 4].decode("latin-1")
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid in ("LIST", "RIFF"):
            sub = data[body : body + 4].decode("latin-1")
            out[sub] = (body + 4, body + size)
        else:
            out[cid] = (body, body + size)
        pos = body + size + (size & 1)
    return out


def _read_pdta(path: Path) -> dict[str, bytes]:
    """The preset/instrument tables, without reading the (large) sample data chunk."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise ValueError("not a SoundFont 2 file")
        total = struct.unpack_from("<I", head, 4)[0] + 8
        pos = 12
        while pos + 12 <= total:
            f.seek(pos)
            hdr = f.read(12)
            if len(hdr) < 8:
                break
            cid, size = hdr[:4], struct.unpack_from("<I", hdr, 4)[0]
            if cid == b"LIST" and hdr[8:12] == b"pdta":
                f.seek(pos + 12)
                body = f.read(size - 4)
                subs = _chunks(body, 0, len(body))
                return {k: body[a:b] for k, (a, b) in subs.items()}
            pos += 8 + size + (size & 1)
    raise ValueError("no pdta chunk")


def _gens(gen: bytes, a: int, b: int) -> list[tuple[int, int, int]]:
    """(operator, low byte, high byte) of generators a..b-1."""
    out = []
    for i in range(a, b):
        op, lo, hi = struct.unpack_from("<HBB", gen, 4 * i)
        out.append((op, lo, hi))
    return out


def _zones(headers: list[tuple[int, int]], bag: bytes, gen: bytes, idx: int) -> list[list[tuple[int, int, int]]]:
    b0, b1 = headers[idx][1], headers[idx + 1][1]
    zones = []
    for z in range(b0, b1):
        g0 = struct.unpack_from("<H", bag, 4 * z)[0]
        g1 = struct.unpack_from("<H", bag, 4 * (z + 1))[0]
        zones.append(_gens(gen, g0, g1))
    return zones


def _key_range(zone: list[tuple[int, int, int]], default: tuple[int, int]) -> tuple[int, int]:
    for op, lo, hi in zone:
        if op == _KEY_RANGE:
            return lo, hi
    return default


def preset_keys(path: str | Path) -> dict[tuple[int, int], np.ndarray]:
    """{(bank, program): bool[128] of keys some sample answers}; empty dict if the file is unreadable."""
    try:
        t = _read_pdta(Path(path))
        phdr, pbag, pgen = t["phdr"], t["pbag"], t["pgen"]
        inst, ibag, igen = t["inst"], t["ibag"], t["igen"]
    except (OSError, ValueError, KeyError, struct.error):
        return {}
    presets = [struct.unpack_from("<20sHHH", phdr, 38 * i) for i in range(len(phdr) // 38)]
    p_heads = [(int(bank) * 1000 + int(prog), int(bagi)) for _, prog, bank, bagi in presets]
    insts = [struct.unpack_from("<20sH", inst, 22 * i) for i in range(len(inst) // 22)]
    i_heads = [(0, int(bagi)) for _, bagi in insts]
    inst_keys: dict[int, np.ndarray] = {}

    def keys_of_inst(i: int) -> np.ndarray:
        if i not in inst_keys:
            mask = np.zeros(128, bool)
            if 0 <= i < len(i_heads) - 1:
                zones = _zones(i_heads, ibag, igen, i)
                default = (0, 127)
                for z in zones:
                    if not any(op == _SAMPLE_ID for op, _, _ in z):
                        default = _key_range(z, default)  # global zone
                for z in zones:
                    if any(op == _SAMPLE_ID for op, _, _ in z):
                        lo, hi = _key_range(z, default)
                        mask[lo : hi + 1] = True
            inst_keys[i] = mask
        return inst_keys[i]

    out: dict[tuple[int, int], np.ndarray] = {}
    try:
        for p in range(len(presets) - 1):  # the last header is the EOP terminator
            _, prog, bank, _ = presets[p]
            zones = _zones(p_heads, pbag, pgen, p)
            mask = np.zeros(128, bool)
            default = (0, 127)
            for z in zones:
                if not any(op == _INSTRUMENT for op, _, _ in z):
                    default = _key_range(z, default)
            for z in zones:
                for op, lo_b, hi_b in z:
                    if op == _INSTRUMENT:
                        lo, hi = _key_range(z, default)
                        window = np.zeros(128, bool)
                        window[lo : hi + 1] = True
                        mask |= window & keys_of_inst(lo_b | (hi_b << 8))
            out[(int(bank), int(prog))] = mask
    except struct.error:
        return {}
    return out
