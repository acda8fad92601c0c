//! The circuit breaker in front of each plugin of a chain: after
//! `failures` consecutive failed calls the plugin is suspended for a
//! backoff, and its `onError` policy decides the fate of the events it would
//! have seen, without calling it; then one trial call decides whether it
//! resumes or is suspended again for twice as long (up to `maxBackoff`).
//!
//! One breaker serves every worker's instance of the same plugin in the same
//! watch's chain, so the count and the suspension are the plugin's, not a
//! worker's. A plugin that fails on every event costs `failures` deadlines,
//! then one per backoff, instead of one per event.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `plugins.breaker` in the config: when a failing plugin is suspended.
///
/// Example: `{failures: 5, backoff: 5s, maxBackoff: 5m}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failed calls (trap, deadline, memory, panic) that suspend
    /// a plugin; 0 never suspends. Default: 5
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// The first suspension; each failed trial doubles it. Default: 5s
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// The longest suspension. Default: 5m
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn default_failures() -> u32 {
    BreakerSettings::DEFAULT.failures
}
fn default_backoff() -> Duration {
    BreakerSettings::DEFAULT.backoff
}
fn default_max_backoff() -> Duration {
    BreakerSettings::DEFAULT.max_backoff
}

impl BreakerSettings {
    /// Five failures in a row are not bad luck; five seconds is long enough
    /// to spare the pipeline and short enough that a plugin that recovers
    /// (its input changed) is soon called again.
    pub const DEFAULT: BreakerSettings = BreakerSettings {
        failures: 5,
        backoff: Duration::from_secs(5),
        max_backoff: Duration::from_secs(300),
    };

    /// Never suspends (`herald plugin test` reports every failure).
    pub const OFF: BreakerSettings = BreakerSettings {
        failures: 0,
        ..Self::DEFAULT
    };

    /// Checks the durations. Errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.failures > 0 && self.backoff.is_zero() {
            return Err("backoff: more than 0".into());
        }
        if self.max_backoff < self.backoff {
            return Err("maxBackoff: at least backoff".into());
        }
        Ok(())
    }
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether a call may go to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: call it.
    Call,
    /// The backoff is over: this call is the one trial.
    Trial,
    /// Suspended (or another worker's trial is running): do not call it.
    Skip {
        /// The failures in a row that suspended it.
        failures: u32,
    },
}

/// What a call's result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Suspended after `failures` failures in a row, for `backoff`.
    Opened {
        /// Failures in a row.
        failures: u32,
        /// How long it stays suspended.
        backoff: Duration,
    },
    /// The trial failed: suspended again, for `backoff`.
    Reopened {
        /// How long it stays suspended.
        backoff: Duration,
    },
    /// The trial succeeded: calls go through again.
    Closed {
        /// How long it was suspended in all.
        after: Duration,
    },
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Suspended until `until`; `backoff` is the suspension that is running.
    Open {
        since: Instant,
        until: Instant,
        backoff: Duration,
    },
    /// One worker's trial call is running; the others skip.
    Trial { since: Instant, backoff: Duration },
}

