//! The commit order. The intake numbers each admitted change within its
//! stream ([`Tickets`]); workers finish them in any order; the commit (on
//! the intake's thread) hands each stream's outcomes on strictly by number ([`Sequencer`]), so a
//! stream's records, checkpoints, outbox entries and HA watermarks see the
//! order the API server sent, exactly as with one thread, while a stream
//! waiting on a slow chain holds up no other stream.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

/// The intake's side: the next number of each stream.
#[derive(Debug, Default)]
pub(super) struct Tickets {
    next: HashMap<String, u64>,
}

impl Tickets {
    /// The number of the next change of `stream`.
    pub(super) fn take(&mut self, stream: &str) -> u64 {
        match self.next.get_mut(stream) {
            Some(n) => {
                *n += 1;
                *n - 1
            }
            None => {
                self.next.insert(stream.to_string(), 1);
                0
            }
        }
    }
}

/// The commit's side: per stream, the next number to hand on and the
/// finished ones waiting for it.
#[derive(Debug)]
pub(super) struct Sequencer<T> {
    streams: HashMap<String, Waiting<T>>,
}

#[derive(Debug)]
struct Waiting<T> {
    next: u64,
    held: BTreeMap<u64, Option<T>>,
}

impl<T> Default for Sequencer<T> {
    fn default() -> Self {
        Sequencer {
            streams: HashMap::new(),
        }
    }
}

impl<T> Sequencer<T> {
    /// Change `seq` of `stream` finished with `item` (`None`: nothing to
    /// hand on, only its place to pass). Hands `out` every item that is now
    /// next in its stream, in order; stops when `out` breaks.
    pub(super) fn finish(
        &mut self,
        stream: &str,
        seq: u64,
        item: Option<T>,
        mut out: impl FnMut(T) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let w = match self.streams.get_mut(stream) {
            Some(w) => w,
            None => self.streams.entry(stream.to_string()).or_insert(Waiting {
                next: 0,
                held: BTreeMap::new(),
            }),
        };
        if seq != w.next {
            // An earlier change of the stream is still in a chain.
            w.held.insert(seq, item);
            return ControlFlow::Continue(());
        }
        w.next += 1;
        if let Some(item) = item {
            out(item)?;
        }
        while let Some(entry) = w.held.first_entry() {
            if *entry.key() != w.next {
                break;
            }
            w.next += 1;
            if let Some(item) = entry.remove() {
                out(item)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Finished changes waiting for an earlier one, over every stream.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.streams.values().map(|w| w.held.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (no dependency for one test).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn each_stream_comes_out_in_intake_order_whatever_order_workers_finish_in() {
        for seed in 1..200u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut tickets = Tickets::default();
            // 300 changes over 4 streams, some with nothing to hand on.
            type Issued = (String, u64, Option<(String, u64)>);
            let mut issued: Vec<Issued> = (0..300)
                .map(|_| {
                    let stream = format!("s{}", next(&mut rng) % 4);
                    let seq = tickets.take(&stream);
                    let item = (!next(&mut rng).is_multiple_of(5)).then(|| (stream.clone(), seq));
                    (stream, seq, item)
                })
                .collect();
            // Workers finish them in any order.
            for i in (1..issued.len()).rev() {
                let j = (next(&mut rng) % (i as u64 + 1)) as usize;
                issued.swap(i, j);
            }
            let mut seq = Sequencer::default();
            let mut out: Vec<(String, u64)> = Vec::new();
            for (stream, n, item) in issued {
                let _ = seq.finish(&stream, n, item, |x| {
                    out.push(x);
                    ControlFlow::Continue(())
                });
            }
            assert_eq!(seq.held(), 0, "everything handed on");
            let mut last: HashMap<String, u64> = HashMap::new();
            for (stream, n) in &out {
                if let Some(prev) = last.insert(stream.clone(), *n) {
                    assert!(*n > prev, "seed {seed}: {stream} {n} after {prev}");
                }
            }
        }
    }

    #[test]
    fn a_stream_waiting_on_a_slow_change_holds_up_no_other_stream() {
        let mut t = Tickets::default();
        let mut seq = Sequencer::default();
        let slow = t.take("cm");
        let after = t.take("cm");
        let other = t.take("deploy");
        let mut out = Vec::new();
        let mut push = |x: &'static str| {
            out.push(x);
            ControlFlow::Continue(())
        };
        let _ = seq.finish("cm", after, Some("cm-2"), &mut push);
        let _ = seq.finish("deploy", other, Some("deploy-1"), &mut push);
        assert_eq!(out, ["deploy-1"]);
        assert_eq!(seq.held(), 1);
        let mut out2 = Vec::new();
        let _ = seq.finish("cm", slow, Some("cm-1"), |x| {
            out2.push(x);
            ControlFlow::Continue(())
        });
        assert_eq!(out2, ["cm-1", "cm-2"]);
    }
}
