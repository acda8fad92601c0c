//! What a decision counts for in the ring: what its strings and lists hold
//! on the heap (their capacity; the allocator's rounding aside, which
//! BENCHMARKS.md measures). The ring adds its slots, spare ones included
//! ([`SLOT`] each).

use std::mem::size_of;

use super::{Decision, LeftOut, SinkDelivery};
use crate::plugin::PluginStep;

/// One slot of the ring: a decision and its weight.
pub(super) const SLOT: usize = size_of::<(Decision, usize)>();

/// Bytes the heap blocks `d` owns take.
pub(super) fn of(d: &Decision) -> usize {
    d.watch.capacity()
        + d.api_version.capacity()
        + d.kind.capacity()
        + d.namespace.as_ref().map_or(0, String::capacity)
        + d.name.capacity()
        + d.uid.capacity()
        + d.resource_version.capacity()
        + d.reason.capacity()
        + list(&d.plugins, plugin)
        + list(&d.routes, String::capacity)
        + list(&d.left_out, |l: &LeftOut| {
            l.sink.capacity() + l.reason.capacity()
        })
        + list(&d.sinks, sink)
}

fn list<T>(v: &Vec<T>, each: impl Fn(&T) -> usize) -> usize {
    v.capacity() * size_of::<T>() + v.iter().map(each).sum::<usize>()
}

fn plugin(p: &PluginStep) -> usize {
    p.plugin.capacity()
        + p.reason.capacity()
        + list(&p.removed, String::capacity)
        + list(&p.set, String::capacity)
}

fn sink(s: &SinkDelivery) -> usize {
    s.sink.capacity()
        + s.error.as_ref().map_or(0, String::capacity)
        + s.dead_letter.as_ref().map_or(0, String::capacity)
}
