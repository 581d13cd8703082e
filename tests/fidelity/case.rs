//! One case of the fidelity matrix, the check builders the cases use, and the
//! documented ways the default mapping deliberately differs from Nomad.

use hnc_tests::nomad_checker::{CheckDef, CheckKind, Target, Verdict};
use serde_json::{Value, json};
use std::time::Duration;

const SECOND: u64 = 1_000_000_000;
/// Every case's interval: Nomad's minimum.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Every case's timeout: Nomad's minimum.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// A way the default mapping deliberately differs from Nomad's checker.
#[derive(Debug, PartialEq, Eq)]
pub struct Difference {
    /// A short stable name (the report's key).
    pub id: &'static str,
    /// What differs, in one line (docs/fidelity.md's heading).
    pub title: &'static str,
    /// Why the mapping does it anyway.
    pub why: &'static str,
}

/// HAProxy judges a redirect itself (docs/architecture.md, "The built-in mappings").
pub const REDIRECTS: Difference = Difference {
    id: "redirects",
    title: "HAProxy does not follow redirects",
    why: "HAProxy's `http-check` has no way to follow a `Location`, so it judges the \
          301/302/303 answer itself, which is below 400 and passes. Nomad's Go client \
          follows 301/302/303 and judges the final answer (Go never follows 307/308 for \
          Nomad, so those agree). Following a redirect would need an external agent; the \
          mapping keeps one real probe of the server's own port, and a health endpoint \
          that redirects is rare and easy to point at the final path.",
};

/// SNI from the Host header (design.md, "Default mappings").
pub const SNI: Difference = Difference {
    id: "sni",
    title: "The http mapping sends the Host header as SNI",
    why: "design.md asks for \"SNI from the Host header\": a virtual-hosted TLS backend \
          gets the name it serves, as a browser or a proxy would send. Nomad dials the \
          registration's IP address and Go sends no SNI for an IP, so a backend that \
          requires SNI refuses Nomad's handshake; HAProxy's check passes where Nomad's \
          fails. The mapping prefers the check that reflects what real clients see.",
};

/// HAProxy 2.6 takes an interim answer for the final one.
pub const INTERIM: Difference = Difference {
    id: "interim-1xx",
    title: "HAProxy 2.6 takes an interim 1xx answer for the final one",
    why: "Go's client reads past `100 Continue`, `102 Processing` and `103 Early Hints` \
          to the final answer (Go 1.24 and later; older Go returned some 1xx answers \
          to the caller). HAProxy 2.6's check parses the first status line it gets and \
          judges it, so a 1xx fails `expect status 200-399` whatever follows. A health \
          endpoint that sends interim answers is rare; none of HAProxy's check rules can \
          skip them.",
};

/// HAProxy sends a body with Content-Length; Go sends Nomad's chunked.
pub const CHUNKED: Difference = Difference {
    id: "chunked-body",
    title: "HAProxy sends a check's body with Content-Length, Nomad sends it chunked",
    why: "Nomad sets the check's body as a reader after the request is built, so Go \
          knows no length and sends `Transfer-Encoding: chunked`. HAProxy's \
          `http-check send body` always sends `Content-Length`, and a `hdr \
          Transfer-Encoding` of our own would contradict it. A server that refuses \
          chunked requests (411) fails Nomad's check and passes HAProxy's; `map` and \
          `explain` say so for a check with a body.",
};

/// A blank in the query string.
pub const QUERY_BLANK: Difference = Difference {
    id: "query-blank",
    title: "A blank in the query string is sent escaped",
    why: "Go sends the query string of Nomad's path raw, so a blank makes a request \
          line of four words, which a strict server refuses (400). HAProxy's check URI \
          is one config word (or one value of the URI map, set over the runtime API), \
          so the mapping sends `%20` and the server sees a valid request. `map` and \
          `explain` name the escaped query string.",
};

/// HAProxy refuses answers bigger than its buffer.
pub const BUFFER: Difference = Difference {
    id: "buffer",
    title: "HAProxy fails an answer whose head is over its buffer",
    why: "Go reads response heads up to 1 MB (`MaxResponseHeaderBytes`) and never \
          reads the body of a 200. HAProxy's check keeps the head in one buffer \
          (`tune.bufsize`, 16 kB by default, less `tune.maxrewrite`) of at most \
          `tune.http.maxhdr` (101) header lines, and parses a chunked body as it \
          arrives: a bigger head, or a malformed body, fails HAProxy's check only. \
          Raising `tune.bufsize` in the operator's config moves the first limit.",
};

/// Every deliberate difference, for the report and docs/fidelity.md.
pub const DIFFERENCES: [&Difference; 6] =
    [&REDIRECTS, &SNI, &INTERIM, &CHUNKED, &QUERY_BLANK, &BUFFER];

