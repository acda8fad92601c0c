//! A plugin call's time budget.
//!
//! A call's deadline counts the CPU time the call spends on its thread, not
//! the time on the clock: on a busy node, or in a pod held at its CPU limit
//! (the kernel's CFS quota stops it for the rest of each 100 ms period), a
//! thread can wait for a core longer than any deadline while the plugin
//! runs for microseconds, and a wall-clock deadline then fails calls that
//! did nothing wrong — and a failed call's events go by the plugin's
//! `onError` (for a redaction plugin with `pass`: unredacted).
//!
//! A call that waits instead of computing (a plugin granted the clocks that
//! sleeps) uses no CPU, so the wall clock still bounds every call:
//! [`WALL_FACTOR`] times its deadline.
//!
//! The epoch ticker measures wall time: a call's epoch deadline is first
//! its deadline on the clock; when it is reached, the thread's CPU clock says
//! how much of it the call used, and the deadline is extended by what is
//! left, or the call ends.
//!
//! Reading the thread's CPU clock is a system call (~0.3–0.5 µs here), too
//! much for each call of a plugin that takes microseconds. So a call's
//! starting point is the thread's last reading if that is under
//! [`MARK_AGE`] old: the call is charged, on top of its own CPU time, what
//! the thread used since that reading — at most [`MARK_AGE`].

use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

use super::error::PluginError;
use super::runtime::ticks;

/// A call may take this many times its deadline on the clock, whatever its
/// CPU time.
pub(crate) const WALL_FACTOR: u32 = 10;

/// How old a thread's CPU clock reading may be to start a call's budget.
const MARK_AGE: Duration = Duration::from_millis(1);

thread_local! {
    /// This thread's last CPU clock reading, and when it was taken.
    static MARK: std::cell::Cell<Option<(Instant, Duration)>> = const { std::cell::Cell::new(None) };
}

/// Which limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spent {
    /// It used its deadline in CPU time.
    Cpu,
    /// It took [`WALL_FACTOR`] times its deadline on the clock.
    Wall,
}

/// The budget of the call in progress on this thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallBudget {
    deadline: Duration,
    wall_start: Instant,
    /// The thread's CPU clock the call's CPU time counts from.
    cpu_start: Duration,
    /// The limit that ended the call, once one has.
    spent: Option<Spent>,
}

impl CallBudget {
    /// A budget of `deadline` CPU time for a call starting now on this
    /// thread.
    pub(crate) fn start(deadline: Duration) -> CallBudget {
        let now = Instant::now();
        let cpu_start = MARK.with(|mark| match mark.get() {
            Some((at, cpu)) if now.saturating_duration_since(at) < MARK_AGE => cpu,
            _ => {
                let cpu = thread_cpu();
                mark.set(Some((now, cpu)));
                cpu
            }
        });
        CallBudget {
            deadline,
            wall_start: now,
            cpu_start,
            spent: None,
        }
    }

    /// At the call's epoch deadline (epochs of `tick`), on the thread that
    /// runs the call: go on for the CPU time left, or end the call, noting
    /// the limit it spent.
    pub(crate) fn on_epoch_deadline(&mut self, tick: Duration) -> UpdateDeadline {
        match self.check(thread_cpu(), Instant::now()) {
            Ok(left) => UpdateDeadline::Continue(ticks(left, tick)),
            Err(spent) => {
                self.spent = Some(spent);
                UpdateDeadline::Interrupt
            }
        }
    }

    /// The error of a call this budget ended.
    pub(crate) fn error(&self) -> PluginError {
        match self.spent {
            Some(Spent::Wall) => PluginError::WallDeadline(self.wall_cap()),
            Some(Spent::Cpu) | None => PluginError::Deadline(self.deadline),
        }
    }

    /// How long the call may still wait at `now`: what is left of its
    /// wall-clock cap. A wait uses no CPU, so the cap is what bounds it (see
    /// [`super::clocks`]).
    pub(crate) fn wait_left(&self, now: Instant) -> Duration {
        let used = now.saturating_duration_since(self.wall_start);
        self.wall_cap().saturating_sub(used)
    }

    /// The wall-clock cap: [`WALL_FACTOR`] times the deadline.
    pub(crate) fn wall_cap(&self) -> Duration {
        self.deadline.saturating_mul(WALL_FACTOR)
    }

