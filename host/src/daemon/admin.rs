//! The admin HTTP listener: Prometheus `/metrics`, `/healthz` (the process
//! runs), `/readyz` (the connector does its job), plain text otherwise, and
//! the status page (`/status`, `/status.json`).

mod connections;
mod readiness;
mod status;
mod status_html;
mod status_http;
pub(crate) mod status_live;
mod status_publish;

pub use connections::Limits;
pub use readiness::{NotReady, Readiness};
pub use status::{Published, Publisher, Status, StatusSource};

use crate::metrics::{Format, Metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The admin listener failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address cannot be bound (in use, not local, no permission).
    #[error("admin listener: cannot bind {addr}")]
    BindFailed {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("admin listener failed")]
    ServeFailed(#[source] std::io::Error),
}

/// What the handlers read: the metrics and the readiness state.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Rendered by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Answered by `/readyz`.
    pub readiness: Readiness,
    /// Read by `/status` and `/status.json` (none: they answer 404).
    pub status: Option<StatusSource>,
}

/// Binds the admin listener's address.
///
/// # Errors
/// [`Error::BindFailed`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::BindFailed { addr, source })
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` within the
/// default [`Limits`] until `shutdown` resolves; requests in flight then finish.
///
/// # Errors
/// None today: failed accepts (out of descriptors) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with(listener, state, Limits::default(), shutdown).await
}

/// [`serve`] within `limits`.
///
/// # Guarantees
/// At most `limits.max_connections` connections are held; at the limit the
/// oldest one without a request in flight is closed to make room, so a
/// scraper gets in while thousands of idle connections are open.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with(
    listener: TcpListener,
    state: AdminState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    connections::serve(listener, router(state), limits, shutdown).await;
    Ok(())
}

fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status_http::page))
        .route("/status.json", get(status_http::json))
        .fallback(not_found)
        .with_state(state)
}

async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match state.metrics.render(format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match state.readiness.check() {
        Ok(()) => "ready\n".into_response(),
        Err(not_ready) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{not_ready}\n")).into_response()
        }
    }
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "not found: {} (try /metrics, /healthz or /readyz)\n",
            uri.path()
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sources;
    use crate::nomad::HealthWatch;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// A listener on 127.0.0.1:0 with a scope `*` whose health the test plays.
    struct Admin {
        base: String,
        http: reqwest::Client,
        readiness: Readiness,
        stop: Option<oneshot::Sender<()>>,
        served: JoinHandle<Result<(), Error>>,
    }

    impl Admin {
        async fn start(watch: HealthWatch) -> Admin {
            Admin::start_with(watch, Limits::default()).await
        }

        async fn start_with(watch: HealthWatch, limits: Limits) -> Admin {
            let readiness = Readiness::new(watch.clone());
            let ready = readiness.clone();
            let metrics = Arc::new(Metrics::new(Sources {
                nomad: Arc::new(move || watch.scopes()),
                ready: Arc::new(move || ready.is_ready()),
                ..Sources::default()
            }));
            let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = oneshot::channel::<()>();
            let state = AdminState {
                metrics,
                readiness: readiness.clone(),
                status: None,
            };
            let served = tokio::spawn(serve_with(listener, state, limits, async {
                let _ = stopped.await;
            }));
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            Admin {
                base,
                http,
                readiness,
                stop: Some(stop),
                served,
            }
        }

        async fn get(&self, path: &str, accept: Option<&str>) -> (u16, String, String) {
            let mut req = self.http.get(format!("{}{path}", self.base));
            if let Some(accept) = accept {
                req = req.header(header::ACCEPT, accept);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, content_type, resp.text().await.unwrap())
        }
    }

    #[tokio::test]
    async fn healthz_answers_while_the_process_runs_and_unknown_paths_are_404() {
        let (_board, watch) = HealthWatch::test_board(&["*"]);
        let admin = Admin::start(watch).await;
        let (status, _, body) = admin.get("/healthz", None).await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        let (status, content_type, body) = admin.get("/nope", None).await;
        assert_eq!(status, 404);
        assert!(content_type.starts_with("text/plain"));
        assert!(body.starts_with("not found: /nope"));
    }

    #[tokio::test]
    async fn readyz_follows_the_first_sync_nomad_and_haproxy() {
        let (board, watch) = HealthWatch::test_board(&["*"]);
        board.update("*", |h| h.last_error = Some("connection refused".into()));
        let admin = Admin::start(watch).await;

        let (status, _, body) = admin.get("/readyz", None).await;
        assert_eq!(status, 503);
        assert!(body.starts_with("not ready: the first full sync"), "{body}");
        assert!(body.contains("scope \"*\" disconnected"), "{body}");
        assert!(body.trim_end().ends_with("connection refused"), "{body}");

        board.update("*", |h| h.connected = true);
        admin.readiness.first_sync_done();
        assert_eq!(admin.get("/readyz", None).await.0, 200);

        board.update("*", |h| {
            h.connected = false;
            h.last_error = Some("the event stream ended".into());
        });
        let (status, _, body) = admin.get("/readyz", None).await;
        assert_eq!(status, 503);
        assert!(body.starts_with("not ready: nomad event stream"), "{body}");
        assert!(body.contains("the event stream ended"), "{body}");

        board.update("*", |h| h.connected = true);
        admin
            .readiness
            .haproxy_failed(&"connect /run/haproxy.sock: Connection refused");
        let (status, _, body) = admin.get("/readyz", None).await;
        assert_eq!(status, 503);
        assert!(
            body.contains("HAProxy did not answer the last sync"),
            "{body}"
        );
        admin.readiness.haproxy_ok();
        assert_eq!(admin.get("/readyz", None).await.0, 200);
    }

    #[tokio::test]
    async fn metrics_parse_as_prometheus_text_in_both_formats() {
        let (board, watch) = HealthWatch::test_board(&["*"]);
        board.update("*", |h| h.connected = true);
        let admin = Admin::start(watch).await;
        admin.readiness.first_sync_done();

        let (status, content_type, body) = admin.get("/metrics", None).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let families = parse_exposition(&body);
        for family in [
            "hnc_ready",
            "hnc_nomad_connected",
            "hnc_reloads_total",
            "hnc_apply_duration_seconds",
        ] {
            assert!(
                families.contains(&family.to_string()),
                "{family} missing in\n{body}"
            );
        }
        assert!(body.contains("hnc_ready 1\n"));
        assert!(body.contains("hnc_nomad_connected{scope=\"*\"} 1\n"));

        let openmetrics =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let (status, content_type, body) = admin.get("/metrics", Some(openmetrics)).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, Format::OpenMetrics.content_type());
        assert!(body.ends_with("# EOF\n"));
        assert!(parse_exposition(&body).len() >= 20);
    }

    #[tokio::test]
    async fn serve_returns_once_shutdown_resolves() {
        let (_board, watch) = HealthWatch::test_board(&["*"]);
        let mut admin = Admin::start(watch).await;
        assert_eq!(admin.get("/healthz", None).await.0, 200);
        admin.stop.take().unwrap().send(()).unwrap();
        let served = tokio::time::timeout(std::time::Duration::from_secs(10), &mut admin.served);
        assert!(matches!(served.await, Ok(Ok(Ok(())))));
    }

    /// Whether the server closes `stream` (EOF or reset) within 10 s.
    async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        read.await.is_ok()
    }

    #[tokio::test]
    async fn a_slow_header_and_a_silent_connection_are_closed() {
        use tokio::io::AsyncWriteExt;
        let (_board, watch) = HealthWatch::test_board(&["*"]);
        let limits = Limits {
            header_read_timeout: std::time::Duration::from_millis(300),
            idle_timeout: std::time::Duration::from_millis(300),
            ..Limits::default()
        };
        let admin = Admin::start_with(watch, limits).await;
        let addr = admin.base.trim_start_matches("http://").to_string();
        let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        assert!(
            closed_by_server(&mut silent).await,
            "an idle connection stays open"
        );
        assert!(
            closed_by_server(&mut slow).await,
            "a header never finished keeps its connection"
        );
        assert_eq!(admin.get("/healthz", None).await.0, 200);
    }

    #[tokio::test]
    async fn metrics_answer_while_thousands_of_idle_connections_are_open() {
        let (_board, watch) = HealthWatch::test_board(&["*"]);
        // The default time-outs: the idle connections stay for the test.
        let limits = Limits {
            max_connections: 64,
            ..Limits::default()
        };
        let admin = Admin::start_with(watch, limits).await;
        let addr = admin.base.trim_start_matches("http://").to_string();
        let mut idle = Vec::new();
        for _ in 0..2_000 {
            idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        let (status, _, body) = admin.get("/metrics", None).await;
        assert_eq!(status, 200);
        assert!(body.contains("hnc_ready"), "{body}");
        // The newest idle connections still hold their slots; the oldest
        // were closed to make room.
        assert!(closed_by_server(&mut idle[0]).await);
    }

    /// Checks every line of a text exposition (comments, then samples of a
    /// declared family with a numeric value); the families declared.
    fn parse_exposition(text: &str) -> Vec<String> {
        let mut families: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut words = rest.splitn(3, ' ');
                match (words.next(), words.next()) {
                    (Some("TYPE"), Some(name)) => families.push(name.to_string()),
                    (Some("HELP" | "UNIT"), Some(_)) | (Some("EOF"), None) => {}
                    _ => panic!("bad comment line {line:?}"),
                }
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {line:?}"));
            assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
            let name = series.split('{').next().unwrap_or_default();
            assert!(
                name.starts_with("hnc_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad name in {line:?}"
            );
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels in {line:?}"
                );
            }
            let declared = families.last().is_some_and(|f| {
                name == f
                    || ["_total", "_bucket", "_count", "_sum", "_info"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(f.as_str()))
            });
            assert!(
                declared,
                "{line:?} does not belong to {:?}",
                families.last()
            );
        }
        families
    }
}