/// One plugin's breaker, shared by its instances on every worker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the plugin is suspended (a trial running counts as suspended).
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }

    /// Whether a call at `now` may go to the plugin.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut state = self.state();
        match *state {
            // Closed => Closed
            State::Closed { .. } => Admit::Call,
            // Open => Trial (the backoff is over: this caller tries)
            State::Open {
                since,
                until,
                backoff,
            } if now >= until => {
                *state = State::Trial { since, backoff };
                Admit::Trial
            }
            // Open | Trial => (same): skip
            State::Open { .. } | State::Trial { .. } => Admit::Skip {
                failures: self.settings.failures,
            },
        }
    }

    /// Records the result of a call `admit` let through; the transition it
    /// caused, if any.
    pub fn record(&self, admitted: Admit, ok: bool, now: Instant) -> Option<Transition> {
        if self.settings.failures == 0 {
            return None;
        }
        let mut state = self.state();
        match (*state, admitted) {
            // Closed => Closed (a success resets the count)
            (State::Closed { .. }, _) if ok => {
                *state = State::Closed { failures: 0 };
                None
            }
            // Closed => (Closed | Open)
            (State::Closed { failures }, _) => {
                let failures = failures + 1;
                if failures < self.settings.failures {
                    *state = State::Closed { failures };
                    return None;
                }
                let backoff = self.settings.backoff;
                *state = State::Open {
                    since: now,
                    until: now + backoff,
                    backoff,
                };
                Some(Transition::Opened { failures, backoff })
            }
            // Trial => Closed
            (State::Trial { since, .. }, Admit::Trial) if ok => {
                *state = State::Closed { failures: 0 };
                Some(Transition::Closed { after: now - since })
            }
            // Trial => Open, twice as long
            (State::Trial { since, backoff }, Admit::Trial) => {
                let backoff = (backoff * 2).min(self.settings.max_backoff);
                *state = State::Open {
                    since,
                    until: now + backoff,
                    backoff,
                };
                Some(Transition::Reopened { backoff })
            }
            // Open | Trial => (same): a call admitted before another worker
            // suspended the plugin; the trial decides.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: BreakerSettings = BreakerSettings {
        failures: 3,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(3),
    };

    fn fail(b: &Breaker, now: Instant) -> Option<Transition> {
        let a = b.admit(now);
        assert_ne!(a, Admit::Skip { failures: 3 }, "expected a call");
        b.record(a, false, now)
    }

    #[test]
    fn opens_after_n_failures_in_a_row_and_a_success_resets_the_count() {
        let b = Breaker::new(S);
        let t = Instant::now();
        assert_eq!(fail(&b, t), None);
        assert_eq!(fail(&b, t), None);
        assert_eq!(b.record(b.admit(t), true, t), None, "a success resets");
        assert_eq!(fail(&b, t), None);
        assert_eq!(fail(&b, t), None);
        assert_eq!(
            fail(&b, t),
            Some(Transition::Opened {
                failures: 3,
                backoff: S.backoff
            })
        );
        assert!(b.is_open());
        assert_eq!(b.admit(t), Admit::Skip { failures: 3 });
        assert_eq!(
            b.admit(t + Duration::from_millis(999)),
            Admit::Skip { failures: 3 }
        );
    }

    #[test]
    fn after_the_backoff_one_trial_closes_it_or_doubles_the_backoff_up_to_the_cap() {
        let b = Breaker::new(S);
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let t1 = t + S.backoff;
        assert_eq!(b.admit(t1), Admit::Trial);
        assert_eq!(
            b.admit(t1),
            Admit::Skip { failures: 3 },
            "one trial at a time"
        );
        assert_eq!(
            b.record(Admit::Trial, false, t1),
            Some(Transition::Reopened {
                backoff: Duration::from_secs(2)
            })
        );
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(
            b.admit(t2 - Duration::from_millis(1)),
            Admit::Skip { failures: 3 }
        );
        assert_eq!(b.admit(t2), Admit::Trial);
        assert_eq!(
            b.record(Admit::Trial, false, t2),
            Some(Transition::Reopened {
                backoff: Duration::from_secs(3)
            }),
            "capped"
        );
        let t3 = t2 + Duration::from_secs(3);
        assert_eq!(b.admit(t3), Admit::Trial);
        // A call admitted before the suspension ends meanwhile: no effect.
        assert_eq!(b.record(Admit::Call, true, t3), None);
        assert_eq!(
            b.record(Admit::Trial, true, t3),
            Some(Transition::Closed { after: t3 - t })
        );
        assert!(!b.is_open());
        assert_eq!(b.admit(t3), Admit::Call);
    }

    #[test]
    fn zero_failures_never_opens() {
        let b = Breaker::new(BreakerSettings::OFF);
        let t = Instant::now();
        for _ in 0..100 {
            assert_eq!(fail(&b, t), None);
        }
        assert!(!b.is_open());
    }

    #[test]
    fn settings_parse_with_defaults_and_are_checked() {
        let s: BreakerSettings = serde_yaml_ng::from_str("failures: 2\nbackoff: 100ms").unwrap();
        assert_eq!(s.failures, 2);
        assert_eq!(s.backoff, Duration::from_millis(100));
        assert_eq!(s.max_backoff, BreakerSettings::DEFAULT.max_backoff);
        assert!(s.validate().is_ok());
        let bad = BreakerSettings {
            max_backoff: Duration::from_millis(1),
            ..s
        };
        assert_eq!(bad.validate(), Err("maxBackoff: at least backoff".into()));
        assert!(serde_yaml_ng::from_str::<BreakerSettings>("fails: 2").is_err());
    }
}
