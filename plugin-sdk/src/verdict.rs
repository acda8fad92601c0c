//! What a plugin decides about an event.

/// A plugin's decision about one event.
///
/// In a chain the first `Drop` wins and later plugins do not see the event;
/// `Route` targets accumulate across plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the event go on to the next plugin and its sinks.
    Pass,
    /// Stop the event here; the reason is logged and counted by the host.
    Drop(String),
    /// Send the event to these sinks (instead of the watched type's defaults).
    Route(Vec<String>),
}

impl Verdict {
    /// `Verdict::Drop` with a reason.
    pub fn drop(reason: impl Into<String>) -> Self {
        Verdict::Drop(reason.into())
    }

    /// `Verdict::Route` to the named sinks.
    pub fn route<I, S>(sinks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Verdict::Route(sinks.into_iter().map(Into::into).collect())
    }
}
