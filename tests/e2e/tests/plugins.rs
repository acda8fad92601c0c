//! The plugin runtime with real components: containment of hostile plugins,
//! onError policies, chains, the allow-list and the compile cache.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald::change::ChangeType;
use herald::plugin::{
    Capability, Chain, EventData, Fate, LoadError, LoadedPlugin, OnError, PluginError,
    PluginInstance, PluginSettings, Runtime, RuntimeConfig, Verdict,
};
use herald_e2e::wasm;
use serde_json::{Value, json};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

fn load(file: &str) -> Arc<LoadedPlugin> {
    runtime()
        .load(file, &wasm(file), &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn instance(file: &str, config: Value, on_error: OnError) -> PluginInstance {
    PluginInstance::new(
        load(file),
        PluginSettings {
            config: config.to_string(),
            deadline: Duration::from_millis(100),
            memory_limit: 16 << 20,
            on_error,
            ..PluginSettings::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn pod(name: &str, app: &str) -> EventData {
    EventData::new(
        ChangeType::Added,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app},
                         "managedFields": [{"manager": "kubectl"}]},
            "status": {"phase": "Running"}
        }),
        None,
    )
}

/// After a failure the same instance serves good events again, and a
/// well-behaved plugin in the same process is unaffected.
fn assert_recovers(hostile: &mut PluginInstance) {
    let out = hostile.handle(vec![pod("good-1", "web"), pod("good-2", "db")]);
    assert_eq!(out.verdicts, Ok(vec![Verdict::Pass, Verdict::Pass]));
    assert_eq!(hostile.restarts(), 1);
    let mut filter = instance(
        "label_filter",
        json!({"labels": {"app": "web"}}),
        OnError::Pass,
    );
    let out = filter.handle(vec![pod("a", "web"), pod("b", "db")]);
    assert_eq!(
        out.verdicts,
        Ok(vec![
            Verdict::Pass,
            Verdict::Drop("label app=db, want web".into())
        ])
    );
}

/// A deadline counts the CPU time a call uses, not the time it spends off a
/// core (a busy node, a pod held at its CPU limit): a call that waits three
/// times its deadline, using no CPU meanwhile, is not failed. The clock still
/// caps a call at ten times its deadline, and the error says it waited: a
/// plugin that asks to wait 20 s, either way WASI has, is stopped at the
/// cap, not after the 20 s (its chain worker would wait as long).
#[test]
fn a_deadline_counts_cpu_time_and_the_clock_caps_a_call_at_ten_times_it() {
    let clocks = [Capability::Clocks];
    let plugin = runtime()
        .load("clock_plugin", &wasm("clock_plugin"), &clocks)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut p = PluginInstance::new(
        plugin,
        PluginSettings {
            deadline: Duration::from_millis(50),
            allow: clocks.to_vec(),
            ..PluginSettings::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = p.handle(vec![pod("sleep-150", "web")]);
    assert_eq!(out.verdicts, Ok(vec![Verdict::Drop("slept 150 ms".into())]));
    assert_eq!(p.restarts(), 0);

    let out = p.handle(vec![pod("until-120", "web")]);
    assert_eq!(
        out.verdicts,
        Ok(vec![Verdict::Drop("waited 120 ms".into())])
    );
    assert_eq!(p.restarts(), 0);

    for (n, wait) in ["sleep-20000", "until-20000"].into_iter().enumerate() {
        let started = std::time::Instant::now();
        let out = p.handle(vec![pod(wait, "web")]);
        let took = started.elapsed();
        assert_eq!(
            out.verdicts,
            Err(PluginError::WallDeadline(Duration::from_millis(500))),
            "{wait}"
        );
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(10),
            "{wait}: the call took {took:?}"
        );
        assert_eq!(p.restarts(), n as u64 + 1);
        assert_eq!(
            p.handle(vec![pod("web-1", "web")]).verdicts,
            Ok(vec![Verdict::Pass])
        );
    }
}

#[test]
fn a_plugin_that_loops_is_stopped_at_its_deadline() {
    let mut p = instance(
        "hostile_plugin",
        json!({"mode": "loop", "when": "bad"}),
        OnError::Pass,
    );
    let started = std::time::Instant::now();
    let out = p.handle(vec![pod("good", "web"), pod("bad", "web")]);
    assert_eq!(
        out.verdicts,
        Err(PluginError::Deadline(Duration::from_millis(100)))
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        out.events.len(),
        2,
        "events come back even when the plugin fails"
    );
    assert_recovers(&mut p);
}

#[test]
fn a_plugin_that_allocates_without_bound_hits_its_memory_cap() {
    let mut p = instance(
        "hostile_plugin",
        json!({"mode": "alloc", "when": "bad"}),
        OnError::Pass,
    );
    let out = p.handle(vec![pod("bad", "web")]);
    match out.verdicts {
        Err(PluginError::Memory { limit, asked }) => {
            assert_eq!(limit, 16 << 20);
            assert!(asked > limit);
        }
        other => panic!("expected a memory error, got {other:?}"),
    }
    assert_recovers(&mut p);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let mut p = instance(
        "hostile_plugin",
        json!({"mode": "panic", "when": "bad", "message": "the answer is 42"}),
        OnError::Pass,
    );
    let out = p.handle(vec![pod("bad", "web")]);
    match out.verdicts {
        Err(PluginError::Panicked(msg)) => {
            assert!(msg.contains("the answer is 42"), "{msg}");
            assert!(
                msg.contains("hostile/src/lib.rs"),
                "location missing: {msg}"
            );
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_recovers(&mut p);
}

#[test]
fn a_plugin_importing_wasi_sockets_is_rejected_at_load() {
    let err = runtime()
        .load("sockets", &wasm("sockets_plugin"), &[])
        .expect_err("must be rejected");
    match &err {
        LoadError::ForbiddenImport { path, import, .. } => {
            assert!(import.starts_with("wasi:sockets/"), "{import}");
            assert!(path.ends_with("sockets_plugin.wasm"));
        }
        other => panic!("expected ForbiddenImport, got {other:?}"),
    }
    assert!(err.to_string().contains("sockets_plugin.wasm"), "{err}");
}

#[test]
fn a_component_that_is_not_a_herald_plugin_is_rejected_naming_the_export() {
    let err = runtime()
        .load("nh", &wasm("not-herald"), &[])
        .expect_err("must be rejected");
    assert!(
        matches!(&err, LoadError::MissingExport { export, .. } if export == "init"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not-herald.wasm"), "{err}");
}

#[test]
fn bytes_that_are_not_wasm_are_rejected_with_the_file_name() {
    let err = runtime()
        .load_bytes(
            "x",
            std::path::Path::new("/plugins/x.wasm"),
            b"not wasm",
            &[],
        )
        .expect_err("must be rejected");
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
    assert!(err.to_string().starts_with("/plugins/x.wasm: "), "{err}");
    // What reload and run log: one line, no parser dump (issue 15, item 13).
    let text = err.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("does not start with `\\0asm`"), "{text}");
    assert!(!text.contains("0x"), "{text}");
}

#[test]
fn a_bad_config_fails_init_with_the_serde_message() {
    let err = PluginInstance::new(
        load("label_filter"),
        PluginSettings {
            config: json!({"labelz": {}}).to_string(),
            ..PluginSettings::default()
        },
    )
    .err()
    .expect("init must fail");
    let text = err.to_string();
    assert!(matches!(err, LoadError::Init { .. }), "{err:?}");
    assert!(text.contains("unknown field `labelz`"), "{text}");
}

#[test]
fn on_error_policies_decide_the_fate_and_changes_are_rolled_back() {
    let hostile = json!({"mode": "set", "when": "bad"});
    // A modified one too: its `set` and `remove` reach the previous state,
    // and are undone there as well.
    let modified = || {
        let mut old = pod("bad-modified", "api").object.into_value();
        old["hostile"] = json!("before");
        EventData::new(
            ChangeType::Modified,
            pod("bad-modified", "web").object.into_value(),
            Some(old),
        )
    };
    let events = || vec![pod("bad", "web"), pod("fine", "web"), modified()];

    // pass: events go on exactly as they were before the failing plugin.
    let mut chain = Chain::new(vec![instance(
        "hostile_plugin",
        hostile.clone(),
        OnError::Pass,
    )]);
    let before = events();
    let out = chain.run(events());
    assert_eq!(out.len(), 3);
    for (o, b) in out.iter().zip(&before) {
        assert_eq!(o.fate, Fate::Deliver { routes: vec![] });
        assert_eq!(o.event, *b, "a failed call's changes are undone");
    }

    // drop
    let mut chain = Chain::new(vec![instance(
        "hostile_plugin",
        hostile.clone(),
        OnError::Drop,
    )]);
    let out = chain.run(events());
    assert!(
        out.iter()
            .all(|o| matches!(&o.fate, Fate::Dropped { plugin, reason }
        if plugin == "hostile_plugin" && reason.contains("panicked")))
    );

    // route to a dead-letter sink
    let mut chain = Chain::new(vec![instance(
        "hostile_plugin",
        hostile,
        OnError::Route("dead-letters".into()),
    )]);
    let out = chain.run(events());
    assert!(out.iter().all(
        |o| matches!(&o.fate, Fate::DeadLetter { sink, error: PluginError::Panicked(_), .. }
        if sink == "dead-letters")
    ));
}

#[test]
fn chain_first_drop_wins_routes_accumulate_and_changes_are_visible_downstream() {
    let mut chain = Chain::new(vec![
        instance(
            "hostile_plugin",
            json!({"mode": "route", "sinks": ["a", "b"]}),
            OnError::Pass,
        ),
        instance(
            "prune",
            json!({"remove": ["/status", "/metadata/managedFields"]}),
            OnError::Pass,
        ),
        instance(
            "hostile_plugin",
            json!({"mode": "route", "sinks": ["b", "c"]}),
            OnError::Pass,
        ),
        instance(
            "label_filter",
            json!({"labels": {"app": "web"}}),
            OnError::Pass,
        ),
        // Never sees the dropped event: would route it to "z".
        instance(
            "hostile_plugin",
            json!({"mode": "route", "sinks": ["z"]}),
            OnError::Pass,
        ),
    ]);
    let out = chain.run(vec![pod("w", "web"), pod("d", "db")]);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].fate,
        Fate::Deliver {
            routes: vec!["a".into(), "b".into(), "c".into(), "z".into()]
        }
    );
    assert_eq!(
        out[0].event.object.pointer("/status"),
        None,
        "prune applied"
    );
    assert_eq!(out[0].event.object.pointer("/metadata/managedFields"), None);
    assert_eq!(
        out[1].fate,
        Fate::Dropped {
            plugin: "label_filter".into(),
            reason: "label app=db, want web".into()
        }
    );

    // A removal by one plugin is what the next one reads.
    let mut chain = Chain::new(vec![
        instance(
            "prune",
            json!({"remove": ["/metadata/labels"]}),
            OnError::Pass,
        ),
        instance(
            "label_filter",
            json!({"labels": {"app": "web"}}),
            OnError::Pass,
        ),
    ]);
    let out = chain.run(vec![pod("w", "web")]);
    assert_eq!(
        out[0].fate,
        Fate::Dropped {
            plugin: "label_filter".into(),
            reason: "label app missing, want web".into()
        }
    );
}

/// A Secret rotation that also deletes a key, drops the last-applied
/// annotation and a container.
fn rotation() -> (Value, Value) {
    let secret = |data: Value, annotations: Value, containers: Value| {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop", "annotations": annotations,
                         "managedFields": [{"manager": "kubectl"}]},
            "data": data,
            "spec": {"containers": containers}
        })
    };
    let old = secret(
        json!({"password": "aHVudGVyMi1vbGQtdmFsdWU=", "legacy": "bGVnYWN5"}),
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{\"password\":\"x\"}"}),
        json!([{"name": "a", "args": ["--token=old"]}, {"name": "b", "args": ["--key=gone"]}]),
    );
    let new = secret(
        json!({"password": "czNjcmV0LW5ldy12YWx1ZQ=="}),
        json!({}),
        json!([{"name": "a", "args": ["--token=new"]}]),
    );
    (old, new)
}

