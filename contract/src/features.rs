//! Feature flags a component advertises, with Dapr's names on the wire.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A feature name that is not one of the block's known features.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {block} feature `{name}` (known: {known})")]
pub struct UnknownFeature {
    /// The building block.
    pub block: &'static str,
    /// The name given.
    pub name: String,
    /// The known names.
    pub known: String,
}

macro_rules! feature_enum {
    ($(#[$meta:meta])* $name:ident, $block:literal, { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every feature of this block.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name Dapr uses on the wire (`/v1.0/metadata` capabilities, `Features()`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownFeature;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|f| f.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| UnknownFeature {
                        block: $block,
                        name: s.to_owned(),
                        known: Self::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

feature_enum!(
    /// State-store features.
    StateFeature, "state", {
        /// Writes honour ETags (optimistic concurrency) and every item carries one.
        Etag => "ETAG",
        /// Multi-operation transactions are atomic.
        Transactional => "TRANSACTIONAL",
        /// The query API (filter, sort, page) is supported.
        QueryApi => "QUERY_API",
        /// Items may expire (`ttlInSeconds`).
        Ttl => "TTL",
        /// Keys can be deleted by `||`-prefix.
        DeleteWithPrefix => "DELETE_WITH_PREFIX",
        /// Requests may carry a `partitionKey`.
        PartitionKey => "PARTITION_KEY",
        /// Keys can be listed with an SQL LIKE pattern.
        KeysLike => "KEYS_LIKE",
    }
);

feature_enum!(
    /// Pub/sub features.
    PubSubFeature, "pubsub", {
        /// Messages may expire (`ttlInSeconds` publish metadata), enforced by the component.
        MessageTtl => "MESSAGE_TTL",
        /// Topic names in subscriptions may hold wildcards.
        SubscribeWildcards => "SUBSCRIBE_WILDCARDS",
        /// Several messages can be published in one call, with per-entry results.
        BulkPublish => "BULK_PUBSUB",
        /// Messages can be delivered to a handler in batches, with per-entry results.
        BulkSubscribe => "BULK_SUBSCRIBE",
        /// Messages with the same `partitionKey` are delivered in publish order.
        OrderedByKey => "ORDERED_BY_KEY",
        /// Failed deliveries are retried, and then sent to a dead-letter topic when one is set.
        DeadLetter => "DEAD_LETTER",
    }
);

feature_enum!(
    /// Secret-store features.
    SecretFeature, "secretstores", {
        /// A secret may hold several key/value pairs.
        MultipleKeyValuesPerSecret => "MULTIPLE_KEY_VALUES_PER_SECRET",
    }
);

/// A set of features, ordered for stable output.
pub type FeatureSet<F> = BTreeSet<F>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for f in StateFeature::ALL {
            assert_eq!(f.as_str().to_lowercase().parse::<StateFeature>(), Ok(*f));
        }
        let err = "ACID".parse::<StateFeature>().expect_err("unknown");
        assert!(err.to_string().starts_with("unknown state feature `ACID` (known: ETAG, "));
    }
}
