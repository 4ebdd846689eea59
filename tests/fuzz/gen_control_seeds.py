#!/usr/bin/env python3
# Writes the seed corpus of fuzz_control: a peer's bytes on masd's control socket, the SASL
# EXTERNAL handshake (as uid 0) and one D-Bus method call in the wire format, for each method.
# usage: gen_control_seeds.py DIR
import os
import struct
import sys


def pad(b, n):
    return b + b"\0" * ((-len(b)) % n)


def string(s, sig=False):
    e = s.encode()
    return (bytes([len(e)]) if sig else struct.pack("<I", len(e))) + e + b"\0"


def marshal(sig, args, off):
    out = b""
    for c, a in zip(sig, args):
        if c == "s":
            out = pad(out, 4) if (off + len(out)) % 4 == 0 else out + b"\0" * ((-(off + len(out))) % 4)
            out += string(a)
        elif c == "u":
            out += b"\0" * ((-(off + len(out))) % 4) + struct.pack("<I", a)
        elif c == "t":
            out += b"\0" * ((-(off + len(out))) % 8) + struct.pack("<Q", a)
    return out


def call(member, sig="", args=(), serial=1):
    body = marshal(sig, args, 0)
    fields = b""
    for code, typ, val in ((1, "o", "/org/masd/control"), (2, "s", "org.masd.Control1"),
                           (3, "s", member)) + (((8, "g", sig),) if sig else ()):
        fields = pad(fields, 8)
        fields += bytes([code]) + string(typ, True)
        fields += string(val, typ == "g")
    hdr = b"l\x01\x00\x01" + struct.pack("<II", len(body), serial)
    hdr += struct.pack("<I", len(fields)) + fields
    return pad(hdr, 8) + body


auth = b"\0AUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n"
policy = ("version: 1\ndestinations:\n  a: { cidrs: [127.0.0.1/32], ports: [7], protected: true }\n")
seeds = {
    "apply": call("Apply", "ss", ("p.yaml", policy)),
    "apply-bad": call("Apply", "ss", ("p.yaml", "version: 2\n")),
    "show": call("Show"),
    "rotate": call("KeysRotate", "su", ("jwt", 3)),
    "events": call("Events", "tu", (0, 100)),
    "teardown": call("Teardown"),
    "status": call("Status"),
    "two-calls": call("Show") + call("Events", "tu", (5, 1), serial=2),
}
for name, msg in seeds.items():
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(auth + msg)
