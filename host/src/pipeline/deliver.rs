//! The last stage: where an outcome goes ([`Routes`]), and handing it over
//! ([`Delivery`]): the notification is built once, written with the object's
//! record to every target's outbox in one transaction (with a state dir), and
//! queued at the sinks, which only deliver.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::json;

use crate::decisions::{Decision, Decisions, LeftOut, SinkDelivery, fate};
use crate::plugin::Fate;
use crate::sink::{Notification, Outbox, Receipt, SinkConfig, Sinks, notification::Durable};
use crate::state::{Op, StateStore};

use super::Outcome;
use super::outbox::StateOutbox;

/// Where notifications go, from the config: the sinks named by the chain's
/// route verdicts, else the watch's `sinks`, else every sink that is not some
/// sink's dead letter; then each sink's `namespaces` filter.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Every sink, in config order.
    order: Vec<String>,
    /// The sinks that get what nothing else routes: all but dead letters.
    defaults: Vec<String>,
    /// No sinks configured: the implicit `log` sink gets everything.
    implicit: bool,
    /// Each sink's `namespaces` (empty: all).
    namespaces: BTreeMap<String, Vec<String>>,
    /// Each watch's `sinks` (empty: the defaults).
    watch_sinks: BTreeMap<String, Vec<String>>,
    /// The config's `deadLetter`: where a notification also goes when a
    /// route verdict names a sink that does not exist.
    dead_letter: Option<String>,
}

impl Routes {
    /// The routes of `configs` (the `sinks:` list) and each watch's default
    /// sinks, keyed by watch id.
    pub fn new(configs: &[SinkConfig], watch_sinks: BTreeMap<String, Vec<String>>) -> Self {
        let (configs, implicit) = crate::sink::effective(configs);
        let dead_letters: Vec<&String> = configs
            .iter()
            .filter_map(|c| c.common.dead_letter.as_ref())
            .collect();
        Routes {
            order: configs.iter().map(|c| c.common.name.clone()).collect(),
            defaults: configs
                .iter()
                .filter(|c| !dead_letters.contains(&&c.common.name))
                .map(|c| c.common.name.clone())
                .collect(),
            implicit,
            namespaces: configs
                .iter()
                .map(|c| (c.common.name.clone(), c.common.namespaces.clone()))
                .collect(),
            watch_sinks,
            dead_letter: None,
        }
    }

    /// Route verdicts naming a sink that does not exist are dead-lettered to
    /// `sink` (the config's `deadLetter`).
    pub fn with_dead_letter(mut self, sink: Option<String>) -> Self {
        self.dead_letter = sink;
        self
    }

