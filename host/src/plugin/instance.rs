//! One live instance of a plugin: its store, limits and the call protocol.

use std::sync::Arc;
use std::time::Duration;

use herald_plugin_sdk::pointer::Step;
use wasmtime::Store;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::Plugin as PluginBindings;
use super::bindings::herald::plugin::types::{self as wit, Change as WitChange, Level};
use super::budget::CallBudget;
use super::error::{LoadError, MemoryLimitExceeded, PluginError};
use super::event::{EventData, EventState};
use super::load::LoadedPlugin;
use super::output::{self, MAX_REASON, PluginLog, PluginOutput, Source, sanitise};
use super::runtime::ticks;
use super::settings::{PluginSettings, Verdict};
use super::trap::classify;
use crate::change::ChangeType;

/// Marker the SDK puts before a panic message (see `herald_plugin_sdk`).
const PANIC_PREFIX: &str = "plugin panicked: ";

/// Store data of one plugin instance.
pub(crate) struct HostState {
    pub(super) plugin: Arc<str>,
    table: ResourceTable,
    wasi: WasiCtx,
    limiter: Limiter,
    /// Where `log` lines go (rate-limited per plugin).
    log: Arc<PluginLog>,
    stdout: PluginOutput,
    pub(super) stderr: PluginOutput,
    /// Events the plugin handed back (dropped) during the current call.
    returned: Vec<EventState>,
    pub(super) last_panic: Option<String>,
    /// The time budget of the call in progress (see [`super::budget`]).
    budget: CallBudget,
}

/// The memory cap. Growing past it traps with [`MemoryLimitExceeded`] so the
/// error says what happened.
struct Limiter {
    memory: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.memory,
                asked: desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// The budget of the current (or last) call.
    pub(super) fn budget(&self) -> &CallBudget {
        &self.budget
    }

    /// Writes out unterminated stdout/stderr lines and the count of lines
    /// the rate limit suppressed (at most once a second).
    fn end_call(&self) {
        self.stdout.flush();
        self.stderr.flush();
        self.log.report_suppressed(output::REPORT_INTERVAL);
    }

    fn event(&self, r: &Resource<EventState>) -> wasmtime::Result<&EventState> {
        Ok(self.table.get(r)?)
    }
    fn event_mut(&mut self, r: &Resource<EventState>) -> wasmtime::Result<&mut EventState> {
        Ok(self.table.get_mut(r)?)
    }
}

impl super::bindings::PluginImports for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // The panic is kept whatever the rate limit does with the line: the
        // call's error reports it.
        if let Some(rest) = message.strip_prefix(PANIC_PREFIX) {
            self.last_panic = Some(sanitise(rest, MAX_REASON));
        }
        self.log.line(Source::Log(level), &message);
        Ok(())
    }
}

impl wit::Host for HostState {}

impl wit::HostEvent for HostState {
    fn change(&mut self, e: Resource<EventState>) -> wasmtime::Result<WitChange> {
        Ok(match self.event(&e)?.data.change {
            ChangeType::Added => WitChange::Added,
            ChangeType::Modified => WitChange::Modified,
            ChangeType::Deleted => WitChange::Deleted,
        })
    }

    fn api_version(&mut self, e: Resource<EventState>) -> wasmtime::Result<String> {
        Ok(self.event(&e)?.string_at("/apiVersion").unwrap_or_default())
    }

    fn kind(&mut self, e: Resource<EventState>) -> wasmtime::Result<String> {
        Ok(self.event(&e)?.string_at("/kind").unwrap_or_default())
    }

    fn namespace(&mut self, e: Resource<EventState>) -> wasmtime::Result<Option<String>> {
        // Identity: from the stored object's index, no parse.
        Ok(self.event(&e)?.data.object.namespace().map(str::to_string))
    }

    fn name(&mut self, e: Resource<EventState>) -> wasmtime::Result<String> {
        Ok(self
            .event(&e)?
            .data
            .object
            .name()
            .unwrap_or_default()
            .to_string())
    }

