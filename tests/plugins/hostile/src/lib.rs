//! A misbehaving test plugin (not shipped). Its config picks what it does to
//! events whose name starts with `when` (default: every event); other events
//! pass, so tests can check the host keeps serving after the misbehaviour.
//!
//! Modes: `pass`, `loop` (runs forever), `alloc` (allocates without bound),
//! `panic` (panics with `message`), `set` (sets `/hostile` then panics, to
//! check rollback), `route` (routes to `sinks`), `init-error`, `recurse`
//! (recurses until the stack overflows), `print` (writes `message` to
//! stdout, stderr and `log`, then `count` more stdout lines and an
//! unterminated one), `flood` (logs `count` lines), `big-drop` (drops
//! with `message` repeated `count` times), `set-at` and `remove-at` (set
//! `value` at, or remove, `pointer`; drop saying what happened) and `count`
//! (drops with the number of events this instance has seen: state kept in
//! `&mut self`).

use std::cell::RefCell;

use herald_plugin_sdk::{Event, Plugin, Verdict};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub mode: String,
    #[serde(default)]
    pub when: String,
    #[serde(default = "default_message")]
    pub message: String,
    #[serde(default)]
    pub sinks: Vec<String>,
    #[serde(default)]
    pub count: usize,
    #[serde(default)]
    pub pointer: String,
    /// JSON text.
    #[serde(default)]
    pub value: String,
}

fn default_message() -> String {
    "hostile plugin was asked to panic".into()
}

pub struct Hostile {
    config: Config,
    seen: u64,
}

thread_local! {
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

impl Plugin for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        match config.mode.as_str() {
            "init-error" => Err(format!("refusing to start: {}", config.message)),
            "pass" | "loop" | "alloc" | "panic" | "set" | "route" | "recurse" | "print"
            | "flood" | "big-drop" | "set-at" | "remove-at" | "count" => {
                Ok(Hostile { config, seen: 0 })
            }
            other => Err(format!("unknown mode {other:?}")),
        }
    }

    fn handle(&mut self, event: &mut Event<'_>) -> Verdict {
        if !event.name().starts_with(&self.config.when) {
            return Verdict::Pass;
        }
        match self.config.mode.as_str() {
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "alloc" => loop {
                HOARD.with(|h| h.borrow_mut().push(vec![1u8; 1 << 20]));
            },
            "panic" => panic!("{}", self.config.message),
            "set" => {
                let _ = event.set("/hostile", &true);
                let _ = event.remove(&["/metadata/labels"]);
                panic!("{}", self.config.message)
            }
            "route" => Verdict::Route(self.config.sinks.clone()),
            "recurse" => {
                let depth = recurse(std::hint::black_box(1));
                Verdict::drop(format!("recursion ended at {depth}"))
            }
            "print" => {
                println!("stdout: {}", self.config.message);
                eprintln!("stderr: {}", self.config.message);
                herald_plugin_sdk::info(&format!("log: {}", self.config.message));
                for i in 0..self.config.count {
                    println!("line {i}");
                }
                print!("unterminated: {}", self.config.message);
                Verdict::Pass
            }
            "flood" => {
                for i in 0..self.config.count {
                    herald_plugin_sdk::info(&format!("line {i}: {}", self.config.message));
                }
                Verdict::Pass
            }
            "big-drop" => Verdict::drop(self.config.message.repeat(self.config.count)),
            "set-at" => match event.set_json(&self.config.pointer, &self.config.value) {
                Ok(()) => Verdict::drop("set"),
                Err(e) => Verdict::drop(format!("set refused: {e}")),
            },
            "remove-at" => match event.remove(&[&self.config.pointer]) {
                Ok(n) => Verdict::drop(format!("removed {n}")),
                Err(e) => Verdict::drop(format!("remove refused: {e}")),
            },
            "count" => {
                self.seen += 1;
                Verdict::drop(format!("event {}", self.seen))
            }
            _ => Verdict::Pass,
        }
    }
}

/// Recurses with a 4 KiB frame until the stack runs out.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 4096]);
    if std::hint::black_box(frame[0]) == 255 && depth > u64::MAX - 1 {
        return depth;
    }
    recurse(depth + 1) + u64::from(frame[1])
}

herald_plugin_sdk::export_plugin!(Hostile);