/// One case: a job-spec check, the real backend behind it, and what HAProxy
/// is expected to conclude.
pub struct Case {
    /// Its name: the job, the service and (prefixed) the HAProxy backend.
    pub name: &'static str,
    /// The check as the job spec writes it (`structs.ServiceCheck`).
    pub check: Value,
    /// Tags beside `haproxy.enable=true`.
    pub tags: Vec<String>,
    /// The real backend's behaviour, in words.
    pub behaviour: &'static str,
    /// The allocation's ports; the first (`http`) is the service's.
    pub ports: Vec<(&'static str, u16)>,
    /// HAProxy's verdict where the mapping deliberately differs from Nomad.
    pub deliberate: Option<(Verdict, &'static Difference)>,
    /// The service's other checks (Nomad requires all to pass).
    pub more_checks: Vec<Value>,
    /// The group it belongs to (the report's categories).
    pub category: &'static str,
}

impl Case {
    /// A case whose service port (`http`) is `port`.
    pub fn new(name: &'static str, check: Value, behaviour: &'static str, port: u16) -> Case {
        Case {
            name,
            check,
            tags: Vec::new(),
            behaviour,
            ports: vec![("http", port)],
            deliberate: None,
            more_checks: Vec::new(),
            category: "",
        }
    }

    /// Adds another check to the service.
    pub fn and_check(mut self, check: Value) -> Case {
        self.more_checks.push(check);
        self
    }

    /// Every check of the service, in job order.
    pub fn checks(&self) -> Vec<Value> {
        std::iter::once(self.check.clone())
            .chain(self.more_checks.iter().cloned())
            .collect()
    }

    /// Adds an allocation port (for a check `PortLabel`).
    pub fn port(mut self, label: &'static str, port: u16) -> Case {
        self.ports.push((label, port));
        self
    }

    /// Adds a service tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Case {
        self.tags.push(tag.into());
        self
    }

    /// Marks a documented difference: HAProxy must say `haproxy`.
    pub fn deliberate(mut self, haproxy: Verdict, why: &'static Difference) -> Case {
        self.deliberate = Some((haproxy, why));
        self
    }

    /// The HAProxy backend the daemon makes of its service.
    pub fn backend(&self) -> String {
        format!("default_{}", self.name)
    }

    /// The check the operator declared: the job's, with a tag-declared gRPC
    /// probe in place of the Nomad `tcp` check (docs/tags.md), judged with
    /// Consul's gRPC semantics as the tags ask.
    pub fn declared(&self) -> CheckDef {
        let mut check = CheckDef::from_job(&self.check);
        if self.tags.iter().any(|t| t == "haproxy.check.type=grpc") {
            check.kind = CheckKind::Grpc;
            check.grpc_service = self
                .tags
                .iter()
                .find_map(|t| t.strip_prefix("haproxy.check.grpc_service="))
                .unwrap_or("")
                .to_string();
        }
        check
    }

    /// What HAProxy must conclude, given Nomad's verdict.
    pub fn expected(&self, nomad: Verdict) -> Verdict {
        self.deliberate.map_or(nomad, |(haproxy, _)| haproxy)
    }

    fn rise(&self) -> u32 {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix("haproxy.check.rise=")?.parse().ok())
            .unwrap_or(1)
    }

    /// The promised time to a verdict: interval + timeout, plus an interval
    /// per extra passing check that `rise` asks for. (A new server starts
    /// DOWN, so `fall` never delays its first verdict.)
    pub fn bound(&self, verdict: Verdict) -> Duration {
        let extra = match verdict {
            Verdict::Pass => self.rise().saturating_sub(1),
            Verdict::Fail => 0,
        };
        INTERVAL + TIMEOUT + INTERVAL * extra
    }

    /// Where Nomad runs the check: the registration and its allocation's ports.
    pub fn target(&self) -> Target {
        Target {
            address: "127.0.0.1".into(),
            port: self.ports[0].1,
            ports: self
                .ports
                .iter()
                .map(|(l, p)| (l.to_string(), *p))
                .collect(),
        }
    }

    /// The check in one line, as the job spec writes it, for the table.
    pub fn describe(&self) -> String {
        let c = &self.check;
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
            if value.is_empty() { default } else { value }
        }
        let mut out = match s("Type") {
            "http" => format!(
                "{} {} {}",
                or(s("Protocol"), "http"),
                or(s("Method"), "GET"),
                s("Path")
            ),
            other => other.to_string(),
        };
        if let Some(headers) = c.get("Header").and_then(Value::as_object) {
            for (name, values) in headers {
                let values: Vec<&str> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                out.push_str(&format!(", {name}: {}", values.join(" + ")));
            }
        }
        if c.get("TLSSkipVerify").and_then(Value::as_bool) == Some(true) {
            out.push_str(", tls_skip_verify");
        }
        if !s("PortLabel").is_empty() {
            out.push_str(&format!(", port \"{}\"", s("PortLabel")));
        }
        for tag in &self.tags {
            out.push_str(&format!(", tag {tag}"));
        }
        for more in &self.more_checks {
            let extra = Case {
                check: more.clone(),
                tags: Vec::new(),
                more_checks: Vec::new(),
                ..Case::new(self.name, Value::Null, self.behaviour, 0)
            };
            out.push_str(&format!(" AND {}", extra.describe()));
        }
        out
    }
}

/// A Nomad `http` check on `path` every second with a 1 s timeout, plus
/// `extra` fields.
pub fn http_with(path: &str, extra: Value) -> Value {
    with(
        json!({"Name": "health", "Type": "http", "Path": path,
            "Interval": SECOND, "Timeout": SECOND}),
        extra,
    )
}

/// A plain `GET /health` check.
pub fn get() -> Value {
    http_with("/health", json!({}))
}

/// A Nomad `tcp` check every second with a 1 s timeout, plus `extra` fields.
pub fn tcp(extra: Value) -> Value {
    with(
        json!({"Name": "alive", "Type": "tcp", "Interval": SECOND, "Timeout": SECOND}),
        extra,
    )
}

/// `{"Header": {"Host": [host]}}`.
pub fn host(host: &str) -> Value {
    json!({"Header": {"Host": [host]}})
}

fn with(mut check: Value, extra: Value) -> Value {
    if let (Some(c), Value::Object(e)) = (check.as_object_mut(), extra) {
        c.extend(e);
    }
    check
}
