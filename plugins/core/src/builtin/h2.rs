//! The bytes of a gRPC health `Check` call over HTTP/2 with prior knowledge.
//!
//! HAProxy's `http-check` cannot send a gRPC message (its body stops at the
//! first NUL), so the probe goes out raw through `tcp-check send-binary`
//! (verified on HAProxy 2.6, `reference/haproxy.md` §3). Layout:
//! client preface, empty SETTINGS, SETTINGS ACK, HEADERS (HPACK literals, no
//! Huffman), DATA with END_STREAM carrying `HealthCheckRequest{service}`.

/// The gRPC method every health check calls.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Longest service name or authority accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 255;

const FRAME_DATA: u8 = 0;
const FRAME_HEADERS: u8 = 1;
const FRAME_SETTINGS: u8 = 4;
const FLAG_ACK_OR_END_STREAM: u8 = 1;
const FLAG_END_HEADERS: u8 = 4;

/// Builds the probe for `service` (empty: the server's overall health).
///
/// # Errors
/// A service name or authority longer than [`MAX_FIELD_LEN`] or containing
/// control characters.
pub fn health_check_request(service: &str, authority: &str, tls: bool) -> Result<Vec<u8>, String> {
    for (what, value) in [("gRPC service name", service), ("authority", authority)] {
        if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
            return Err(format!(
                "{what} '{}' must be at most {MAX_FIELD_LEN} bytes without control characters",
                value.escape_debug()
            ));
        }
    }
    let mut headers = vec![0x83, if tls { 0x87 } else { 0x86 }]; // :method POST, :scheme
    literal_indexed_name(&mut headers, 4, HEALTH_CHECK_PATH); // :path
    literal_indexed_name(&mut headers, 1, authority); // :authority
    literal_indexed_name(&mut headers, 31, "application/grpc"); // content-type
    headers.push(0x00); // literal without indexing, new name
    string(&mut headers, "te");
    string(&mut headers, "trailers");

    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a); // field 1, length-delimited
        varint(&mut message, service.len());
        message.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0u8]; // not compressed
    body.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    body.extend_from_slice(&message);

    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, FRAME_SETTINGS, 0, 0, &[]);
    frame(&mut out, FRAME_SETTINGS, FLAG_ACK_OR_END_STREAM, 0, &[]);
    frame(&mut out, FRAME_HEADERS, FLAG_END_HEADERS, 1, &headers);
    frame(&mut out, FRAME_DATA, FLAG_ACK_OR_END_STREAM, 1, &body);
    Ok(out)
}

/// Hex of the gRPC message a SERVING `HealthCheckResponse` carries: not
/// compressed, length 2, field 1 = 1.
pub const SERVING_RESPONSE_HEX: &str = "00000000020801";

// The regexes as literals, so that `ANSWER_HEX_REGEX` is built from them.
macro_rules! any_response_hex_regex {
    () => {
        "0000000002080[0-9a-f]"
    };
}
macro_rules! trailers_only_hex_regex {
    () => {
        "^(..)*?[0-9A-Fa-f]{6}01[0-9A-Fa-f][13579BDFbdf]00000001"
    };
}

/// A regex over the hex of any `HealthCheckResponse` with a status field.
pub const ANY_RESPONSE_HEX_REGEX: &str = any_response_hex_regex!();

/// A regex over the hex of the server's bytes: a HEADERS frame on stream 1
/// that ends the stream. Before any message, that is a gRPC "trailers-only"
/// answer, which is how servers answer an error status (NOT_FOUND for a
/// service they do not know, UNIMPLEMENTED without the health service).
/// `^(..)*?` keeps the match on byte boundaries; HAProxy prints the hex in
/// capitals, so the classes take both cases.
pub const TRAILERS_ONLY_HEX_REGEX: &str = trailers_only_hex_regex!();

/// [`ANY_RESPONSE_HEX_REGEX`] or [`TRAILERS_ONLY_HEX_REGEX`]: the server has
/// answered the call, with a message or with an error status.
pub const ANSWER_HEX_REGEX: &str =
    concat!(any_response_hex_regex!(), "|", trailers_only_hex_regex!());

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// HPACK literal with incremental indexing and an indexed name (6-bit prefix).
fn literal_indexed_name(out: &mut Vec<u8>, index: u8, value: &str) {
    integer(out, 0x40, 6, usize::from(index));
    string(out, value);
}