#[test]
fn prune_hides_the_previous_state_in_the_host_exactly_as_in_the_sdk_test_backend() {
    let config = json!({
        "remove": ["/metadata/managedFields"],
        "redact": ["spec.containers.*.args"],
        "secrets": true
    });
    let (old, new) = rotation();
    let mut host = instance("prune", config.clone(), OnError::Pass);
    let out = host.handle(vec![EventData::new(
        ChangeType::Modified,
        new.clone(),
        Some(old.clone()),
    )]);
    assert_eq!(out.verdicts, Ok(vec![Verdict::Pass]));
    let got = &out.events[0];
    let want_old = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "namespace": "shop", "annotations":
            {"kubectl.kubernetes.io/last-applied-configuration": "<redacted>"}},
        "data": {"password": "<redacted>", "legacy": "<redacted>"},
        "spec": {"containers": [{"name": "a", "args": "<redacted>"},
                                {"name": "b", "args": "<redacted>"}]}
    });
    assert_eq!(got.old.as_deref(), Some(&want_old));
    assert_eq!(got.object["data"], json!({"password": "<redacted>"}));
    assert_eq!(got.object["spec"]["containers"][0]["args"], "<redacted>");

    // The SDK's native backend, which plugin unit tests use, agrees.
    let mut native = herald_plugin_sdk::testing::init::<prune::Prune>(&config.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut e = herald_plugin_sdk::TestEvent::modified(old, new);
    herald_plugin_sdk::testing::run(&mut native, &mut e);
    assert_eq!(e.object, got.object);
    assert_eq!(e.old.as_ref(), got.old.as_deref());
}

