//! The client side of RFC 6455, as much as a load generator needs: the opening handshake, masked
//! client frames and a parser for server frames with hard limits.
//!
//! Client frames carry the mask key 0 (RFC 6455 §5.3: the key is the client's choice; a server
//! unmasks with whatever key the frame names), so a payload goes out as it is and a frame can be
//! built once and sent many times. Masking protects proxies from cache poisoning; on loopback there
//! are none.

/// Opcodes (RFC 6455 §5.2).
pub const OP_TEXT: u8 = 0x1;
/// Binary message.
pub const OP_BINARY: u8 = 0x2;
/// Close.
pub const OP_CLOSE: u8 = 0x8;
/// Ping.
pub const OP_PING: u8 = 0x9;
/// Pong.
pub const OP_PONG: u8 = 0xA;

/// The largest server message accepted: far above any answer of ours (docs/protocol.md: 64 KiB frames).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// The largest HTTP response head accepted before the `101`.
pub const MAX_HEAD: usize = 16 * 1024;

/// The opening request (RFC 6455 §4.1). `key` is the base64 of 16 random bytes.
pub fn handshake_request(host: &str, path: &str, key: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
    )
    .into_bytes()
}

/// The outcome of reading the server's response head.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The head is not complete yet.
    Incomplete,
    /// The head ended `consumed` bytes in; `status` is its HTTP status (101 = upgraded).
    Done {
        /// HTTP status code.
        status: u16,
        /// Bytes of the head, `\r\n\r\n` included; what follows is WebSocket data.
        consumed: usize,
    },
}

/// Parses the response head. The `Sec-WebSocket-Accept` check is left out: the generator talks
/// only to servers it started, and a wrong upgrade shows up as protocol errors anyway.
pub fn parse_handshake(buf: &[u8]) -> Result<Handshake, &'static str> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err("response head too long")
        } else {
            Ok(Handshake::Incomplete)
        };
    };
    let head = &buf[..end];
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    let status = head
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse::<u16>().ok())
        .ok_or("not an HTTP/1.1 status line")?;
    Ok(Handshake::Done {
        status,
        consumed: end + 4,
    })
}

/// Appends one final, masked (key 0) client frame.
pub fn encode_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&frame_header(opcode, payload.len()));
    out.extend_from_slice(payload);
}

/// The header of a final client frame with mask key 0 (RFC 6455 §5.2): up to 14 bytes.
pub fn frame_header(opcode: u8, len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.push(0x80 | opcode);
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// One server frame, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Opcode (`OP_*`).
    pub opcode: u8,
    /// Payload, unmasked (servers never mask, RFC 6455 §5.1).
    pub payload: &'a [u8],
}

/// Parses the frame at the start of `buf`: `Ok(None)` when it is not complete yet, else the frame
/// and its length in bytes. Fragmented messages are refused: neither of our servers nor the echo
/// baselines fragment, so one would mean a bug worth seeing.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, &'static str> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err("reserved bits set (no extension was negotiated)");
    }
    if b0 & 0x80 == 0 || b0 & 0x0F == 0 {
        return Err("fragmented message");
    }
    if b1 & 0x80 != 0 {
        return Err("masked server frame (RFC 6455 §5.1)");
    }
    let (len, at) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (n as u64, 2),
    };
    if len > MAX_PAYLOAD as u64 {
        return Err("server message too big");
    }
    let end = at + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            opcode: b0 & 0x0F,
            payload: &buf[at..end],
        },
        end,
    )))
}

/// Standard base64 (RFC 4648 §4) of a few bytes, for `Sec-WebSocket-Key`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        // RFC 4648 §10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(frame_header(OP_BINARY, 125), vec![0x82, 0xFD, 0, 0, 0, 0]);
        assert_eq!(
            frame_header(OP_BINARY, 3840),
            vec![0x82, 0xFE, 0x0F, 0x00, 0, 0, 0, 0]
        );
        assert_eq!(frame_header(OP_BINARY, 70_000)[1], 0xFF);
    }

    #[test]
    fn server_frames_parse_whole_or_not_at_all() {
        let mut buf = vec![0x82, 126, 0x01, 0x00];
        buf.extend(std::iter::repeat_n(7u8, 256));
        assert_eq!(parse_frame(&buf[..100]), Ok(None));
        let (frame, used) = parse_frame(&buf).unwrap().unwrap();
        assert_eq!(
            (frame.opcode, frame.payload.len(), used),
            (OP_BINARY, 256, 260)
        );
        assert!(parse_frame(&[0x02, 0x00]).is_err(), "fragment");
        assert!(parse_frame(&[0x82, 0x80]).is_err(), "masked");
    }

    #[test]
    fn handshake_reads_the_status_and_where_the_head_ends() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00";
        assert_eq!(
            parse_handshake(ok),
            Ok(Handshake::Done {
                status: 101,
                consumed: ok.len() - 2
            })
        );
        assert_eq!(
            parse_handshake(b"HTTP/1.1 503 Service"),
            Ok(Handshake::Incomplete)
        );
        assert_eq!(
            parse_handshake(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Ok(Handshake::Done {
                status: 503,
                consumed: 36
            })
        );
    }
}
