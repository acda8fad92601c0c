//! The one wasmtime engine of the process, its epoch ticker and linker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::LoadError;
use super::instance::HostState;
use super::load::{self, LoadedPlugin};
use super::output::PluginLog;
use super::settings::Capability;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Resolution of call deadlines.
    pub epoch_tick: Duration,
    /// Most instances alive at once (pooling allocator slots).
    pub max_instances: u32,
    /// Largest memory cap any plugin may be given.
    pub max_memory: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            // 5 ms: a deadline overrun is noticed within one tick. The ticker
            // only ticks while a plugin call runs (see `Ticker`).
            epoch_tick: Duration::from_millis(5),
            max_instances: 256,
            max_memory: 1 << 30,
        }
    }
}

/// Epoch ticks of `tick` that make up `d` (at least one).
pub(crate) fn ticks(d: Duration, tick: Duration) -> u64 {
    (d.as_nanos().div_ceil(tick.as_nanos().max(1)) as u64).max(1)
}

/// The epoch ticker: a thread that advances the engine's epoch every
/// `epoch_tick` while plugin calls run, and sleeps (parked) otherwise.
/// Ticking only matters to a call's deadline; 200 wake-ups a second of an
/// idle herald were measured at ~1.5 ms of CPU per second on the 2-core
/// machine (BENCHMARKS.md, "Real API server").
///
/// It parks only after a whole tick in which no call ran or started, and a
/// call wakes it only when it is parked: under a steady stream of short
/// calls it just ticks, and a call costs a few atomic operations, not a
/// wake-up of another thread (which woke it, found the call already over
/// and parked again, once per call).
struct Ticker {
    stop: Arc<AtomicBool>,
    /// Calls running now.
    calls: Arc<AtomicUsize>,
    /// Calls started so far.
    started: Arc<AtomicUsize>,
    /// The ticker is parked, or about to: the next call unparks it.
    parked: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Epochs advanced so far (for the tests).
    #[cfg(test)]
    ticks: Arc<std::sync::atomic::AtomicU64>,
    /// Times it went from parked to ticking (for the tests).
    #[cfg(test)]
    wakes: Arc<std::sync::atomic::AtomicU64>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        // Parked from the start: an idle runtime does not tick.
        let parked = Arc::new(AtomicBool::new(true));
        #[cfg(test)]
        let (ticks, wakes) = (
            Arc::new(std::sync::atomic::AtomicU64::new(0)),
            Arc::new(std::sync::atomic::AtomicU64::new(0)),
        );
        let thread = {
            let (stop, calls, started, parked) =
                (stop.clone(), calls.clone(), started.clone(), parked.clone());
            #[cfg(test)]
            let (ticks, wakes) = (ticks.clone(), wakes.clone());
            std::thread::Builder::new()
                .name("herald-epoch".into())
                .spawn(move || {
                    let mut seen = 0;
                    loop {
                        // Idle => Ticking, once a call has started since the
                        // last look (`parked` is set before that look, so a
                        // call after it unparks; see `calling`). An unpark
                        // that came first makes `park` return at once.
                        while started.load(Ordering::SeqCst) == seen {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::park();
                        }
                        parked.store(false, Ordering::SeqCst);
                        #[cfg(test)]
                        wakes.fetch_add(1, Ordering::Relaxed);
                        // Ticking => Idle after a tick with no call running
                        // and none started.
                        loop {
                            seen = started.load(Ordering::SeqCst);
                            std::thread::sleep(tick);
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            engine.increment_epoch();
                            #[cfg(test)]
                            ticks.fetch_add(1, Ordering::Relaxed);
                            if calls.load(Ordering::SeqCst) == 0 {
                                parked.store(true, Ordering::SeqCst);
                                if started.load(Ordering::SeqCst) == seen
                                    && calls.load(Ordering::SeqCst) == 0
                                {
                                    break;
                                }
                                parked.store(false, Ordering::SeqCst);
                            }
                        }
                    }
                })?
        };
        Ok(Ticker {
            stop,
            calls,
            started,
            parked,
            thread: Some(thread),
            #[cfg(test)]
            ticks,
            #[cfg(test)]
            wakes,
        })
    }

    fn calling(&self) -> CallGuard {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Seen after the counts: a ticker that set `parked` before this
        // call's counts is unparked here; one that set it after sees them.
        if self.parked.load(Ordering::SeqCst)
            && self.parked.swap(false, Ordering::SeqCst)
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
        CallGuard {
            calls: self.calls.clone(),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// A plugin call in progress: the epoch ticks until it is dropped.
pub(crate) struct CallGuard {
    calls: Arc<AtomicUsize>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) struct Inner {
    /// Compiled components by hash of their bytes: a reload that finds a
    /// file unchanged does not compile it again.
    pub(crate) compiled:
        std::sync::Mutex<std::collections::HashMap<String, wasmtime::component::Component>>,
    /// Each plugin's log budget, by name: shared by its instances and
    /// kept across reloads, so a reload does not reset the rate limit.
    pub(crate) logs: std::sync::Mutex<std::collections::HashMap<String, Arc<PluginLog>>>,
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    ticker: Ticker,
}

/// The plugin runtime: one engine (pooling allocator, epoch interruption),
/// one linker, a disk cache of compiled components. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

/// Core instances the pool holds per plugin instance: room for a Python
/// plugin's 38.
const CORE_INSTANCES_PER_PLUGIN: u32 = 48;
/// Tables the pool holds per plugin instance.
const TABLES_PER_PLUGIN: u32 = 16;

impl Runtime {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::default();
        // Per component instance: a Rust plugin has 1-4 core instances, a
        // memory and a table or two; a JavaScript one (componentize-js) 3,
        // 1 and 2; a Python one (componentize-py) 38 core instances (libc,
        // libpython, the WASI adapters and their stubs) and more tables.
        // The counts only bound live instances; a slot's memory is reserved
        // when it is used.
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * CORE_INSTANCES_PER_PLUGIN)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * TABLES_PER_PLUGIN)
            .max_memory_size(config.max_memory);
        let mut wc = Config::new();
        wc.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // For `perf`: the plugins' compiled functions in /tmp/perf-<pid>.map.
        if std::env::var_os("HERALD_WASM_PERFMAP").is_some() {
            wc.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wc).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        super::bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // Components are checked against the allow-list before they are
        // linked, so only allowed WASI interfaces are ever reachable; the
        // context has no preopens, env, args or network.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // A plugin's waits end with its call's budget.
        super::clocks::bound_waits(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Engine(format!("cannot start epoch ticker: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                compiled: Default::default(),
                logs: Default::default(),
                engine,
                linker,
                config,
                ticker,
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Reads, compiles (or loads from the cache), validates and
    /// pre-instantiates the component at `path` as plugin `name`.
    ///
    /// # Errors
    /// A [`LoadError`] naming the file and, where it applies, the offending
    /// import or missing export.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        allow: &[Capability],
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(name, path, &bytes, allow)
    }

    /// Like [`Runtime::load`] for bytes already read; `path` names them in errors.
    pub fn load_bytes(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
        allow: &[Capability],
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        load::load(self, name, path, bytes, allow).map(Arc::new)
    }

    /// Removes compiled components of plugin versions not in `keep`
    /// (content hashes, hex) from the cache directory and from memory, so
    /// that swaps do not pile up; returns how many files went.
    pub(crate) fn prune_cache(&self, keep: &std::collections::BTreeSet<String>) -> usize {
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|hash, _| keep.contains(hash));
        let Some(dir) = &self.inner.config.cache_dir else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hash) = name
                .strip_suffix(".cwasm")
                .and_then(|n| n.split('-').next())
            else {
                continue;
            };
            if !keep.contains(hash) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), "cannot prune the compiled cache: {e}")
                    }
                }
            }
        }
        removed
    }

    /// The log budget of plugin `name` (created on first use).
    pub(crate) fn plugin_log(&self, name: &str) -> Arc<PluginLog> {
        let mut logs = self.inner.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.entry(name.to_string())
            .or_insert_with(|| Arc::new(PluginLog::new(name)))
            .clone()
    }

    /// Marks a plugin call (instantiation, `init`, `handle`) as running until
    /// the guard is dropped: its epoch deadline advances only meanwhile.
    pub(crate) fn calling(&self) -> CallGuard {
        self.inner.ticker.calling()
    }

    /// How often the epoch advances while a call runs.
    pub(crate) fn epoch_tick(&self) -> Duration {
        self.inner.config.epoch_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ticks(rt: &Runtime) -> u64 {
        rt.inner.ticker.ticks.load(Ordering::Relaxed)
    }

    /// Waits until the ticker has stopped advancing (it may finish the tick
    /// it was in when the last call ended).
    fn settled(rt: &Runtime) -> u64 {
        let mut last = ticks(rt);
        loop {
            std::thread::sleep(Duration::from_millis(30));
            let now = ticks(rt);
            if now == last {
                return now;
            }
            last = now;
        }
    }

    #[test]
    fn the_epoch_ticks_only_while_a_call_runs() {
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticks(&rt), 0, "an idle runtime does not tick");

        let call = rt.calling();
        let t = Instant::now();
        while ticks(&rt) < 3 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no ticks during a call"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Two calls at once: the ticker keeps going while either runs.
        let second = rt.calling();
        drop(call);
        let before = ticks(&rt);
        let t = Instant::now();
        while ticks(&rt) == before {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "stopped with a call running"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(second);
        let idle = settled(&rt);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticks(&rt), idle, "stops when the last call ends");

        // And starts again with the next call.
        let _again = rt.calling();
        let t = Instant::now();
        while ticks(&rt) == idle {
            assert!(t.elapsed() < Duration::from_secs(10), "did not start again");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_steady_stream_of_short_calls_wakes_the_ticker_once_not_per_call() {
        let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let wakes = || rt.inner.ticker.wakes.load(Ordering::Relaxed);
        // 20,000 calls of a few microseconds over about 200 ms (40 ticks):
        // each ends long before the ticker could look at it.
        let t = Instant::now();
        for _ in 0..20_000 {
            let call = rt.calling();
            std::hint::black_box(&call);
            drop(call);
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(10) {
                std::hint::spin_loop();
            }
        }
        let took = t.elapsed();
        // It parks again once they stop (a wake by the last calls is counted
        // by then too).
        let idle = settled(&rt);
        let during = wakes();
        assert!(during >= 1, "the calls woke the ticker");
        // Each wake is followed by at least one whole tick (5 ms) before it
        // can park again, so there are at most as many wakes as ticks in the
        // time taken (and one for the last calls), however often this thread
        // is stalled; woken per call, it was 4,436 for the same loop.
        let bound = took.as_millis() / 5 + 2;
        assert!(
            u128::from(during) <= bound,
            "{during} wake-ups for 20,000 calls in {took:?} (at most {bound}): woken per call"
        );
        assert!(idle >= 2, "it ticked while the calls ran");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticks(&rt), idle, "stops after the last call");
        assert_eq!(wakes(), during);
    }
}