    fn get(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&e)?.get_json(&pointer))
    }

    fn get_string(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.event(&e)?.string_at(&pointer))
    }

    fn get_old(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.event_mut(&e)?.get_old_json(&pointer))
    }

    fn keys(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
    ) -> wasmtime::Result<Option<Vec<String>>> {
        Ok(self.event(&e)?.keys(&pointer))
    }

    fn keys_old(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
    ) -> wasmtime::Result<Option<Vec<String>>> {
        Ok(self.event_mut(&e)?.keys_old(&pointer))
    }

    fn remove_paths(
        &mut self,
        e: Resource<EventState>,
        paths: Vec<Vec<wit::Step>>,
    ) -> wasmtime::Result<u32> {
        let paths: Vec<Vec<Step>> = paths
            .into_iter()
            .map(|steps| {
                steps
                    .into_iter()
                    .map(|s| match s {
                        wit::Step::Key(k) => Step::Key(k),
                        wit::Step::Any => Step::Any,
                    })
                    .collect()
            })
            .collect();
        Ok(self.event_mut(&e)?.remove_paths(&paths))
    }

    fn remove(&mut self, e: Resource<EventState>, pointers: Vec<String>) -> wasmtime::Result<u32> {
        Ok(self.event_mut(&e)?.remove(&pointers))
    }

    fn set(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
        json: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.event_mut(&e)?.set(&pointer, &json))
    }

    fn set_old(
        &mut self,
        e: Resource<EventState>,
        pointer: String,
        json: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.event_mut(&e)?.set_old(&pointer, &json))
    }

    fn to_json(&mut self, e: Resource<EventState>) -> wasmtime::Result<String> {
        Ok(self.event(&e)?.object_json())
    }

    fn old_to_json(&mut self, e: Resource<EventState>) -> wasmtime::Result<Option<String>> {
        Ok(self.event_mut(&e)?.old().map(|o| o.to_string()))
    }

    fn drop(&mut self, e: Resource<EventState>) -> wasmtime::Result<()> {
        // The plugin hands the event back: keep it for the chain.
        let state = self.table.delete(e)?;
        self.returned.push(state);
        Ok(())
    }
}

/// What one `handle` call produced.
#[derive(Debug)]
pub struct CallOutcome {
    /// The events, in order, with the plugin's changes (or rolled back on error).
    pub events: Vec<EventData>,
    /// One verdict per event on success; the error otherwise.
    pub verdicts: Result<Vec<Verdict>, PluginError>,
    /// Per event, in order, the pointers the call removed and set (none
    /// when it failed: its changes were rolled back).
    pub edits: Vec<super::event::Edits>,
}

struct Live {
    store: Store<HostState>,
    bindings: PluginBindings,
}

/// A plugin with its settings, instantiated lazily and again after a failure.
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    settings: PluginSettings,
    live: Option<Live>,
    /// How many times the instance was torn down after a failure.
    restarts: u64,
}

