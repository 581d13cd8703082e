//! Errors of the Nomad client, the event stream and the job-spec look-ups.

/// A `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something that went wrong talking to Nomad.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP request failed before a response (connect, TLS, reset, time-out).
    #[error("nomad {what}: request failed: {source}")]
    RequestFailed {
        /// The request, e.g. `GET /v1/services`.
        what: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// 403, or 500 with `Permission denied`: the token is unknown or lacks a capability.
    #[error(
        "nomad {what}: permission denied (HTTP {status}: {body}); the token needs `read-job` (and `list-jobs`) in every watched namespace; `namespaces = [\"*\"]` needs it in every namespace on Nomad 1.9.6+"
    )]
    PermissionDenied {
        /// The request.
        what: String,
        /// 403, or 500 on Nomad ≤ 1.9.5.
        status: u16,
        /// Nomad's plain-text message.
        body: String,
    },
    /// 401: no credential was sent where one is required (the Task API
    /// socket always wants one, even with ACLs disabled).
    #[error(
        "nomad {what}: unauthorized (HTTP 401: {body}); no token was sent: set `token` or NOMAD_TOKEN (through the Task API socket, give the task `identity {{ env = true }}`)"
    )]
    Unauthorized {
        /// The request.
        what: String,
        /// Nomad's plain-text message.
        body: String,
    },
    /// Any other non-2xx answer.
    #[error("nomad {what}: HTTP {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// The status code.
        status: u16,
        /// Nomad's plain-text message (cut to 512 bytes).
        body: String,
    },
    /// A 2xx answer whose body is longer than the connector reads for it.
    #[error("nomad {what}: the response is larger than {max} bytes; not read")]
    BodyTooLarge {
        /// The request.
        what: String,
        /// The most that is read.
        max: usize,
    },
    /// A 2xx answer whose body is not the JSON expected.
    #[error("nomad {what}: unexpected response: {source}")]
    DecodeFailed {
        /// The request.
        what: String,
        /// serde's explanation (names the field and position).
        #[source]
        source: serde_json::Error,
    },
    /// The event stream ended before its first heartbeat. Nomad 1.11.2+
    /// answers every stream with `200 OK` and closes it on any error, ACL
    /// denial included.
    #[error(
        "nomad event stream closed before its first heartbeat: on Nomad 1.11.2+ this is how a denied subscription looks (the token needs `read-job` in the namespace; `*` needs it in every namespace)"
    )]
    StreamRefused,
    /// The event stream ended (cleanly, or with Nomad's trailing plain-text error).
    #[error("nomad event stream ended{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    StreamEnded {
        /// Nomad's message, e.g. `subscription closed by server, client should resubscribe`.
        message: Option<String>,
    },
    /// A frame could not be decoded (truncated at a cut, or malformed).
    #[error("nomad event stream: bad frame: {reason}")]
    BadFrame {
        /// What was wrong.
        reason: String,
    },
    /// A frame grew past `[nomad] max_frame_bytes` before its line ended:
    /// the stream is dropped unread and everything is listed again.
    #[error(
        "nomad event stream: a frame of over {max} bytes ({received} received without its end) exceeds [nomad] max_frame_bytes; re-listing instead"
    )]
    FrameTooLarge {
        /// Bytes of the unfinished frame when it was refused.
        received: usize,
        /// The cap.
        max: usize,
        /// The frame's `Index`, read from its start: the next stream starts
        /// after it (the re-list covers what it held).
        index: Option<u64>,
    },
    /// The HTTP client cannot be built (unreadable or invalid TLS files).
    #[error("nomad client: {message}")]
    ClientSetup {
        /// What failed, naming the file.
        message: String,
    },
    /// Neither a frame nor a heartbeat arrived within the idle time-out.
    #[error("nomad event stream: nothing received for {0:?} (heartbeats come every 30 s)")]
    IdleTimeout(std::time::Duration),
}

impl Error {
    /// Whether retrying soon cannot help: the token must change first.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            Error::PermissionDenied { .. } | Error::Unauthorized { .. }
        )
    }

    /// Whether Nomad answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status: 404, .. })
    }

    /// Classifies a non-2xx answer the way Nomad writes them (plain text).
    /// The body is cut to 512 bytes and kept on one line (it reaches logs
    /// and `/readyz`; a newline in it must not forge a line).
    pub(crate) fn from_status(what: String, status: u16, body: &str) -> Error {
        let body = crate::escape::one_line(&cut(body.trim(), 512)).into_owned();
        let denied = status == 403
            || (status == 500
                && (body.contains("Permission denied") || body.contains("ACL token not found")));
        if denied {
            Error::PermissionDenied { what, status, body }
        } else if status == 401 {
            Error::Unauthorized { what, body }
        } else {
            Error::Status { what, status, body }
        }
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_is_403_or_500_with_the_message() {
        assert!(Error::from_status("x".into(), 403, "Permission denied").is_permission_denied());
        assert!(Error::from_status("x".into(), 500, "Permission denied\n").is_permission_denied());
        assert!(!Error::from_status("x".into(), 500, "No cluster leader").is_permission_denied());
        assert!(Error::from_status("x".into(), 404, "job not found").is_not_found());
    }

    #[test]
    fn unauthorized_names_the_missing_token_and_how_to_send_one() {
        let e = Error::from_status("GET /v1/services".into(), 401, "Unauthorized");
        assert!(e.is_permission_denied());
        let text = e.to_string();
        assert!(
            text.contains("HTTP 401") && text.contains("NOMAD_TOKEN"),
            "{text}"
        );
        assert!(text.contains("identity { env = true }"), "{text}");
    }

    #[test]
    fn a_body_stays_on_one_line() {
        let e = Error::from_status(
            "GET /v1/x".into(),
            500,
            "boom\nlevel=info msg=forged\u{1b}[2J",
        );
        let text = e.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("boom\\nlevel=info") && !text.contains('\u{1b}'),
            "{text}"
        );
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let s = "é".repeat(400);
        let c = cut(&s, 511);
        assert!(c.len() <= 514 && c.ends_with('…'));
    }
}
