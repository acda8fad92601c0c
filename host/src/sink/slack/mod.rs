//! The Slack sink: Block Kit messages to an Incoming Webhook, rate limited
//! (1 message a second with short bursts by default), optionally grouping
//! the changes of a window into one message.

pub mod encoder;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::config::SinkConfig;
use super::http::{self, Attempt};
use super::notification::Notification;

/// Most notifications grouped into one message.
pub const MAX_GROUP: usize = 20;

/// A built Slack sink.
#[derive(Debug, Clone)]
pub struct Slack {
    client: reqwest::Client,
    url: reqwest::Url,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The grouping window, if any.
    pub group_window: Option<Duration>,
}

impl Slack {
    /// Builds the sink; reads the webhook URL secret. Errors never show it.
    pub fn new(cfg: &SinkConfig) -> Result<Self, String> {
        let secret = cfg
            .webhook_url
            .as_ref()
            .ok_or("webhookUrl: missing")?
            .resolve()
            .map_err(|e| format!("webhookUrl: {e}"))?;
        let url = reqwest::Url::parse(secret.expose())
            .map_err(|_| "webhookUrl: the secret's value is not a URL".to_string())?;
        let rate = NonZeroU32::new(cfg.rate_per_second.unwrap_or(1)).ok_or("ratePerSecond: 0")?;
        let burst = NonZeroU32::new(cfg.burst.unwrap_or(3).max(1)).expect("max(1)");
        Ok(Slack {
            client: http::client(cfg)?,
            url,
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            )),
            group_window: cfg.group_window.filter(|d| !d.is_zero()),
        })
    }

    /// One attempt: waits for the rate limiter, then posts one message.
    pub async fn send(&self, group: &[&Notification]) -> Attempt {
        self.limiter.until_ready().await;
        let body = serde_json::to_vec(&encoder::message(group)).expect("JSON");
        let rb = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        match rb.send().await {
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
}
