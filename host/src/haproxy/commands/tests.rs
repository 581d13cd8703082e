use super::*;
use crate::plan::ServerSpec;
use std::net::IpAddr;

fn spec(check: bool) -> ServerSpec {
    let mut s = ServerSpec::new("_nomad-a", "10.0.0.1".parse::<IpAddr>().unwrap(), 8080);
    s.weight = 10;
    if check {
        s.check_args = [kw("check"), kw("inter"), Token::millis(500)].into();
    }
    s
}

fn change(action: ServerAction) -> ServerChange {
    ServerChange {
        backend: "default_web".into(),
        server: "_nomad-a".into(),
        action,
    }
}

fn texts(change: &ServerChange, ctx: Context<'_>) -> Vec<String> {
    for_change(change, ctx)
        .unwrap()
        .into_iter()
        .map(|c| c.text)
        .collect()
}

#[test]
fn add_with_check_takes_no_traffic_before_first_passing_check() {
    let got = texts(&change(ServerAction::Add(spec(true))), Context::default());
    assert_eq!(
        got,
        [
            "add server default_web/_nomad-a 10.0.0.1:8080 weight 0 check inter 500ms",
            "enable health default_web/_nomad-a",
            "set server default_web/_nomad-a state ready",
            "set server default_web/_nomad-a health down",
            "set server default_web/_nomad-a weight 10",
        ]
    );
}

fn caps(version: &str) -> Capabilities {
    let info = format!("Version: {version}\n");
    crate::haproxy::version::Version::from_show_info(&info)
        .unwrap()
        .capabilities()
}

#[test]
fn add_with_init_state_down_saves_the_quiet_steps() {
    let ctx = Context {
        caps: caps("3.2.0"),
        ..Context::default()
    };
    let got = texts(&change(ServerAction::Add(spec(true))), ctx);
    assert_eq!(
        got,
        [
            "add server default_web/_nomad-a 10.0.0.1:8080 weight 10 check inter 500ms init-state down",
            "enable health default_web/_nomad-a",
            "set server default_web/_nomad-a state ready",
        ]
    );
    let old = Context {
        caps: caps("3.0.0"),
        ..Context::default()
    };
    assert_eq!(texts(&change(ServerAction::Add(spec(true))), old).len(), 5);
    let restore = Context {
        restore_up: true,
        ..ctx
    };
    let got = texts(&change(ServerAction::Add(spec(true))), restore);
    assert!(!got[0].contains("init-state"), "{got:?}");
}

#[test]
fn removal_waits_for_sessions_to_let_go_where_haproxy_can() {
    let ctx = Context {
        caps: caps("3.0.0"),
        ..Context::default()
    };
    let cmds = for_change(&change(ServerAction::Remove), ctx).unwrap();
    let got: Vec<&str> = cmds.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        got,
        [
            "set server default_web/_nomad-a state maint",
            "shutdown sessions server default_web/_nomad-a",
            "wait 500 srv-removable default_web/_nomad-a",
            "del server default_web/_nomad-a",
        ]
    );
    assert_eq!(cmds[2].holds_for(), REMOVABLE_WAIT);
    assert_eq!(cmds[3].holds_for(), Duration::ZERO);
    let c = change(ServerAction::Remove);
    let gone = [
        "No such server.",
        "No such server.",
        "Failed.",
        "No such server.",
    ];
    let gone = gone.map(String::from);
    assert_eq!(judge(&c, &cmds, &gone), Verdict::Applied);
    let held = [
        "",
        "",
        "Failed.",
        "Server still has connections attached to it, cannot remove it.",
    ];
    assert!(matches!(
        judge(&c, &cmds, &held.map(String::from)),
        Verdict::Busy { .. }
    ));
    let up = [
        "",
        "",
        "Done.",
        "Only servers in maintenance mode can be deleted.",
    ];
    assert!(matches!(
        judge(&c, &cmds, &up.map(String::from)),
        Verdict::Failed { .. }
    ));
}