    /// The route verdicts among `routes` that name no sink, each once.
    pub fn unknown<'a>(&self, routes: &'a [String]) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        if self.implicit {
            return out;
        }
        for r in routes {
            if !self.namespaces.contains_key(r) && !out.contains(&r.as_str()) {
                out.push(r);
            }
        }
        out
    }

    /// The sinks an outcome of `watch` in `namespace` goes to, given the
    /// chain's `routes`; each once, in order.
    pub fn targets(
        &self,
        watch: &str,
        namespace: Option<&str>,
        routes: &[String],
        name: &str,
    ) -> Vec<String> {
        let wanted = self.wanted(watch, routes);
        let mut chosen: Vec<String> = Vec::with_capacity(wanted.len());
        for sink in wanted {
            let Some(only) = self.namespaces.get(sink) else {
                match &self.dead_letter {
                    Some(dl) => tracing::error!(
                        sink,
                        name,
                        watch,
                        dead_letter = dl.as_str(),
                        "a route names a sink that does not exist; the notification goes to the dead letter"
                    ),
                    None => tracing::error!(
                        sink,
                        name,
                        watch,
                        "a route names a sink that does not exist; notification not delivered there (set deadLetter: <sink> to keep such notifications)"
                    ),
                }
                continue;
            };
            if let Some(ns) = namespace
                && !only.is_empty()
                && !only.iter().any(|x| x == ns)
            {
                continue;
            }
            if !chosen.contains(sink) {
                chosen.push(sink.clone());
            }
        }
        chosen
    }

    /// The sinks wanted before the namespace filter: the route verdicts,
    /// else the watch's `sinks`, else the defaults.
    fn wanted<'a>(&'a self, watch: &str, routes: &'a [String]) -> &'a [String] {
        if self.implicit {
            &self.order
        } else if !routes.is_empty() {
            routes
        } else {
            match self.watch_sinks.get(watch) {
                Some(s) if !s.is_empty() => s,
                _ => &self.defaults,
            }
        }
    }

    /// The sinks [`Routes::targets`] leaves out, each with why: not a sink,
    /// or its `namespaces` do not hold `namespace`.
    pub fn left_out(
        &self,
        watch: &str,
        namespace: Option<&str>,
        routes: &[String],
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for sink in self.wanted(watch, routes) {
            let why = match (self.namespaces.get(sink), namespace) {
                (None, _) => "no sink has this name".to_string(),
                (Some(only), Some(ns)) if !only.is_empty() && !only.iter().any(|x| x == ns) => {
                    format!("namespace {ns:?} is not in the sink's namespaces {only:?}")
                }
                _ => continue,
            };
            if !out.iter().any(|(s, _)| s == sink) {
                out.push((sink.clone(), why));
            }
        }
        out
    }

    /// Where the sinks come from for this outcome, in words.
    pub fn source_of(&self, watch: &str, routes: &[String]) -> &'static str {
        if self.implicit {
            "no sinks are configured: the implicit log sink"
        } else if !routes.is_empty() {
            "the plugins' route verdicts"
        } else if self.watch_sinks.get(watch).is_some_and(|s| !s.is_empty()) {
            "the watch's sinks"
        } else {
            "every sink that is not a dead letter (no route verdict, no watch sinks)"
        }
    }
}

/// What hands outcomes over: to the sinks directly, or through leader
/// election's gate, which holds a receipt per notification until every sink
/// settled it.
pub trait Deliver: Send + 'static {
    /// Routes, records and queues one outcome; `guard` is dropped once every
    /// sink is done with it. Returns how many sinks took it.
    fn deliver(&self, o: Outcome, guard: Option<Arc<dyn Any + Send + Sync>>) -> usize;
    /// Records an emitted state without notifying (a standby replica).
    fn record_only(&self, record: Vec<Op>);
}

/// Hands outcomes to the sinks. Cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    sinks: Sinks,
    routes: Arc<RwLock<Routes>>,
    state: Option<(Arc<StateStore>, Arc<dyn Outbox>)>,
    decisions: Option<Decisions>,
}

impl Delivery {
    /// Delivery to `sinks` along `routes`, through the outbox of `store` when
    /// there is a state dir.
    pub fn new(sinks: Sinks, routes: Routes, store: Option<Arc<StateStore>>) -> Self {
        Delivery {
            sinks,
            routes: Arc::new(RwLock::new(routes)),
            state: store.map(|s| {
                let outbox: Arc<dyn Outbox> = Arc::new(StateOutbox::new(s.clone()));
                (s, outbox)
            }),
            decisions: None,
        }
    }

    /// Keeps what is decided about each outcome in `decisions`, and has the
    /// sinks report each delivery there (built with the same ring in
    /// [`crate::sink::SinkDeps::log`]).
    pub fn with_decisions(mut self, decisions: Decisions) -> Self {
        self.decisions = Some(decisions);
        self
    }

