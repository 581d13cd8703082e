//! Property tests: no tag value, check field or plugin answer ever yields a
//! config line or server argument with a control character, `;`, `#`, or a
//! directive or keyword the connector does not mean to write.

use haproxy_nomad_connector::mapping::Engine;
use haproxy_nomad_connector::vocab::check::{RenderContext, render};
use hnc_core::model::*;
use hnc_tests::grammar::{check_backend_line, check_server_args};
use hnc_tests::mapping::{builtin_engine, service};
use proptest::prelude::*;
use std::sync::LazyLock;

static ENGINE: LazyLock<Engine> = LazyLock::new(builtin_engine);

/// Strings that favour what breaks config files and the runtime socket.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "[a-z/;#'\"\\\\%$ \n\r\t]{0,16}",
        ".{0,12}",
        Just("x\nbackend evil".to_string()),
        Just("a; del server b/c".to_string()),
        Just("%[env(SECRET)]".to_string()),
    ]
}

fn check_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http".to_string()),
        Just("tcp".to_string()),
        Just("grpc".to_string()),
        Just("script".to_string()),
        nasty(),
    ]
}

prop_compose! {
    fn nomad_check()(
        check_type in check_type(),
        path in nasty(),
        method in nasty(),
        protocol in prop_oneof![Just(String::new()), Just("https".to_string()), nasty()],
        headers in prop::collection::vec((nasty(), nasty()), 0..3),
        body in nasty(),
        grpc_service in nasty(),
        tls_server_name in nasty(),
        grpc_use_tls in any::<bool>(),
        check_port in prop::option::of(any::<u16>()),
        interval_ms in 0u64..100_000_000_000,
        timeout_ms in 0u64..100_000_000_000,
    ) -> NomadCheck {
        NomadCheck {
            name: "prop".into(),
            check_type,
            path,
            method,
            protocol,
            headers: headers.into_iter().map(|(name, v)| Header { name, values: vec![v] }).collect(),
            body,
            grpc_service,
            tls_server_name,
            grpc_use_tls,
            check_port,
            interval_ms,
            timeout_ms,
            ..NomadCheck::default()
        }
    }
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![
        Just("type"),
        Just("path"),
        Just("method"),
        Just("host"),
        Just("interval"),
        Just("timeout"),
        Just("rise"),
        Just("fall"),
        Just("port"),
        Just("disabled"),
        Just("grpc_service"),
        Just("grpc_use_tls"),
        Just("bogus"),
    ];
    prop::collection::vec(
        (key, nasty()).prop_map(|(k, v)| format!("haproxy.check.{k}={v}")),
        0..4,
    )
}

fn assert_safe(backend: &[String], server: &str) -> Result<(), TestCaseError> {
    for line in backend {
        check_backend_line(line).map_err(TestCaseError::fail)?;
    }
    check_server_args(server).map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn job_checks_and_tags_never_inject(check in nomad_check(), tags in tags()) {
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let mapped = ENGINE.map(&service("svc", &tag_refs), Some(&check));
        assert_safe(&mapped.rendered.backend_lines(), &mapped.rendered.server_args())?;
    }

    #[test]
    fn plugin_answers_never_inject(
        strings in prop::collection::vec(nasty(), 16),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        numbers in prop::collection::vec(any::<u32>(), 6),
        kind in 0u8..3,
    ) {
        let s = |i: usize| strings[i].clone();
        let backend = match kind {
            0 => BackendCheck::Tcp,
            1 => BackendCheck::Http(HttpCheck {
                method: s(0), uri: s(1), version: s(2),
                headers: vec![(s(3), s(4))], body: s(5), default_host: true,
                expect: vec![HttpExpect { negate: true, matcher: HttpMatch::Rstring, pattern: s(6) },
                             HttpExpect { negate: false, matcher: HttpMatch::Status, pattern: s(7) }],
            }),
            _ => BackendCheck::TcpCheck(vec![
                TcpCheckRule::Connect(TcpConnect { port: Some(numbers[0] as u16), ssl: true, sni: Some(s(0)), alpn: Some(s(1)) }),
                TcpCheckRule::Send(s(2)),
                TcpCheckRule::SendBinary(bytes.clone()),
                TcpCheckRule::Comment(s(3)),
                TcpCheckRule::Expect(TcpExpect { negate: true, matcher: TcpMatch::Binary, pattern: s(4),
                    min_recv: Some(numbers[1]), error_status: Some(s(5)), comment: Some(s(6)) }),
            ]),
        };
        let plan = CheckPlan {
            backend,
            timeout_check_ms: Some(numbers[2]),
            server: ServerCheck {
                enabled: true, inter_ms: Some(numbers[3]), fastinter_ms: Some(numbers[4]), downinter_ms: None,
                rise: Some(numbers[5]), fall: Some(1), port: Some(numbers[0] as u16), addr: Some(s(8)),
                ssl: true, verify: TlsVerify::Required, sni: Some(s(9)), proto: Some(s(10)), alpn: Some(s(11)),
                agent: Some(AgentCheck { port: numbers[1] as u16, addr: Some(s(12)), inter_ms: Some(numbers[2]), send: Some(s(13)) }),
            },
            notes: vec![s(14)],
            warnings: vec![s(15)],
        };
        let ctx = RenderContext { host_map: Some(s(14).into()), uri_map: Some(s(13).into()), ca_file: s(15) };
        if let Ok(rendered) = render(&plan, &ctx) {
            assert_safe(&rendered.backend_lines(), &rendered.server_args())?;
        }
    }
}

#[test]
fn safe_values_do_render() {
    let mapped = ENGINE.map(
        &service("svc", &["haproxy.check.path=/ok?a=1"]),
        Some(&hnc_tests::mapping::http_check("/x")),
    );
    assert_eq!(mapped.fallback, None);
    assert!(mapped.rendered.backend_lines()[1].contains("uri /ok?a=1"));
}