/// HPACK string literal without Huffman coding (7-bit length prefix).
fn string(out: &mut Vec<u8>, value: &str) {
    integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// HPACK integer (RFC 7541 §5.1) with `prefix_bits` bits in the first byte.
fn integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Protobuf base-128 varint.
fn varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The probe verified against a real grpcio health server
    /// (`reference/haproxy.md` §3, produced by `h2hex.py`).
    const VERIFIED: &str = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a00000004000000000000000004010000000000004a0104000000018386441c2f677270632e6865616c74682e76312e4865616c74682f436865636b41096c6f63616c686f73745f106170706c69636174696f6e2f677270630002746508747261696c6572730000050001000000010000000000";

    #[test]
    fn matches_the_probe_verified_on_haproxy() {
        assert_eq!(
            hex(&health_check_request("", "localhost", false).unwrap()),
            VERIFIED
        );
    }

    #[test]
    fn named_service_is_a_length_prefixed_request() {
        let bytes = health_check_request("shop.Cart", "localhost", false).unwrap();
        let tail = hex(&bytes[bytes.len() - 16..]);
        // DATA frame payload: 00 0000000b 0a 09 "shop.Cart"
        assert!(
            hex(&bytes).ends_with(&format!("000000000b0a09{}", hex(b"shop.Cart"))),
            "{tail}"
        );
    }

    /// The hex HAProxy's `rbinary` runs on: capitals.
    fn haproxy_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Whether (the server answered, with a response message).
    fn answered(received: &[u8]) -> (bool, bool) {
        let text = haproxy_hex(received);
        let re = |r: &str| regex::Regex::new(r).unwrap().is_match(&text);
        (re(ANSWER_HEX_REGEX), re(ANY_RESPONSE_HEX_REGEX))
    }

    #[test]
    fn an_error_status_is_an_answer_without_a_response() {
        let mut settings = Vec::new();
        frame(&mut settings, FRAME_SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        // Trailers-only: HEADERS with END_STREAM | END_HEADERS on stream 1.
        let mut error = settings.clone();
        frame(&mut error, FRAME_HEADERS, 5, 1, b"\x88grpc-status5");
        assert_eq!(answered(&error), (true, false));
        // Response headers alone (no END_STREAM): not an answer yet.
        let mut headers = settings.clone();
        frame(&mut headers, FRAME_HEADERS, FLAG_END_HEADERS, 1, b"\x88");
        assert_eq!(answered(&headers), (false, false));
        // Then the SERVING message: an answer with a response.
        let mut serving = headers.clone();
        frame(&mut serving, FRAME_DATA, 0, 1, &[0, 0, 0, 0, 2, 8, 1]);
        assert_eq!(answered(&serving), (true, true));
        // The frame's hex one nibble off its byte boundaries is not a frame.
        let shifted = [0x0a, 0xaa, 0xaa, 0xa0, 0x10, 0x50, 0x00, 0x00, 0x00, 0x10];
        assert_eq!(answered(&shifted), (false, false));
        let unaligned = TRAILERS_ONLY_HEX_REGEX.trim_start_matches("^(..)*?");
        assert!(
            regex::Regex::new(unaligned)
                .unwrap()
                .is_match(&haproxy_hex(&shifted))
        );
    }

    #[test]
    fn tls_uses_the_https_scheme() {
        let bytes = health_check_request("", "localhost", true).unwrap();
        assert!(hex(&bytes).contains("8387441c"));
    }

    #[test]
    fn long_fields_use_multi_byte_lengths() {
        let name = "s".repeat(200);
        let bytes = health_check_request(&name, "localhost", false).unwrap();
        // 0x0a, varint(200) = c8 01
        assert!(hex(&bytes).contains(&format!("0ac801{}", hex(name.as_bytes()))));
        let mut int = Vec::new();
        integer(&mut int, 0, 7, 200);
        assert_eq!(int, [0x7f, 0x49]);
    }

    #[test]
    fn oversized_or_control_fields_are_refused() {
        assert!(health_check_request(&"x".repeat(256), "localhost", false).is_err());
        assert!(health_check_request("a\nb", "localhost", false).is_err());
    }
}