    /// New routes (a reload, an admin-added watch), for the next outcome on.
    pub(crate) fn set_routes(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    /// The record and outbox entries in one transaction; the handle lanes
    /// wait on before they deliver.
    fn commit(&self, record: Vec<Op>, mut ops: Vec<Op>) -> Option<Durable> {
        use futures::FutureExt;
        let (store, outbox) = self.state.as_ref()?;
        ops.extend(record);
        if ops.is_empty() {
            return None;
        }
        let ticket = store.submit(ops);
        let ready = async move { ticket.await.map_err(crate::sink::OutboxError::new) }
            .boxed()
            .shared();
        Some(Durable {
            outbox: outbox.clone(),
            ready,
        })
    }
}

/// An outcome addressed: the notification and the sinks it goes to, or
/// the plugin that dropped it.
#[derive(Debug)]
pub enum Addressed {
    /// Dropped by a plugin (or its `onError: drop`).
    Dropped {
        /// The plugin.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// For these sinks (none: routed nowhere).
    Notify {
        /// The sinks, in order.
        targets: Vec<String>,
        /// What each of them receives.
        notification: Box<Notification>,
        /// A route verdict named a sink that does not exist: this dead
        /// letter sink (the config's `deadLetter`) gets the notification too,
        /// with why, unless it is among `targets`.
        misrouted: Option<(String, serde_json::Value)>,
    },
}

/// Builds the notification of `o` (its `record` left out) and routes it:
/// what [`Delivery`] does before it writes and queues, and what `herald
/// explain` shows.
pub fn address(cluster: Arc<str>, o: Outcome, routes: &Routes) -> Addressed {
    let (chosen, dead_letter) = match o.fate {
        Fate::Deliver { routes } => (routes, None),
        Fate::Dropped { plugin, reason } => return Addressed::Dropped { plugin, reason },
        Fate::DeadLetter {
            sink,
            plugin,
            error,
        } => (
            vec![sink],
            Some(json!({"plugin": plugin, "error": error.to_string()})),
        ),
    };
    let resource_version = o.object.resource_version().unwrap_or_default().to_string();
    let targets = routes.targets(&o.watch, o.namespace.as_deref(), &chosen, &o.name);
    let unknown = routes.unknown(&chosen);
    let misrouted = match &routes.dead_letter {
        Some(dl) if !unknown.is_empty() && dead_letter.is_none() && !targets.contains(dl) => {
            Some((
                dl.clone(),
                json!({
                    "routes": unknown,
                    "error": format!(
                        "a route verdict names {} that does not exist",
                        if unknown.len() == 1 { "a sink" } else { "sinks" }
                    ),
                }),
            ))
        }
        _ => None,
    };
    Addressed::Notify {
        targets,
        misrouted,
        notification: Box::new(Notification {
            cluster,
            change: o.change,
            gvk: o.gvk,
            watch: o.watch,
            namespace: o.namespace,
            name: o.name,
            uid: o.uid,
            resource_version,
            time: o.observed_at,
            routes: chosen,
            object: o.object,
            old: o.old,
            dead_letter,
            receipt: None,
            durable: None,
            trace: 0,
        }),
    }
}

impl Deliver for Delivery {
    fn deliver(&self, mut o: Outcome, guard: Option<Arc<dyn Any + Send + Sync>>) -> usize {
        let record = std::mem::take(&mut o.record);
        let mut decision = self.decisions.as_ref().map(|_| decide(&mut o));
        let addressed = {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            let addressed = address(self.sinks.cluster(), o, &routes);
            if let (Some(d), Addressed::Notify { notification, .. }) = (&mut decision, &addressed) {
                d.left_out = routes
                    .left_out(&d.watch, d.namespace.as_deref(), &notification.routes)
                    .into_iter()
                    .map(|(sink, reason)| LeftOut { sink, reason })
                    .collect();
                if d.fate != fate::DEAD_LETTER {
                    d.routing = Some(routes.source_of(&d.watch, &notification.routes));
                }
            }
            addressed
        };
        let (targets, mut n, misrouted) = match addressed {
            Addressed::Dropped { plugin, reason } => {
                // Logged (sampled) and counted where outcomes are handed
                // over.
                if let (Some(ring), Some(mut d)) = (&self.decisions, decision) {
                    d.fate = fate::DROPPED;
                    d.step = "plugin";
                    d.reason = format!("dropped by plugin {plugin}: {reason}");
                    ring.record(d);
                }
                // The state was emitted (to the plugins): record it.
                self.commit(record, vec![]);
                return 0;
            }
            Addressed::Notify {
                targets,
                notification,
                misrouted,
            } => (targets, *notification, misrouted),
        };
        if let (Some(ring), Some(mut d)) = (&self.decisions, decision) {
            match &misrouted {
                None if targets.is_empty() => {
                    d.fate = fate::UNROUTED;
                    d.step = "routing";
                    d.reason = "no sink takes it".into();
                }
                Some((dl, _)) if targets.is_empty() => {
                    d.fate = fate::DEAD_LETTER;
                    d.step = "routing";
                    d.reason = format!(
                        "the route verdicts name no sink that exists; dead letter to {dl} (deadLetter)"
                    );
                }
                _ if d.fate == fate::DELIVERED => {
                    d.reason = format!("to {}", targets.join(", "));
                    if let Some((dl, _)) = &misrouted {
                        d.reason.push_str(&format!(
                            "; a route naming no sink goes to {dl} (deadLetter)"
                        ));
                    }
                }
                _ => {}
            }
            d.sinks = targets
                .iter()
                .chain(misrouted.iter().map(|(dl, _)| dl))
                .map(|sink| SinkDelivery {
                    sink: sink.clone(),
                    state: "queued",
                    attempts: 0,
                    error: None,
                    dead_letter: None,
                })
                .collect();
            n.trace = ring.record(d);
        }
        n.receipt = guard.map(Receipt::new);
        let dead = misrouted.map(|(sink, why)| {
            let mut d = n.clone();
            d.dead_letter = Some(why);
            (sink, d)
        });
        // With a state dir: the object record and one outbox entry per sink,
        // in one transaction; lanes deliver once it is on disk.
        if self.state.is_some() {
            let payload = n.to_stored();
            let mut entries: Vec<Op> = targets
                .iter()
                .map(|sink| Op::Enqueue {
                    sink: sink.clone(),
                    id: n.id(sink),
                    payload: payload.clone(),
                })
                .collect();
            if let Some((sink, d)) = &dead {
                entries.push(Op::Enqueue {
                    sink: sink.clone(),
                    id: d.id(sink),
                    payload: d.to_stored(),
                });
            }
            n.durable = self.commit(record, entries);
        }
        let mut sent = 0;
        if let Some((sink, mut d)) = dead {
            d.durable = n.durable.clone();
            sent += self.sinks.enqueue(std::slice::from_ref(&sink), d);
        }
        sent + self.sinks.enqueue(&targets, n)
    }