#[test]
fn add_without_check_serves_at_once_and_restore_skips_the_wait() {
    let got = texts(&change(ServerAction::Add(spec(false))), Context::default());
    assert_eq!(
        got,
        [
            "add server default_web/_nomad-a 10.0.0.1:8080 weight 10",
            "set server default_web/_nomad-a state ready",
        ]
    );
    let ctx = Context {
        restore_up: true,
        ..Context::default()
    };
    let got = texts(&change(ServerAction::Add(spec(true))), ctx);
    assert_eq!(got.len(), 3);
    assert!(got[0].contains("weight 10 check"), "{got:?}");
}

#[test]
fn map_entries_follow_add_set_maps_and_remove() {
    let hosts = Token::restricted("map", "/run/hosts.map", "/.", 100).unwrap();
    let uris = Token::restricted("map", "/run/uris.map", "/.", 100).unwrap();
    let ctx = Context {
        host_map: Some(&hosts),
        uri_map: Some(&uris),
        ..Context::default()
    };
    let mut s = spec(true);
    s.host_entry = true;
    s.uri_entry = Some(Token::word("uri", "/ready?x=1", 64).unwrap());
    s.addr = "::1".parse().unwrap();
    let got = texts(&change(ServerAction::Add(s.clone())), ctx);
    assert_eq!(
        got[..4],
        [
            "del map /run/hosts.map _nomad-a",
            "add map /run/hosts.map _nomad-a [::1]:8080",
            "del map /run/uris.map _nomad-a",
            "add map /run/uris.map _nomad-a /ready?x=1",
        ]
    );
    assert!(got[4].starts_with("add server default_web/_nomad-a [::1]:8080 "));
    // A check on another port: the Host is that port's, as Nomad sends it.
    let mut other = s.clone();
    other.check_port = Some(9090);
    let got = texts(&change(ServerAction::SetMaps(other)), ctx);
    assert_eq!(got[1], "add map /run/hosts.map _nomad-a [::1]:9090");
    let got = texts(&change(ServerAction::Readdress(s.clone())), ctx);
    assert_eq!(got, ["set server default_web/_nomad-a addr ::1 port 8080"]);
    s.uri_entry = None;
    let got = texts(&change(ServerAction::SetMaps(s)), ctx);
    assert_eq!(got.len(), 3, "the URI entry is only deleted: {got:?}");
    let got = texts(&change(ServerAction::Remove), ctx);
    assert_eq!(
        got,
        [
            "set server default_web/_nomad-a state maint",
            "shutdown sessions server default_web/_nomad-a",
            "del server default_web/_nomad-a",
            "del map /run/hosts.map _nomad-a",
            "del map /run/uris.map _nomad-a",
        ]
    );
}

#[test]
fn keys_held_twice_are_deleted_twice() {
    let hosts = Token::restricted("map", "/run/hosts.map", "/.", 100).unwrap();
    let uris = Token::restricted("map", "/run/uris.map", "/.", 100).unwrap();
    let ctx = Context {
        host_map: Some(&hosts),
        uri_map: Some(&uris),
        held: Held { host: 2, uri: 3 },
        ..Context::default()
    };
    let mut s = spec(true);
    s.host_entry = true;
    let got = texts(&change(ServerAction::SetMaps(s.clone())), ctx);
    assert_eq!(
        got,
        [
            "del map /run/hosts.map _nomad-a",
            "del map /run/hosts.map _nomad-a",
            "add map /run/hosts.map _nomad-a 10.0.0.1:8080",
            "del map /run/uris.map _nomad-a",
            "del map /run/uris.map _nomad-a",
            "del map /run/uris.map _nomad-a",
        ]
    );
    let got = texts(&change(ServerAction::Remove), ctx);
    assert_eq!(got.iter().filter(|c| c.starts_with("del map")).count(), 5);
    // A new server with a stale key: the key goes, even without an entry.
    s.host_entry = false;
    let got = texts(&change(ServerAction::Add(s.clone())), ctx);
    assert_eq!(got.iter().filter(|c| c.starts_with("del map")).count(), 5);
    assert!(!got.iter().any(|c| c.starts_with("add map")), "{got:?}");
    // A Replace re-adds after deleting: no second round of deletes.
    let got = texts(&change(ServerAction::Replace(s)), ctx);
    assert_eq!(got.iter().filter(|c| c.starts_with("del map")).count(), 5);
}