#[test]
fn compiled_components_are_cached_on_disk_by_content_and_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let first = rt.load("prune", &wasm("prune"), &[]).expect("load");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read cache")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with(first.hash()) && name.ends_with(".cwasm"),
        "{name}"
    );

    // A second load uses the artifact; a corrupt artifact is recompiled.
    let again = rt.load("prune", &wasm("prune"), &[]).expect("load cached");
    assert_eq!(again.hash(), first.hash());
    std::fs::write(&files[0], b"garbage").expect("corrupt");
    let third = rt.load("prune", &wasm("prune"), &[]).expect("recompile");
    let settings = PluginSettings {
        config: json!({"remove": ["/status"]}).to_string(),
        ..PluginSettings::default()
    };
    let mut p = PluginInstance::new(third, settings).expect("init");
    assert_eq!(
        p.handle(vec![pod("x", "web")]).verdicts,
        Ok(vec![Verdict::Pass])
    );
}

/// Issue 15, item 16: the object's identity is read-only to plugins, and an
/// invalid escape is refused, in the host exactly as in the SDK's test
/// backend: same refusal, same object after.
#[test]
fn identity_fields_are_read_only_in_the_host_and_the_sdk_alike() {
    let object = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "web"}},
        "spec": {"x": 1}
    });
    let cases = [
        ("set-at", "", r#"{"kind": "Other"}"#),
        ("set-at", "/apiVersion", r#""v2""#),
        ("set-at", "/kind", r#""Secret""#),
        ("set-at", "/metadata", "{}"),
        ("set-at", "/metadata/name", r#""other""#),
        ("set-at", "/metadata/namespace", r#""kube-system""#),
        ("set-at", "/metadata/uid", r#""u-2""#),
        ("set-at", "/metadata/~2", "1"),
        ("set-at", "/metadata/labels/tier", r#""db""#),
        ("remove-at", "", ""),
        ("remove-at", "/kind", ""),
        ("remove-at", "/metadata", ""),
        ("remove-at", "/metadata/uid", ""),
        ("remove-at", "/metadata/labels", ""),
    ];
    for (mode, pointer, value) in cases {
        let mut host = instance(
            "hostile_plugin",
            json!({"mode": mode, "pointer": pointer, "value": value}),
            OnError::Pass,
        );
        let out = host.handle(vec![EventData::new(
            ChangeType::Modified,
            object.clone(),
            Some(object.clone()),
        )]);
        let Ok(verdicts) = out.verdicts else {
            panic!("{mode} {pointer}: {:?}", out.verdicts)
        };
        // What the hostile plugin does, on the SDK's in-memory event.
        let mut native = herald_plugin_sdk::TestEvent::modified(object.clone(), object.clone());
        let mut event = native.as_event();
        let want = match mode {
            "set-at" => match event.set_json(pointer, value) {
                Ok(()) => "set".to_string(),
                Err(e) => format!("set refused: {e}"),
            },
            _ => match event.remove(&[pointer]) {
                Ok(n) => format!("removed {n}"),
                Err(e) => format!("remove refused: {e}"),
            },
        };
        assert_eq!(
            verdicts,
            vec![Verdict::Drop(want.clone())],
            "{mode} {pointer}"
        );
        assert_eq!(out.events[0].object, native.object, "{mode} {pointer}");
        assert_eq!(
            out.events[0].old.as_deref(),
            native.old.as_ref(),
            "{mode} {pointer}"
        );
        let refused = want.contains("refused");
        let allowed = pointer.starts_with("/metadata/labels");
        assert_eq!(refused, !allowed, "{mode} {pointer}: {want}");
        if refused {
            assert_eq!(out.events[0].object, object, "{mode} {pointer}: unchanged");
        }
        if pointer == "/metadata/~2" {
            assert!(
                want.contains("`~` must be followed by `0` or `1`"),
                "{want}"
            );
        } else if refused {
            assert!(want.contains("is read-only"), "{want}");
        }
    }
}

/// Issue 15, item 16: `handle(&mut self)`: a plugin keeps state between
/// events and calls without interior mutability.
#[test]
fn a_plugin_keeps_state_across_events_and_calls() {
    let mut p = instance("hostile_plugin", json!({"mode": "count"}), OnError::Pass);
    let out = p.handle(vec![pod("a", "web"), pod("b", "web")]);
    assert_eq!(
        out.verdicts,
        Ok(vec![
            Verdict::Drop("event 1".into()),
            Verdict::Drop("event 2".into())
        ])
    );
    let out = p.handle(vec![pod("c", "web")]);
    assert_eq!(out.verdicts, Ok(vec![Verdict::Drop("event 3".into())]));
}

/// Components built against the WIT before `set-old` was added (kept in
/// tests/plugins/fixtures/, see its README) still load and run: the host
/// only ever adds to what it offers.
#[test]
fn plugins_built_against_the_previous_wit_still_load_and_run() {
    let fixture = |name: &str| {
        herald_e2e::workspace_root()
            .join("tests/plugins/fixtures")
            .join(name)
    };
    let load_fixture = |name: &str, config: Value| {
        let plugin = runtime()
            .load(name, &fixture(name), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        PluginInstance::new(
            plugin,
            PluginSettings {
                config: config.to_string(),
                ..PluginSettings::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };

    let mut lf = load_fixture(
        "label_filter-wit-0.1.0-before-set-old.wasm",
        json!({"labels": {"app": "web"}}),
    );
    let out = lf.handle(vec![pod("a", "web"), pod("b", "db")]);
    assert_eq!(
        out.verdicts,
        Ok(vec![
            Verdict::Pass,
            Verdict::Drop("label app=db, want web".into())
        ])
    );

    // remove and set under the old ABI, mirrored to the previous state by
    // today's host.
    let mut prune = load_fixture(
        "prune-wit-0.1.0-before-set-old.wasm",
        json!({"remove": ["/status"], "redact": ["/data/password"]}),
    );
    let secret = |password: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "s", "namespace": "n"},
               "data": {"password": password}, "status": {"x": 1}})
    };
    let out = prune.handle(vec![EventData::new(
        ChangeType::Modified,
        secret("bmV3"),
        Some(secret("b2xk")),
    )]);
    assert_eq!(out.verdicts, Ok(vec![Verdict::Pass]));
    let want = json!({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "s", "namespace": "n"},
                      "data": {"password": "<redacted>"}});
    assert_eq!(out.events[0].object, want);
    assert_eq!(out.events[0].old.as_deref(), Some(&want));

    // What they import is the 0.1.0 interface without set-old.
    let inspection = runtime()
        .inspect(&fixture("prune-wit-0.1.0-before-set-old.wasm"))
        .expect("inspect");
    assert_eq!(inspection.version.as_deref(), Some("0.1.0"));
    assert!(inspection.host_functions.contains(&"event.set".to_string()));
    assert!(
        !inspection
            .host_functions
            .contains(&"event.set-old".to_string())
    );
    assert!(inspection.policy.loads);
}