    fn record_only(&self, record: Vec<Op>) {
        drop(self.commit(record, vec![]));
    }
}

/// The decision about `o` before routing: who saw it, each plugin's step,
/// and a plugin's failure routed to a dead letter (in `herald explain`'s
/// words).
fn decide(o: &mut Outcome) -> Decision {
    let mut d = Decision::new(
        &o.watch,
        o.change,
        &o.gvk,
        o.namespace.as_deref(),
        &o.name,
        &o.uid,
        o.object.resource_version().unwrap_or_default(),
        o.observed_at,
    );
    d.plugins = std::mem::take(&mut o.plugins);
    match &o.fate {
        Fate::Deliver { routes } => d.routes = routes.clone(),
        Fate::DeadLetter {
            sink,
            plugin,
            error,
        } => {
            d.fate = fate::DEAD_LETTER;
            d.step = "plugin";
            d.routing = Some("the failing plugin's onError route (a dead letter)");
            d.reason = format!("plugin {plugin} failed ({error}); dead letter to {sink}");
        }
        Fate::Dropped { .. } => {}
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(name: &str, extra: serde_json::Value) -> SinkConfig {
        let mut v = json!({"name": name, "type": "log"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).expect("sink config")
    }

    #[test]
    fn verdicts_then_watch_sinks_then_defaults_then_namespaces() {
        let configs = [
            sink("a", json!({})),
            sink("b", json!({"namespaces": ["shop"], "deadLetter": "dl"})),
            sink("dl", json!({})),
        ];
        let routes = Routes::new(&configs, [("w".to_string(), vec!["b".to_string()])].into());
        let t = |watch: &str, ns: &str, r: &[&str]| {
            let r: Vec<String> = r.iter().map(|s| s.to_string()).collect();
            routes.targets(watch, Some(ns), &r, "x")
        };
        assert_eq!(t("other", "shop", &[]), ["a", "b"], "not the dead letter");
        assert_eq!(t("w", "shop", &[]), ["b"]);
        assert!(t("w", "web", &[]).is_empty(), "b is for shop only");
        assert_eq!(t("w", "shop", &["dl", "a", "dl", "nope"]), ["dl", "a"]);
        let implicit = Routes::new(&[], Default::default());
        assert_eq!(implicit.targets("w", None, &["x".into()], "x"), ["log"]);
    }
}
