//! The status page's handlers: `/status` (HTML) and `/status.json`, both
//! filtered by `?service=` (a part of the service name, any case).

use super::AdminState;
use super::status_html;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The query string both pages take.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Keep the services whose name contains this.
    pub service: Option<String>,
}

/// `/status`: the page.
pub async fn page(State(state): State<AdminState>, Query(filter): Query<Filter>) -> Response {
    let Some(source) = &state.status else {
        return unavailable();
    };
    let status = source.status(filter.service.as_deref()).await;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        status_html::render(&status),
    )
        .into_response()
}

/// `/status.json`: the same data.
pub async fn json(State(state): State<AdminState>, Query(filter): Query<Filter>) -> Response {
    let Some(source) = &state.status else {
        return unavailable();
    };
    let status = source.status(filter.service.as_deref()).await;
    ([(header::CACHE_CONTROL, "no-store")], Json(status)).into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no status page: this listener does not serve a running connector\n",
    )
        .into_response()
}
