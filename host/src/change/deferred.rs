//! [`Deferred`]: an edit of a [`Doc`](super::Doc) waiting for its tree —
//! what it does to a tree, which reads it can change, and (for removals of
//! paths with `*`) which pointers it removes in the state it is made on.
//! [`splice::settle`](super::splice::settle) makes the same edits on bytes.

use herald_plugin_sdk::pointer::{self, Step, Undo};
use serde_json::Value;

use super::raw;

/// An edit waiting for the tree (see [`Doc::defer`](super::Doc::defer)).
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Remove the value at the pointer, if any.
    Remove(String),
    /// Replace the value at the pointer where there is one; create nothing.
    Replace(String, Value),
    /// Remove every value the paths reach (`*`: every key of a map, every
    /// item of an array) in the state the edit is made on, as one edit
    /// ([`Deferred::removals`]): `prune`'s paths on a previous state, whose
    /// keys are then only read if something reads that state.
    RemovePaths(Vec<Vec<Step>>),
}

impl Deferred {
    /// Whether this edit can change what a read of `pointer` (its tokens
    /// `read`) finds.
    pub(super) fn overlaps(&self, pointer: &str, read: &[impl AsRef<str>]) -> bool {
        match self {
            Deferred::Remove(p) => raw::overlaps(p, pointer, true),
            Deferred::Replace(p, _) => raw::overlaps(p, pointer, false),
            Deferred::RemovePaths(paths) => paths.iter().any(|steps| reaches(steps, read)),
        }
    }

    /// The pointers `paths` reach, `keys` naming the keys (or indices) of
    /// the map (or array) at a pointer, in the order that removes them one
    /// after another safely; identity fields (which no edit may touch) left
    /// out.
    pub(crate) fn removals(
        paths: &[Vec<Step>],
        mut keys: impl FnMut(&str) -> Option<Vec<String>>,
    ) -> Vec<String> {
        let mut all = Vec::new();
        for steps in paths {
            pointer::removal_candidates(&mut keys, steps, &mut all);
        }
        all.retain(|p| pointer::check_writable(p).is_ok());
        pointer::removal_order(&mut all);
        all
    }

    /// Applies the edit, pushing its undo steps (for what it changed).
    pub(crate) fn apply(self, v: &mut Value, undo: &mut Vec<Undo>) {
        match self {
            Deferred::Remove(p) => {
                if let Some(step) = pointer::remove(v, &p) {
                    undo.push(step);
                }
            }
            Deferred::Replace(p, value) => {
                // A pointer was checked when the edit was deferred.
                let _ = pointer::replace(v, &p, value, undo);
            }
            Deferred::RemovePaths(paths) => {
                let at = Deferred::removals(&paths, |p| pointer::keys(pointer::get(v, p)?));
                for p in at {
                    if let Some(step) = pointer::remove(v, &p) {
                        undo.push(step);
                    }
                }
            }
        }
    }
}

/// Whether a removal of what `steps` reach can change what a read of the
/// pointer `read` (its tokens) finds: a value it may remove lies within the
/// read one or around it, or it may remove an item of an array the read goes
/// through (the items after it move). A `*` matches any token.
fn reaches(steps: &[Step], read: &[impl AsRef<str>]) -> bool {
    let matches = |s: &Step, t: &str| match s {
        Step::Any => true,
        Step::Key(k) => k == t,
    };
    let along = |steps: &[Step]| steps.iter().zip(read).all(|(s, t)| matches(s, t.as_ref()));
    if along(steps) {
        return true;
    }
    match steps.split_last() {
        Some((last, parent)) => {
            let item = match last {
                Step::Any => true,
                Step::Key(k) => raw::index(k).is_some(),
            };
            item && parent.len() < read.len() && along(parent)
        }
        None => false,
    }
}