    /// How much longer (on the clock, before the next check) the call may
    /// run, or which limit it has spent, with the thread's CPU clock at
    /// `cpu_now` and the clock at `now`.
    fn check(&self, cpu_now: Duration, now: Instant) -> Result<Duration, Spent> {
        let cpu_used = cpu_now.saturating_sub(self.cpu_start);
        let wall_left = self.wait_left(now);
        if wall_left.is_zero() {
            return Err(Spent::Wall);
        }
        let cpu_left = self.deadline.saturating_sub(cpu_used);
        if cpu_left.is_zero() {
            return Err(Spent::Cpu);
        }
        // CPU time never runs faster than the clock: what is left of it is
        // the soonest the call can have spent it.
        Ok(cpu_left.min(wall_left))
    }
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // supported on every Linux herald runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        // Without a CPU clock the budget is the clock's: as if every moment
        // of the call were CPU time (the behaviour of a wall deadline).
        return Instant::now().duration_since(*PROCESS_START);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

static PROCESS_START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A budget of `deadline_ms` that started with the thread's CPU clock
    /// at 1 s.
    fn budget(deadline_ms: u32) -> CallBudget {
        CallBudget {
            deadline: MS * deadline_ms,
            wall_start: Instant::now(),
            cpu_start: Duration::from_secs(1),
            spent: None,
        }
    }

    #[test]
    fn a_call_that_waited_for_a_core_goes_on_for_the_cpu_time_it_has_left() {
        let b = budget(200);
        // 300 ms on the clock, 20 ms of it on a core.
        let at = b.wall_start + MS * 300;
        assert_eq!(b.check(Duration::from_secs(1) + MS * 20, at), Ok(MS * 180));
    }

    #[test]
    fn a_call_that_used_its_deadline_on_a_core_is_ended() {
        let mut b = budget(200);
        let at = b.wall_start + MS * 210;
        assert_eq!(
            b.check(Duration::from_secs(1) + MS * 200, at),
            Err(Spent::Cpu)
        );
        b.spent = Some(Spent::Cpu);
        assert_eq!(b.error(), PluginError::Deadline(MS * 200));
    }

    #[test]
    fn a_call_that_waits_is_ended_at_the_wall_cap() {
        let mut b = budget(200);
        assert_eq!(b.wall_cap(), Duration::from_secs(2));
        // Little CPU used, but only 50 ms left on the clock.
        let near = b.wall_start + MS * 1_950;
        assert_eq!(b.check(Duration::from_secs(1) + MS, near), Ok(MS * 50));
        let at = b.wall_start + Duration::from_secs(2);
        assert_eq!(b.check(Duration::from_secs(1) + MS, at), Err(Spent::Wall));
        b.spent = Some(Spent::Wall);
        assert_eq!(b.error(), PluginError::WallDeadline(Duration::from_secs(2)));
    }

    #[test]
    fn a_budget_starts_from_a_reading_under_a_millisecond_old() {
        let first = CallBudget::start(MS);
        let second = CallBudget::start(MS);
        if second.wall_start.duration_since(first.wall_start) < MARK_AGE {
            assert_eq!(second.cpu_start, first.cpu_start, "the reading is shared");
        }
        std::thread::sleep(MARK_AGE * 2);
        // Work after the reading, then a budget more than MARK_AGE later:
        // it reads the clock again, so the work is not charged to it.
        let t = Instant::now();
        while thread_cpu().saturating_sub(first.cpu_start) < MS * 3 {
            std::hint::black_box(0);
            assert!(t.elapsed() < Duration::from_secs(30), "no CPU time counted");
        }
        let third = CallBudget::start(MS);
        assert!(third.cpu_start >= first.cpu_start + MS * 3);
    }

    #[test]
    fn the_thread_cpu_clock_counts_work_and_not_sleep() {
        let start = thread_cpu();
        std::thread::sleep(MS * 50);
        let slept = thread_cpu().saturating_sub(start);
        assert!(slept < MS * 25, "sleeping used {slept:?}");
        // Spinning advances it (however busy the machine is).
        let start = thread_cpu();
        let t = Instant::now();
        let mut x = 0u64;
        while thread_cpu().saturating_sub(start) < MS * 10 {
            x = std::hint::black_box(x.wrapping_add(1));
            assert!(t.elapsed() < Duration::from_secs(30), "no CPU time counted");
        }
    }
}
