//! ACLs: plain-text 403s, token headers, event-stream denials per version.

use nomad_sim::{Acl, AclToken, Sim, SimConfig, StreamMode};
use serde_json::json;

use crate::common::*;

fn acl_cfg(mode: StreamMode, denied: u16) -> SimConfig {
    SimConfig {
        stream_mode: mode,
        acl_denied_status: denied,
        acl: Some(Acl::with_tokens(vec![
            AclToken::management("root"),
            AclToken::read("reader", &["default"]),
            AclToken::read("all-ns", &["default", "apps"]),
        ])),
        ..cfg()
    }
}

#[tokio::test]
async fn tokens_from_either_header_and_plain_text_403() {
    let sim = Sim::start(acl_cfg(StreamMode::Hijacked, 403))
        .await
        .unwrap();
    let cases: [(&[(&str, &str)], u16); 7] = [
        (&[], 403),
        (&[("X-Nomad-Token", "unknown")], 403),
        (&[("X-Nomad-Token", "reader")], 200),
        (&[("Authorization", "Bearer reader")], 200),
        (&[("Authorization", "bEaReR reader")], 200),
        (
            &[
                ("X-Nomad-Token", "unknown"),
                ("Authorization", "Bearer reader"),
            ],
            403,
        ),
        (
            &[
                ("X-Nomad-Token", "reader"),
                ("Authorization", "Bearer unknown"),
            ],
            200,
        ),
    ];
    for (headers, status) in cases {
        let (s, h, body) = get(&sim, "/v1/service/web", headers).await;
        assert_eq!(s, status, "{headers:?}");
        if status == 403 {
            assert_eq!(body, "Permission denied");
            assert_eq!(h["content-type"], "text/plain; charset=utf-8");
        }
    }
    assert_eq!(
        get(
            &sim,
            "/v1/service/web?namespace=apps",
            &[("X-Nomad-Token", "reader")]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        get(
            &sim,
            "/v1/job/x?namespace=apps",
            &[("X-Nomad-Token", "root")]
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn stream_denials_before_1_11_2_are_status_codes() {
    for denied in [403, 500] {
        let sim = Sim::start(acl_cfg(StreamMode::Chunked, denied))
            .await
            .unwrap();
        let ok = RawStream::open(
            sim.addr(),
            "/v1/event/stream?topic=Service",
            &[("X-Nomad-Token", "reader")],
        )
        .await;
        assert_eq!(ok.status, 200);
        // No topic = `*:*`, which needs a management token.
        let mut s = RawStream::open(
            sim.addr(),
            "/v1/event/stream",
            &[("X-Nomad-Token", "reader")],
        )
        .await;
        assert_eq!(s.status, denied);
        assert_eq!(
            String::from_utf8(s.rest(SOON).await).unwrap(),
            "Permission denied"
        );
        let unknown = RawStream::open(
            sim.addr(),
            "/v1/event/stream?topic=Service",
            &[("X-Nomad-Token", "nope")],
        )
        .await;
        assert_eq!(unknown.status, 403, "an unresolvable token is always 403");
        let root = RawStream::open(
            sim.addr(),
            "/v1/event/stream",
            &[("Authorization", "Bearer root")],
        )
        .await;
        assert_eq!(root.status, 200);
    }
}

#[tokio::test]
async fn stream_denials_from_1_11_2_are_200_then_close() {
    let sim = Sim::start(acl_cfg(StreamMode::Hijacked, 403))
        .await
        .unwrap();
    let mut s = RawStream::open(
        sim.addr(),
        "/v1/event/stream?topic=Node",
        &[("X-Nomad-Token", "reader")],
    )
    .await;
    assert_eq!(s.status, 200);
    let rest = s.rest(SOON).await;
    assert!(s.eof);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn namespace_star_needs_read_in_every_namespace() {
    let sim = Sim::start(acl_cfg(StreamMode::Chunked, 403)).await.unwrap();
    sim.register_job(simple_job("apps", "a", "api"));
    let denied = RawStream::open(
        sim.addr(),
        "/v1/event/stream?topic=Service&namespace=*",
        &[("X-Nomad-Token", "reader")],
    )
    .await;
    assert_eq!(denied.status, 403);
    let mut allowed = RawStream::open(
        sim.addr(),
        "/v1/event/stream?topic=Service&namespace=*",
        &[("X-Nomad-Token", "all-ns")],
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.line(SOON).await.as_deref(), Some("{}"));
    // `/v1/services?namespace=*` lists only readable namespaces.
    place_simple(&sim, "apps", "a", 9000);
    let (_, _, body) = get(
        &sim,
        "/v1/services?namespace=*",
        &[("X-Nomad-Token", "reader")],
    )
    .await;
    assert_eq!(body, "[]");
    let (_, _, body) = get(
        &sim,
        "/v1/services?namespace=*",
        &[("X-Nomad-Token", "all-ns")],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["Namespace"],
        json!("apps")
    );
}
