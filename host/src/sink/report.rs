//! What becomes of each notification at each sink, told to whoever follows
//! deliveries (the decisions ring) without the sinks knowing who that is.

/// One sink's attempt at one notification, or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEvent<'a> {
    /// An attempt failed and will be retried.
    Retrying {
        /// Why it failed.
        reason: &'a str,
    },
    /// The endpoint took it.
    Delivered,
    /// Refused or given up: handed to the dead letter `to` (or, with none,
    /// logged).
    DeadLettered {
        /// Why.
        reason: &'a str,
        /// The dead-letter sink.
        to: Option<&'a str>,
    },
}

/// Told about every notification whose [`trace`] is not 0, at every sink
/// it goes to. Called from the sinks' lanes: it must not block.
///
/// [`trace`]: super::Notification::trace
pub trait DeliveryLog: Send + Sync + std::fmt::Debug + 'static {
    /// `sink` did `event` with the notification `trace`.
    fn report(&self, trace: u64, sink: &str, event: DeliveryEvent<'_>);

    /// `sink` did `event` with each of the notifications `traces` (a
    /// batch): one call, so a log behind a lock takes it once.
    fn report_all(&self, traces: &[u64], sink: &str, event: DeliveryEvent<'_>) {
        for t in traces {
            self.report(*t, sink, event);
        }
    }
}
