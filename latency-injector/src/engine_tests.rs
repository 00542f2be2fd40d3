//! Table tests of the engine choice.

use super::*;

fn device(name: &str, root: Root) -> Device {
    Device {
        name: name.into(),
        root,
    }
}

fn default_root() -> Root {
    Root::Default {
        kind: "noqueue".into(),
    }
}

fn facts(netem: Kind, devices: std::result::Result<Vec<Device>, String>) -> Facts {
    Facts {
        netem,
        prio: Kind::Available,
        devices,
    }
}

fn good() -> Facts {
    facts(Kind::Available, Ok(vec![device("eth0", default_root())]))
}

const TCP: Shape = Shape {
    proxy_only: None,
    netem_only: false,
};
const EVERYTHING: Shape = Shape {
    proxy_only: None,
    netem_only: true,
};
const HTTP: Shape = Shape {
    proxy_only: Some("HTTP endpoint matching (--endpoint, --method, --http)"),
    netem_only: false,
};

#[test]
fn auto_picks_netem_only_where_the_kernel_and_the_interfaces_allow() {
    let foreign = Root::Foreign {
        kind: "htb".into(),
        handle: "1:".into(),
    };
    let table: Vec<(Shape, Facts, Engine, &str)> = vec![
        (
            TCP,
            good(),
            Engine::Netem,
            "sch_netem and eth0 keep their default",
        ),
        (EVERYTHING, good(), Engine::Netem, "sch_netem"),
        (HTTP, good(), Engine::Proxy, "HTTP endpoint matching"),
        (
            TCP,
            facts(Kind::Missing, Ok(vec![device("eth0", default_root())])),
            Engine::Proxy,
            "no sch_netem",
        ),
        (
            TCP,
            facts(
                Kind::Available,
                Ok(vec![
                    device("eth0", default_root()),
                    device("eth1", foreign),
                ]),
            ),
            Engine::Proxy,
            "eth1 has a root qdisc that is not ours (htb 1:)",
        ),
        (
            TCP,
            facts(
                Kind::Available,
                Ok(vec![device("eth0", Root::Ours { major: 0x4c01 })]),
            ),
            Engine::Proxy,
            "latency-injector netem setup already",
        ),
        (
            TCP,
            facts(
                Kind::Unknown("no CAP_NET_ADMIN".into()),
                Ok(vec![device("eth0", default_root())]),
            ),
            Engine::Proxy,
            "cannot tell whether the kernel has sch_netem: no CAP_NET_ADMIN",
        ),
        (
            TCP,
            facts(
                Kind::Available,
                Err("no route to target 203.0.113.9".into()),
            ),
            Engine::Proxy,
            "no route",
        ),
    ];
    for (shape, facts, engine, reason) in table {
        let choice = decide(EngineFlag::Auto, shape, || facts.clone()).unwrap();
        assert_eq!(choice.engine, engine, "{facts:?}: {}", choice.reason);
        assert!(choice.reason.starts_with("auto: "), "{}", choice.reason);
        assert!(choice.reason.contains(reason), "{}", choice.reason);
        if engine == Engine::Netem {
            assert_eq!(choice.devices, ["eth0"]);
        }
    }
}

#[test]
fn a_missing_prio_is_a_reason_too() {
    let mut facts = good();
    facts.prio = Kind::Missing;
    let choice = decide(EngineFlag::Auto, TCP, || facts).unwrap();
    assert_eq!(choice.engine, Engine::Proxy);
    assert!(choice.reason.contains("sch_prio"), "{}", choice.reason);
}

/// The error a run that only netem can serve ends with: (kind, exit code, message).
fn refusal(result: Result<Choice>) -> (&'static str, u8, String) {
    match result {
        Err(e) => (e.kind(), e.exit().code(), e.to_string()),
        Ok(choice) => panic!("expected an error, got {choice:?}"),
    }
}

fn foreign_netem() -> Facts {
    facts(
        Kind::Available,
        Ok(vec![device(
            "eth0",
            Root::Foreign {
                kind: "netem".into(),
                handle: "8001:".into(),
            },
        )]),
    )
}

#[test]
fn without_a_target_auto_ends_where_netem_cannot_run() {
    let no_netem = facts(Kind::Missing, Ok(vec![device("eth0", default_root())]));
    let (kind, code, message) = refusal(decide(EngineFlag::Auto, EVERYTHING, || no_netem));
    assert_eq!((kind, code), ("bad-input", 2), "{message}");
    assert!(message.contains("every outgoing connection"), "{message}");
    assert!(message.contains("no sch_netem"), "{message}");
    let (kind, code, message) = refusal(decide(EngineFlag::Auto, EVERYTHING, foreign_netem));
    assert_eq!((kind, code), ("refused", 3), "{message}");
    assert!(message.contains("not ours (netem 8001:)"), "{message}");
    let chosen = decide(EngineFlag::Auto, EVERYTHING, good).unwrap();
    assert_eq!(chosen.engine, Engine::Netem);
}

#[test]
fn engine_netem_ends_with_the_reason_and_never_falls_back() {
    let no_route = facts(
        Kind::Available,
        Err("no route to target 203.0.113.9".into()),
    );
    for (facts, reason, kind, code) in [
        (
            facts(Kind::Missing, Ok(vec![device("eth0", default_root())])),
            "no sch_netem",
            "bad-input",
            2,
        ),
        (
            foreign_netem(),
            "eth0 has a root qdisc that is not ours (netem 8001:)",
            "refused",
            3,
        ),
        (
            facts(
                Kind::Available,
                Ok(vec![device("eth0", Root::Ours { major: 0x4c01 })]),
            ),
            "latency-injector netem setup already",
            "refused",
            3,
        ),
        (
            no_route,
            "no route to target 203.0.113.9",
            "precondition",
            1,
        ),
    ] {
        let (got_kind, got_code, message) = refusal(decide(EngineFlag::Netem, TCP, || facts));
        assert_eq!((got_kind, got_code), (kind, code), "{message}");
        assert!(message.contains("--engine netem: "), "{message}");
        assert!(message.contains(reason), "{message}");
    }
    let chosen = decide(EngineFlag::Netem, TCP, good).unwrap();
    assert_eq!((chosen.engine, chosen.warning), (Engine::Netem, None));
}

#[test]
fn engine_netem_goes_ahead_with_a_warning_when_the_kernel_cannot_be_asked() {
    let unknown = facts(
        Kind::Unknown("no CAP_NET_ADMIN".into()),
        Ok(vec![device("eth0", default_root())]),
    );
    let chosen = decide(EngineFlag::Netem, TCP, || unknown).unwrap();
    assert_eq!(chosen.engine, Engine::Netem);
    assert!(
        chosen
            .warning
            .is_some_and(|w| w.contains("no CAP_NET_ADMIN"))
    );
}

#[test]
fn engine_proxy_reads_nothing() {
    let chosen = decide(EngineFlag::Proxy, TCP, || panic!("no facts needed")).unwrap();
    assert_eq!(chosen.engine, Engine::Proxy);
    let http = decide(EngineFlag::Auto, HTTP, || panic!("no facts needed")).unwrap();
    assert_eq!(http.engine, Engine::Proxy);
}
