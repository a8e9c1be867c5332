//! Delivery rules every broker component shares: how often a message is tried, how long it
//! waits between tries, and when it expires. Each component implements them with its broker's
//! own means (pending entries, requeues, offsets); the settings and their names are one.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime};

use futures::FutureExt;

use crate::errors::{Error, MetadataError, Result};
use crate::metadata::{Metadata, Properties};
use crate::pubsub::{
    self, BulkPublishRequest, BulkPublishResponse, FailedEntry, Handler, Message, Outcome, PublishRequest,
};

/// Delivery settings, from component metadata.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Deliveries of one message before it goes to the dead-letter topic (or is discarded):
    /// `maxDeliveryAttempts`, default 10.
    pub max_attempts: u32,
    /// The wait before the first redelivery, doubled each time: `redeliveryBackoff`,
    /// default 50ms.
    pub backoff: Duration,
    /// The longest wait between deliveries: `maxRedeliveryBackoff`, default 5s.
    pub max_backoff: Duration,
    /// The consumer group of subscriptions that name none: `consumerID`, default `default`.
    pub default_group: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            default_group: "default".to_owned(),
        }
    }
}

impl DeliveryConfig {
    /// Reads the settings from component metadata.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let d = Self::default();
        let max_attempts = p.parse::<u32>("maxDeliveryAttempts")?.unwrap_or(d.max_attempts);
        if max_attempts == 0 {
            return Err(MetadataError::Invalid {
                field: "maxDeliveryAttempts".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            max_attempts,
            backoff: p.duration("redeliveryBackoff", Duration::from_millis(1))?.unwrap_or(d.backoff),
            max_backoff: p.duration("maxRedeliveryBackoff", Duration::from_millis(1))?.unwrap_or(d.max_backoff),
            default_group: p.get(pubsub::CONSUMER_ID).map(str::to_owned).unwrap_or(d.default_group),
        })
    }

    /// The wait after failed attempt number `attempt` (1-based): doubling, capped.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What to do with a message after one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Done with: acknowledge it.
    Ack,
    /// Deliver it again, not before this wait.
    Redeliver(Duration),
    /// Done with, unhandled: to the dead-letter topic (if any), then acknowledge.
    DeadLetter,
}

impl DeliveryConfig {
    /// The fate of a message whose attempt number `attempt` ended in `outcome`.
    pub fn settle(&self, outcome: &Outcome, attempt: u32) -> Settle {
        match outcome {
            Outcome::Success => Settle::Ack,
            Outcome::Drop(_) => Settle::DeadLetter,
            Outcome::Retry(_) if attempt >= self.max_attempts => Settle::DeadLetter,
            Outcome::Retry(_) => Settle::Redeliver(self.backoff_after(attempt)),
        }
    }
}

/// Runs `handler` on `message`; a panicking handler is a failed delivery, not a stuck consumer.
pub async fn handle(handler: &Handler, message: Message) -> Outcome {
    AssertUnwindSafe(handler(message))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Outcome::Retry("the handler panicked".into()))
}

/// Bulk publish as one publish per entry: entry ids must be unique and non-empty (else the
/// whole request is invalid), an entry's metadata overrides the request's, and an entry that
/// fails is reported by its id while the others are still published.
pub async fn publish_each<F, Fut>(request: BulkPublishRequest, mut publish: F) -> Result<BulkPublishResponse>
where
    F: FnMut(PublishRequest) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut seen = std::collections::HashSet::new();
    if let Some(bad) = request.entries.iter().find(|e| e.entry_id.is_empty() || !seen.insert(e.entry_id.as_str())) {
        return Err(Error::InvalidArgument(format!(
            "entryId `{}` is duplicated or empty; every entry needs a unique id",
            bad.entry_id
        )));
    }
    let mut failed_entries = Vec::new();
    for entry in request.entries {
        let mut metadata = request.metadata.clone();
        metadata.extend(entry.metadata);
        let one = PublishRequest {
            topic: request.topic.clone(),
            data: entry.event,
            metadata,
            content_type: entry.content_type,
        };
        if let Err(e) = publish(one).await {
            failed_entries.push(FailedEntry { entry_id: entry.entry_id, error: e.to_string() });
        }
    }
    Ok(BulkPublishResponse { failed_entries })
}

/// When a message published with `metadata` at `now` expires: `ttlInSeconds`, where a
/// negative TTL means never. A TTL that is not an integer is an invalid argument.
pub fn expiry(metadata: &Metadata, now: SystemTime) -> Result<Option<SystemTime>> {
    let Some(raw) = metadata.get(pubsub::TTL_IN_SECONDS) else { return Ok(None) };
    let secs: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("metadata `ttlInSeconds` must be an integer, got `{raw}`")))?;
    Ok(u64::try_from(secs).ok().map(|s| now + Duration::from_secs(s)))
}

/// Milliseconds since the Unix epoch, how brokers carry an expiry beside a message.
pub fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// True when a message carrying expiry `expires_at_ms` (Unix milliseconds) has expired at `now`.
pub fn expired(expires_at_ms: Option<u64>, now: SystemTime) -> bool {
    expires_at_ms.is_some_and(|ms| ms <= unix_millis(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = DeliveryConfig {
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(35),
            ..DeliveryConfig::default()
        };
        assert_eq!(c.backoff_after(1), Duration::from_millis(10));
        assert_eq!(c.backoff_after(2), Duration::from_millis(20));
        assert_eq!(c.backoff_after(3), Duration::from_millis(35));
    }

    #[test]
    fn ttl_is_an_integer_and_negative_means_never() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let m = |v: &str| Metadata::from([(pubsub::TTL_IN_SECONDS.to_owned(), v.to_owned())]);
        assert_eq!(expiry(&m("5"), now).ok().flatten(), Some(now + Duration::from_secs(5)));
        assert_eq!(expiry(&m("-1"), now).ok().flatten(), None);
        assert!(expiry(&m("soon"), now).is_err());
        assert!(expired(Some(100_000), now) && !expired(Some(100_001), now) && !expired(None, now));
    }
}