impl PluginInstance {
    /// Instantiates the plugin and runs `init` with its config.
    ///
    /// # Errors
    /// [`LoadError::Init`] when the plugin rejects its config, and
    /// [`LoadError::Start`] when instantiation or `init` traps.
    pub fn new(plugin: Arc<LoadedPlugin>, settings: PluginSettings) -> Result<Self, LoadError> {
        let mut inst = PluginInstance {
            plugin,
            settings,
            live: None,
            restarts: 0,
        };
        inst.start()?;
        Ok(inst)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// The loaded plugin this instance runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// The settings this instance runs with.
    pub fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    /// How many times the instance was torn down after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    fn start(&mut self) -> Result<(), LoadError> {
        let name = self.plugin.name().to_string();
        let log = self.plugin.log().clone();
        let stdout = PluginOutput::new(log.clone(), Source::Stdout);
        let stderr = PluginOutput::new(log.clone(), Source::Stderr);
        // No preopens, environment, arguments or network: stdio is all a
        // plugin's WASI context has, and it goes to herald's log.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let state = HostState {
            plugin: Arc::from(name.as_str()),
            table: ResourceTable::new(),
            wasi,
            limiter: Limiter {
                memory: self.settings.memory_limit,
            },
            log,
            stdout,
            stderr,
            returned: Vec::new(),
            last_panic: None,
            budget: CallBudget::start(self.settings.deadline),
        };
        let mut store = Store::new(self.plugin.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let tick = self.plugin.epoch_tick();
        store.epoch_deadline_callback(move |mut c| Ok(c.data_mut().budget.on_epoch_deadline(tick)));
        // The epoch ticks while this runs (instantiation and init).
        let _calling = self.plugin.calling();
        Self::arm_deadline(&self.plugin, self.settings.deadline, &mut store);
        let start_err = |e: wasmtime::Error, store: &Store<HostState>| LoadError::Start {
            plugin: name.clone(),
            source: classify(e, store),
        };
        let bindings = match self.plugin.pre().instantiate(&mut store) {
            Ok(b) => b,
            Err(e) => return Err(start_err(e, &store)),
        };
        Self::arm_deadline(&self.plugin, self.settings.deadline, &mut store);
        let init = bindings.call_init(&mut store, &self.settings.config);
        store.data().end_call();
        match init {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(LoadError::Init {
                    plugin: name,
                    message,
                });
            }
            Err(e) => return Err(start_err(e, &store)),
        }
        self.live = Some(Live { store, bindings });
        Ok(())
    }

    /// Starts a call's budget: `deadline` of CPU time from now.
    fn arm_deadline(plugin: &LoadedPlugin, deadline: Duration, store: &mut Store<HostState>) {
        store.data_mut().budget = CallBudget::start(deadline);
        store.set_epoch_deadline(ticks(deadline, plugin.epoch_tick()));
    }

    /// Runs `handle` on a batch of events.
    ///
    /// On any failure the instance is torn down (the next call starts a fresh
    /// one), the events come back exactly as they went in, and the error says
    /// what happened.
    pub fn handle(&mut self, events: Vec<EventData>) -> CallOutcome {
        if self.live.is_none()
            && let Err(e) = self.start()
        {
            self.restarts += 1;
            let err = match e {
                LoadError::Start { source, .. } => source,
                other => PluginError::Trap(other.to_string()),
            };
            return CallOutcome {
                events,
                verdicts: Err(err),
                edits: Vec::new(),
            };
        }
        let Some(live) = self.live.as_mut() else {
            unreachable!("instance started above")
        };
        let store = &mut live.store;
        Self::arm_deadline(&self.plugin, self.settings.deadline, store);
        let n = events.len();
        let mut handles = Vec::with_capacity(n);
        let mut reps = Vec::with_capacity(n);
        for (i, data) in events.into_iter().enumerate() {
            match store.data_mut().table.push(EventState::new(i, data)) {
                Ok(r) => {
                    reps.push(r.rep());
                    handles.push(r);
                }
                Err(e) => unreachable!("resource table full with {i} events: {e}"),
            }
        }
        store.data().stderr.start_call();
        let result = {
            let _calling = self.plugin.calling();
            live.bindings.call_handle(&mut *store, &handles)
        };
        store.data().end_call();
        // Collect the events: those handed back, then any the plugin kept.
        let state = store.data_mut();
        let mut back: Vec<Option<EventState>> = (0..n).map(|_| None).collect();
        for ev in state.returned.drain(..) {
            let i = ev.index;
            back[i] = Some(ev);
        }
        let mut kept = 0;
        for rep in reps {
            let r = Resource::<EventState>::new_own(rep);
            if let Ok(ev) = state.table.delete(r) {
                kept += 1;
                let i = ev.index;
                back[i] = Some(ev);
            }
        }
        let mut verdicts = match result {
            Ok(v) if v.len() != n => Err(PluginError::Contract(format!(
                "returned {} verdicts for {n} events",
                v.len()
            ))),
            Ok(_) if kept > 0 => Err(PluginError::Contract(format!(
                "kept {kept} of {n} events after handle returned"
            ))),
            Ok(v) => Ok(v.into_iter().map(Verdict::from).collect()),
            Err(e) => Err(classify(e, store)),
        };
        let mut out = Vec::with_capacity(n);
        let mut edits = Vec::with_capacity(n);
        for ev in back {
            match ev {
                Some(mut ev) => {
                    if verdicts.is_err() {
                        ev.rollback();
                    }
                    edits.push(std::mem::take(&mut ev.edits));
                    out.push(ev.data);
                }
                None => {
                    verdicts = Err(PluginError::Contract("an event was lost".into()));
                }
            }
        }
        if verdicts.is_err() {
            self.live = None;
            self.restarts += 1;
        }
        if verdicts.is_err() {
            edits.clear();
        }
        CallOutcome {
            events: out,
            verdicts,
            edits,
        }
    }
}

impl From<wit::Verdict> for Verdict {
    fn from(v: wit::Verdict) -> Self {
        match v {
            wit::Verdict::Pass => Verdict::Pass,
            // Reasons and sink names end up in log lines and notifications:
            // capped and sanitised like log lines.
            wit::Verdict::Drop(r) => Verdict::Drop(output::reason(r)),
            wit::Verdict::Route(s) => Verdict::Route(output::routes(s)),
        }
    }
}
