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

/// The epoch ticker: a thread that advances the engine's epoch every
/// `epoch_tick` while at least one plugin call runs, and sleeps (parked)
/// otherwise. Ticking only matters to a call's deadline; 200 wake-ups a
/// second of an idle herald were measured at ~1.5 ms of CPU per second on
/// the 2-core machine (BENCHMARKS.md, "Real API server").
struct Ticker {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    /// Epochs advanced so far (for the tests).
    #[cfg(test)]
    ticks: Arc<std::sync::atomic::AtomicU64>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        #[cfg(test)]
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let thread = {
            let stop = stop.clone();
            let calls = calls.clone();
            #[cfg(test)]
            let ticks = ticks.clone();
            std::thread::Builder::new()
                .name("herald-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if calls.load(Ordering::SeqCst) == 0 {
                            // Woken by the next call (`CallGuard`) or the drop; an
                            // unpark that came first makes this return at once.
                            std::thread::park();
                            continue;
                        }
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                        #[cfg(test)]
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })?
        };
        Ok(Ticker {
            stop,
            calls,
            thread: Some(thread),
            #[cfg(test)]
            ticks,
        })
    }

    fn calling(&self) -> CallGuard {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0
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

    /// Epoch ticks that make up `d` (at least one).
    pub(crate) fn ticks(&self, d: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (d.as_nanos().div_ceil(tick) as u64).max(1)
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
}
