//! What a backend does, as data: one description that drives a real backend
//! ([`crate::scripted`]) and that the reference checker ([`crate::nomad_checker`])
//! reads, so Nomad's verdict and HAProxy's are judged on the same behaviour.

use std::collections::BTreeMap;
use std::time::Duration;

/// What listens on each port of 127.0.0.1. A port that is not listed refuses
/// connections.
#[derive(Debug, Clone, Default)]
pub struct Net {
    /// Port → listener.
    pub listeners: BTreeMap<u16, Listener>,
}

impl Net {
    /// The listener on `port`, if any.
    pub fn at(&self, port: u16) -> Option<&Listener> {
        self.listeners.get(&port)
    }
}

/// A listener and the protocol it speaks.
#[derive(Debug, Clone)]
pub enum Listener {
    /// Accepts connections and never says anything.
    Silent,
    /// HTTP/1.1 in clear text.
    Http(Site),
    /// HTTP/1.1 over TLS with a self-signed certificate (for `localhost`,
    /// `api.example.test` and 127.0.0.1), refusing the handshake unless the
    /// client sends `required_sni` when that is set.
    Https {
        /// What it answers.
        site: Site,
        /// The SNI the client must send (a strict virtual host), if any.
        required_sni: Option<String>,
    },
    /// A gRPC server (h2c). `None`: without the `grpc.health.v1.Health`
    /// service (every call is `UNIMPLEMENTED`); otherwise the health
    /// service's statuses (service → SERVING), `""` being the server's own.
    Grpc(Option<BTreeMap<String, bool>>),
}

/// An HTTP server's answers: its routes by path; any other path gets 404.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The routes, matched on the path without its query string.
    pub routes: Vec<Route>,
}

/// How one path answers.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path (no query string).
    pub path: String,
    /// The status of a request that meets every requirement below.
    pub status: u16,
    /// A `Location` header sent with it.
    pub location: Option<String>,
    /// How long the server waits before it answers anything.
    pub delay: Duration,
    /// The `Host` the request must carry (case-insensitive); 404 otherwise,
    /// like a virtual host that is not served here.
    pub host: Option<String>,
    /// The only methods served; 405 for the others. Empty: any method.
    pub methods: Vec<String>,
    /// The query string the request must carry exactly; 400 otherwise.
    pub query: Option<String>,
    /// A header (name, value) the request must carry; 401 otherwise, like
    /// a token-protected health endpoint.
    pub header: Option<(String, String)>,
}

impl Route {
    /// `path` answering `status` at once to anything.
    pub fn new(path: &str, status: u16) -> Route {
        Route {
            path: path.into(),
            status,
            location: None,
            delay: Duration::ZERO,
            host: None,
            methods: Vec::new(),
            query: None,
            header: None,
        }
    }

    /// Sends `Location: location`.
    pub fn location(mut self, location: &str) -> Route {
        self.location = Some(location.into());
        self
    }

    /// Waits `delay` before answering.
    pub fn delay(mut self, delay: Duration) -> Route {
        self.delay = delay;
        self
    }

    /// Requires `Host: host`.
    pub fn host(mut self, host: &str) -> Route {
        self.host = Some(host.into());
        self
    }

    /// Serves only `methods`.
    pub fn methods(mut self, methods: &[&str]) -> Route {
        self.methods = methods.iter().map(|m| m.to_string()).collect();
        self
    }

    /// Requires the query string `query`.
    pub fn query(mut self, query: &str) -> Route {
        self.query = Some(query.into());
        self
    }

    /// Requires the header `name: value`.
    pub fn header(mut self, name: &str, value: &str) -> Route {
        self.header = Some((name.into(), value.into()));
        self
    }
}

/// One HTTP/1.1 request as it reaches a server.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a str,
    /// The request target: path and query string.
    pub target: &'a str,
    /// Every header line (name, value), `Host` included.
    pub headers: &'a [(String, String)],
}

impl Request<'_> {
    /// The values of header `name` (case-insensitive), in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// How long the server waits before answering.
    pub delay: Duration,
}

impl Site {
    /// A site with these routes.
    pub fn with(routes: Vec<Route>) -> Site {
        Site { routes }
    }

    /// A site whose `path` answers `status`.
    pub fn status(path: &str, status: u16) -> Site {
        Site::with(vec![Route::new(path, status)])
    }

    /// The answer to `request`. As RFC 9112 §3.2 requires of a server, a
    /// request without exactly one `Host` gets 400. Then the route by path,
    /// and its requirements in this order: Host (404), header (401),
    /// method (405), query string (400).
    pub fn answer(&self, request: &Request<'_>) -> Answer {
        let hosts = request.values("host");
        let [host] = hosts.as_slice() else {
            return plain(400);
        };
        let (path, query) = match request.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (request.target, None),
        };
        let Some(route) = self.routes.iter().find(|r| r.path == path) else {
            return plain(404);
        };
        let status = if route
            .host
            .as_deref()
            .is_some_and(|want| !host.eq_ignore_ascii_case(want))
        {
            404
        } else if route
            .header
            .as_ref()
            .is_some_and(|(name, want)| !request.values(name).contains(&want.as_str()))
        {
            401
        } else if !route.methods.is_empty() && !route.methods.iter().any(|m| m == request.method) {
            405
        } else if route.query.is_some() && route.query.as_deref() != query {
            400
        } else {
            return Answer {
                status: route.status,
                location: route.location.clone(),
                delay: route.delay,
            };
        };
        Answer {
            status,
            location: None,
            delay: route.delay,
        }
    }
}

fn plain(status: u16) -> Answer {
    Answer {
        status,
        location: None,
        delay: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(site: &Site, method: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let request = Request {
            method,
            target,
            headers: &headers,
        };
        site.answer(&request).status
    }

    #[test]
    fn requirements_are_checked_host_then_header_then_method_then_query() {
        let site = Site::with(vec![
            Route::new("/h", 200)
                .host("a.test")
                .header("X-Token", "t")
                .methods(&["POST"])
                .query("x=1"),
        ]);
        let good = [("Host", "A.test"), ("x-token", "t")];
        assert_eq!(ask(&site, "POST", "/h?x=1", &good), 200);
        assert_eq!(
            ask(
                &site,
                "POST",
                "/h?x=1",
                &[("Host", "b.test"), ("X-Token", "t")]
            ),
            404
        );
        assert_eq!(ask(&site, "POST", "/h?x=1", &[("Host", "a.test")]), 401);
        assert_eq!(ask(&site, "GET", "/h?x=1", &good), 405);
        assert_eq!(ask(&site, "POST", "/h", &good), 400);
        assert_eq!(ask(&site, "POST", "/other", &good), 404);
    }

    #[test]
    fn a_request_needs_exactly_one_host() {
        let site = Site::status("/h", 200);
        assert_eq!(ask(&site, "GET", "/h", &[("Host", "a")]), 200);
        assert_eq!(ask(&site, "GET", "/h", &[]), 400);
        assert_eq!(
            ask(&site, "GET", "/h", &[("Host", "a"), ("host", "b")]),
            400
        );
    }

    #[test]
    fn the_delay_applies_to_every_answer_of_a_route() {
        let slow = Duration::from_millis(700);
        let site = Site::with(vec![Route::new("/h", 302).location("/x").delay(slow)]);
        let headers = [("Host".to_string(), "a".to_string())];
        let request = Request {
            method: "GET",
            target: "/h",
            headers: &headers,
        };
        assert_eq!(
            site.answer(&request),
            Answer {
                status: 302,
                location: Some("/x".into()),
                delay: slow
            }
        );
    }
}
