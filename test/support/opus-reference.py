#!/usr/bin/env python3
"""An Opus codec independent of ours: Debian's system libopus (package libopus0), called through ctypes.

The end-to-end Opus tests (test/realtime/opus.test.ts) check the server's packets against it, and feed the
server packets it made. Packets travel as records: a 2-byte little-endian length, then the packet. A
zero-length record is a lost packet (decoded with libopus' packet loss concealment, 20 ms).

  opus-reference.py version                      print the library's version string
  opus-reference.py encode RATE CHANNELS         s16le PCM on stdin -> 20 ms packet records on stdout
  opus-reference.py decode RATE CHANNELS         packet records on stdin -> s16le PCM on stdout

Exit status 3 when the system libopus cannot be loaded.
"""

import ctypes
import ctypes.util
import struct
import sys

OPUS_APPLICATION_AUDIO = 2049
MAX_PACKET_BYTES = 4000
MAX_FRAME_MS = 120


def load():
    names = ["libopus.so.0", ctypes.util.find_library("opus")]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.opus_get_version_string.restype = ctypes.c_char_p
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int32]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
        ]
        return lib
    sys.stderr.write("the system libopus (Debian package libopus0) is not installed\n")
    sys.exit(3)


def check(error, what):
    if error.value != 0:
        sys.stderr.write(f"{what} failed: libopus error {error.value}\n")
        sys.exit(1)


def encode(lib, rate, channels):
    error = ctypes.c_int(0)
    enc = lib.opus_encoder_create(rate, channels, OPUS_APPLICATION_AUDIO, ctypes.byref(error))
    check(error, "opus_encoder_create")
    frame = rate // 50
    frame_bytes = frame * channels * 2
    pcm = sys.stdin.buffer.read()
    # The last partial frame is padded with silence.
    if len(pcm) % frame_bytes:
        pcm += b"\0" * (frame_bytes - len(pcm) % frame_bytes)
    out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
    records = bytearray()
    for at in range(0, len(pcm), frame_bytes):
        n = lib.opus_encode(enc, pcm[at : at + frame_bytes], frame, out, MAX_PACKET_BYTES)
        if n < 0:
            sys.stderr.write(f"opus_encode failed: libopus error {n}\n")
            sys.exit(1)
        records += struct.pack("<H", n) + out.raw[:n]
    sys.stdout.buffer.write(bytes(records))


def decode(lib, rate, channels):
    error = ctypes.c_int(0)
    dec = lib.opus_decoder_create(rate, channels, ctypes.byref(error))
    check(error, "opus_decoder_create")
    max_frames = rate * MAX_FRAME_MS // 1000
    pcm = ctypes.create_string_buffer(max_frames * channels * 2)
    data = sys.stdin.buffer.read()
    out = bytearray()
    at = 0
    while at < len(data):
        (length,) = struct.unpack_from("<H", data, at)
        at += 2
        packet = data[at : at + length]
        at += length
        if length == 0:
            n = lib.opus_decode(dec, None, 0, pcm, rate // 50, 0)
        else:
            n = lib.opus_decode(dec, packet, length, pcm, max_frames, 0)
        if n < 0:
            sys.stderr.write(f"opus_decode failed on a {length}-byte packet: libopus error {n}\n")
            sys.exit(1)
        out += pcm.raw[: n * channels * 2]
    sys.stdout.buffer.write(bytes(out))


def main():
    lib = load()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "version":
        print(lib.opus_get_version_string().decode())
    elif command in ("encode", "decode") and len(sys.argv) == 4:
        rate, channels = int(sys.argv[2]), int(sys.argv[3])
        (encode if command == "encode" else decode)(lib, rate, channels)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
