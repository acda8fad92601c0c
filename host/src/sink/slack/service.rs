//! A built Slack sink: its client, rate limiter and grouping window.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::config::SlackConfig;
use super::encoder;
use crate::sink::error::BuildError;
use crate::sink::http::{self, Attempt};
use crate::sink::notification::Notification;

/// Most notifications grouped into one message.
pub(crate) const MAX_GROUP: usize = 20;

/// A built Slack sink.
#[derive(Debug, Clone)]
pub(crate) struct Slack {
    client: reqwest::Client,
    url: reqwest::Url,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The grouping window, if any.
    pub group_window: Option<Duration>,
}

impl Slack {
    /// Builds the sink; reads the webhook URL secret.
    ///
    /// # Errors
    /// The secret cannot be read or is not a URL (errors never show it).
    pub(crate) fn new(cfg: &SlackConfig) -> Result<Self, BuildError> {
        let secret = |error| BuildError::Secret {
            field: "webhookUrl".into(),
            error,
        };
        let value = match &cfg.webhook_url {
            Some(r) => r.resolve().map_err(secret)?,
            None => return Err(secret(crate::sink::secret::SecretError::Neither)),
        };
        let url = reqwest::Url::parse(value.expose()).map_err(|_| BuildError::SlackUrl)?;
        // Validation keeps the rate at 1 or more; a burst of 0 means 1.
        let rate = NonZeroU32::new(cfg.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(cfg.burst).unwrap_or(NonZeroU32::MIN);
        Ok(Slack {
            client: http::client(cfg.timeout, cfg.tls.as_ref())?,
            url,
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            )),
            group_window: cfg.group_window.filter(|d| !d.is_zero()),
        })
    }

    /// One attempt: waits for the rate limiter, then posts one message.
    pub(crate) async fn send(&self, group: &[&Notification]) -> Attempt {
        self.limiter.until_ready().await;
        match self.request(group).send().await {
            Ok(resp) => match http::classify(resp).await {
                // Slack answers 404 `no_service` and 410 `channel_is_archived`
                // for hooks that will never work again.
                Attempt::Rejected { reason } if reason.starts_with("HTTP 404") => {
                    Attempt::Gone { reason }
                }
                other => other,
            },
            Err(err) => http::transport_error(err),
        }
    }

    /// The request that posts `group` as one message (what
    /// [`Slack::send`] sends).
    pub fn request(&self, group: &[&Notification]) -> reqwest::RequestBuilder {
        let body = serde_json::to_vec(&encoder::message(group)).expect("JSON");
        self.client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }
}