#[test]
fn hostile_names_never_reach_the_socket() {
    for bad in ["a;shutdown sessions server x/y", "a\nx", "a b", "a/b"] {
        let mut c = change(ServerAction::Drain);
        c.server = bad.into();
        assert!(for_change(&c, Context::default()).is_err(), "{bad:?}");
        let mut c = change(ServerAction::Drain);
        c.backend = bad.into();
        assert!(for_change(&c, Context::default()).is_err(), "{bad:?}");
    }
}

proptest::proptest! {
    #[test]
    fn no_name_puts_a_separator_on_the_socket(
        backend in "(?s).{0,40}",
        server in "(?s)[a-z_;\\n -]{0,20}",
        port in 0u16..,
    ) {
        let mut s = spec(true);
        s.name = server.clone();
        s.port = port;
        s.host_entry = true;
        let map = Token::restricted("map", "/run/hosts.map", "/.", 100).unwrap();
        let ctx = Context { host_map: Some(&map), uri_map: Some(&map), ..Context::default() };
        for action in [ServerAction::Add(s.clone()), ServerAction::Readdress(s), ServerAction::Remove] {
            let c = ServerChange { backend: backend.clone(), server: server.clone(), action };
            if let Ok(cmds) = for_change(&c, ctx) {
                for cmd in cmds {
                    proptest::prop_assert!(!cmd.text.contains([';', '\n', '\r', '#']), "{}", cmd.text);
                }
            }
        }
    }
}

#[test]
fn replies_are_split_per_command() {
    // Captured from HAProxy 2.6.12 in prompt mode.
    let output = "\n> \n> Already exists a server with the same name in backend.\n\n> 1\n# be_id be_name\n3 be 1 s1\n\n> ";
    let replies = split_replies(output, 3);
    assert_eq!(
        replies,
        [
            "",
            "Already exists a server with the same name in backend.",
            "1\n# be_id be_name\n3 be 1 s1",
        ]
    );
    assert_eq!(split_replies("\n> \n> ", 3).len(), 1, "cut short");
    assert_eq!(frame(["a", "b"]), "prompt\na\nb\nquit\n");
}

#[test]
fn judging_replies() {
    let c = change(ServerAction::Add(spec(true)));
    let cmds = for_change(&c, Context::default()).unwrap();
    let ok: Vec<String> = ["New server registered.\n", "", "", "", ""]
        .map(String::from)
        .to_vec();
    assert_eq!(judge(&c, &cmds, &ok), Verdict::Applied);
    let mut refused = ok.clone();
    refused[0] = "Backend must use a dynamic load balancing to support dynamic servers.\n".into();
    assert!(matches!(
        judge(&c, &cmds, &refused),
        Verdict::Refused(Refusal::StaticBalance { .. })
    ));
    // 3.4's wording, for the same refusal.
    refused[0] = "Backend does not support dynamic servers : backend 'default_web' uses a non dynamic load balancing method.\n".into();
    assert!(matches!(
        judge(&c, &cmds, &refused),
        Verdict::Refused(Refusal::StaticBalance { .. })
    ));
    // Only `add server` can be refused for the balance algorithm.
    let w = change(ServerAction::SetWeight(3));
    let set = for_change(&w, Context::default()).unwrap();
    assert!(matches!(
        judge(&w, &set, &refused[..1]),
        Verdict::Failed { .. }
    ));
    let mut failed = ok.clone();
    failed[0] = "Already exists a server with the same name in backend.\n".into();
    assert!(matches!(judge(&c, &cmds, &failed), Verdict::Failed { .. }));
    assert!(matches!(judge(&c, &cmds, &ok[..2]), Verdict::Failed { .. }));

    let r = change(ServerAction::Remove);
    let cmds = for_change(&r, Context::default()).unwrap();
    let gone: Vec<String> = vec!["No such server.\n".into(); 3];
    assert_eq!(judge(&r, &cmds, &gone), Verdict::Applied, "already removed");
    let busy: Vec<String> = vec![
        "".into(),
        "".into(),
        "Server still has connections attached to it, cannot remove it.".into(),
    ];
    assert!(matches!(judge(&r, &cmds, &busy), Verdict::Busy { .. }));
}
