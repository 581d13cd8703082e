//! `/status` as one self-contained HTML page: inline style, no script, no
//! external asset. Every value is escaped by `maud` (names, tags, check
//! output and errors come from Nomad, plugins and HAProxy).

use super::status::{InstanceView, ServiceView, Status};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .5em}
table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:.8em}
th,td{border:1px solid #d8dee4;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
code{font:12px ui-monospace,monospace}.muted{color:#68737d}
.up{color:#fff;background:#1a7f37}.down{color:#fff;background:#cf222e}
.other{background:#d4a72c}.badge{padding:.1em .45em;border-radius:3px;font-weight:600}
.warn{color:#9a6700}.svc{margin:1.2em 0 .3em;font-weight:600}
form{margin:.8em 0}input{padding:.25em .4em}";

/// The page.
pub fn render(status: &Status) -> String {
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "haproxy-nomad-connector status" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "haproxy-nomad-connector" }
                div.muted {
                    (status.services.len()) " of " (status.services_total) " services shown. "
                    "HAProxy: "
                    @if status.haproxy.reachable { "answering" }
                    @else { span.warn { "not answering: " (status.haproxy.error.as_deref().unwrap_or("")) } }
                    ". " a href="status.json" { "JSON" }
                }
                form method="get" action="status" {
                    label { "Service name contains " input type="text" name="service" value=(status.filter.as_deref().unwrap_or("")); }
                    " " button type="submit" { "Filter" }
                }
                h2 { "Nomad" }
                table {
                    tr { th { "scope" } th { "stream" } th { "last index" } th { "lag" } th { "re-lists" } th { "reconnects" } th { "last error" } }
                    @for n in &status.nomad {
                        tr {
                            td { code { (n.scope) } }
                            td { @if n.connected { span.badge.up { "connected" } } @else { span.badge.down { "disconnected" } } }
                            td { (n.last_index) }
                            td { @if let Some(lag) = n.lag_seconds { (format!("{lag:.1} s")) } }
                            td { (n.relists) }
                            td { (n.reconnects) }
                            td.muted { (n.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
                h2 { "Services" }
                @if status.services.is_empty() { p.muted { "No managed service matches." } }
                @for service in &status.services { (service_block(service)) }
                h2 { "Plugins" }
                table {
                    tr { th { "check type" } th { "plugin" } th { "from" } th { "calls" } th { "failures" } th { "out of fuel" } th { "fuel per call (mean)" } th { "fuel budget" } }
                    @for p in &status.plugins {
                        tr {
                            td { code { (p.check_type) } }
                            td { (p.plugin) }
                            td.muted { (p.origin) }
                            td { (p.calls) }
                            td { (p.failures) }
                            td { (p.fuel_exhausted) }
                            td { (p.fuel_mean) }
                            td { (p.fuel_per_call) }
                        }
                    }
                }
                h2 { "Last reloads" }
                @if status.reloads.is_empty() { p.muted { "None since the connector started." } }
                @else {
                    table {
                        tr { th { "when" } th { "why" } }
                        @for r in &status.reloads {
                            tr {
                                td { (ago(status.generated_at.saturating_sub(r.at))) }
                                td { (r.reasons.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

fn service_block(service: &ServiceView) -> Markup {
    html! {
        div.svc {
            (service.namespace) " / " (service.name)
            span.muted {
                @if let Some(backend) = &service.backend { " → backend " code { (backend) } }
                @else { " (no enabled instance)" }
            }
        }
        @for problem in &service.problems { div.warn { (problem) } }
        table {
            tr {
                th { "server" } th { "address" } th { "job version" } th { "check" }
                th { "origin" } th { "plugin" } th { "HAProxy" } th { "last check" } th { "since" }
            }
            @for i in &service.instances { (instance_row(i)) }
        }
    }
}

fn instance_row(i: &InstanceView) -> Markup {
    html! {
        tr {
            td { code { (i.server) } @if !i.enabled { br; span.muted { "not enabled" } } }
            td { (i.address) }
            td { @if let Some(v) = i.job_version { (v) } }
            td {
                (i.check.as_deref().unwrap_or("—"))
                @for other in &i.other_checks { br; "and " (other) }
                @if !i.check_tags.is_empty() { br; span.muted { (i.check_tags.join(" ")) } }
                @if !i.server_args.is_empty() { br; code.muted { (i.server_args) } }
            }
            td {
                (i.origin)
                @if let Some(f) = &i.fallback { br; span.warn { "fallback (" (f.cause) "): " (f.reason) } }
            }
            td { (i.plugin.as_deref().unwrap_or("—")) }
            @match &i.haproxy {
                Some(live) => {
                    td { span class={ "badge " (badge(&live.status)) } { (live.status) } }
                    td { (live.check_status) " " span.muted { (live.last_check) } }
                    td { @if let Some(s) = live.since_seconds { (ago(s)) } }
                }
                None => { td.muted colspan="3" { "not in HAProxy" } }
            }
        }
    }
}

fn badge(status: &str) -> &'static str {
    if status.starts_with("UP") {
        "up"
    } else if status.starts_with("DOWN") {
        "down"
    } else {
        "other"
    }
}

fn ago(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::admin::status::{FallbackView, HaproxyView, InstanceView, ServiceView};

    fn hostile_status() -> Status {
        let evil = "<img src=x onerror=alert(1)>&\"'";
        Status {
            generated_at: 100,
            filter: Some(evil.into()),
            services_total: 1,
            services: vec![ServiceView {
                namespace: evil.into(),
                name: evil.into(),
                backend: Some(evil.into()),
                problems: vec![evil.into()],
                instances: vec![InstanceView {
                    id: evil.into(),
                    server: evil.into(),
                    address: evil.into(),
                    enabled: true,
                    job_version: Some(1),
                    check: Some(evil.into()),
                    other_checks: vec![evil.into()],
                    origin: "job spec",
                    plugin: Some(evil.into()),
                    fallback: Some(FallbackView {
                        cause: evil.into(),
                        reason: evil.into(),
                    }),
                    check_tags: vec![evil.into()],
                    server_args: evil.into(),
                    haproxy: Some(super::super::status_live::Live {
                        status: evil.into(),
                        check_status: evil.into(),
                        last_check: evil.into(),
                        since_seconds: Some(5),
                    }),
                }],
            }],
            plugins: Vec::new(),
            reloads: Vec::new(),
            nomad: Vec::new(),
            haproxy: HaproxyView {
                reachable: false,
                error: Some(evil.into()),
            },
        }
    }

    #[test]
    fn text_from_outside_is_escaped_everywhere() {
        let html = render(&hostile_status());
        assert!(!html.contains("<img"), "{html}");
        assert!(
            !html.contains("\"'"),
            "an attribute could be closed: {html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;"),
            "{html}"
        );
        // Every instance field made it to the page (escaped), 15 of them.
        assert!(html.matches("&lt;img").count() >= 15, "{html}");
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = render(&hostile_status());
        assert!(html.starts_with("<!DOCTYPE html>"));
        for outside in [
            "<script",
            "<link",
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(outside), "{outside} in {html}");
        }
    }
}
