//! What is refused and reported, never applied: a rejected render, static balance, a taken name.

use super::*;

#[tokio::test]
async fn invalid_render_keeps_old_config_serving_and_is_reported() {
    let app = HttpBackend::start().await;
    let (h, driver) = start("", |_| {}).await;
    let check = http_check("/health", 200, None);
    let a = server("a", app.port, &check);
    sync(&driver, &desired(&[&dynamic("default_web", &check, &[&a])])).await;
    wait_status(&h, "default_web", &a.name, "UP").await;
    let reloads = h.reloads().await;
    let managed_before = std::fs::read_to_string(&h.managed_cfg).expect("managed");

    // Forced: a line the grammar accepts but HAProxy does not.
    let mut broken = check.clone();
    broken.backend.push(vec![
        Token::word("test", "bogus-keyword", 32).expect("token"),
    ]);
    let bad = desired(&[&dynamic("default_web", &broken, &[&a])]);
    let report = sync(&driver, &bad).await;
    let ReloadOutcome::Rejected { alerts, kept_at } = &report.reload else {
        panic!("expected a rejected render: {report:?}");
    };
    let first = &alerts[0];
    assert_eq!(first.file.as_deref(), Some(&*kept_at.to_string_lossy()));
    let line = first.line.expect("a line number") as usize;
    let rejected = std::fs::read_to_string(kept_at).expect("rejected render kept");
    assert!(
        rejected
            .lines()
            .nth(line - 1)
            .unwrap_or("")
            .contains("bogus-keyword")
    );
    assert!(
        first.message.contains("unknown keyword 'bogus-keyword'"),
        "{first}"
    );
    assert_eq!(driver.stats().validations_failed, 1);

    assert_eq!(
        h.reloads().await,
        reloads,
        "no reload with an invalid render"
    );
    assert_eq!(
        std::fs::read_to_string(&h.managed_cfg).expect("managed"),
        managed_before
    );
    assert_eq!(
        get(h.port, "default_web").await,
        Ok(200),
        "the old config serves"
    );
    // The same render is not validated again, but still reported.
    let again = sync(&driver, &bad).await;
    assert!(matches!(again.reload, ReloadOutcome::Rejected { .. }));
    assert_eq!(driver.stats().validations_failed, 1);
}

#[tokio::test]
async fn refusals_static_balance_and_name_collision() {
    let extra = "
backend be_static
    balance static-rr
    server s1 127.0.0.1:1

backend default_taken
    server op1 127.0.0.1:2
";
    let (h, driver) = start(extra, |_| {}).await;
    let check = http_check("/health", 200, None);
    let mut fixed = BackendSpec::custom("be_static");
    fixed.insert(server("c", 3, &check));
    let taken = dynamic("default_taken", &check, &[&server("d", 4, &check)]);
    let reloads = h.reloads().await;
    let report = sync(&driver, &desired(&[&fixed, &taken])).await;

    assert!(
        report
            .refusals
            .iter()
            .any(|r| matches!(r, Refusal::StaticBalance { backend, .. } if backend == "be_static")),
        "{report:?}"
    );
    assert!(report.refusals.contains(&Refusal::NameCollision {
        backend: "default_taken".into()
    }));
    assert_eq!(report.reload, ReloadOutcome::NotNeeded);
    assert_eq!(h.reloads().await, reloads);
    assert_eq!(
        h.statuses("be_static").await.keys().collect::<Vec<_>>(),
        ["s1"]
    );
    assert_eq!(
        h.statuses("default_taken").await.keys().collect::<Vec<_>>(),
        ["op1"]
    );
}
