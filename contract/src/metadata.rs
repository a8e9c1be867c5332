//! A component's resolved `spec.metadata`, with typed accessors whose errors name the field.
//!
//! Dapr matches metadata names case-insensitively (`redisHost` and `redishost` are the same
//! field), so lookups here do too.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use crate::errors::MetadataError;

/// Request or response metadata: string keys and values, as on the wire.
pub type Metadata = BTreeMap<String, String>;

/// A component's configuration: the name/value pairs of `spec.metadata`, secrets resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    values: BTreeMap<String, String>,
}

impl Properties {
    /// Properties from name/value pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { values: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Every pair, as given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The raw value of a field, matched case-insensitively; empty values count as absent.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A field that must be present.
    pub fn required(&self, field: &str) -> Result<&str, MetadataError> {
        self.get(field).ok_or_else(|| MetadataError::Missing { field: field.to_owned(), hint: None })
    }

    /// A field parsed with `FromStr`, or `None` when absent.
    pub fn parse<T>(&self, field: &str) -> Result<Option<T>, MetadataError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(field)
            .map(|raw| {
                raw.trim().parse::<T>().map_err(|e| MetadataError::Invalid {
                    field: field.to_owned(),
                    value: raw.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// A boolean field (`true`/`false`/`1`/`0`, any case), or `default` when absent.
    pub fn bool_or(&self, field: &str, default: bool) -> Result<bool, MetadataError> {
        match self.get(field) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(MetadataError::Invalid {
                    field: field.to_owned(),
                    value: raw.to_owned(),
                    reason: "expected `true` or `false`".to_owned(),
                }),
            },
        }
    }

    /// A duration field: a Go-style duration (`500ms`, `2s`, `1m30s`) or a bare number of
    /// `bare_unit`s, or `None` when absent.
    pub fn duration(&self, field: &str, bare_unit: Duration) -> Result<Option<Duration>, MetadataError> {
        let Some(raw) = self.get(field) else {
            return Ok(None);
        };
        let trimmed = raw.trim();
        if let Ok(n) = trimmed.parse::<u64>() {
            return Ok(Some(bare_unit * u32::try_from(n).unwrap_or(u32::MAX)));
        }
        humantime::parse_duration(trimmed).map(Some).map_err(|e| MetadataError::Invalid {
            field: field.to_owned(),
            value: raw.to_owned(),
            reason: format!("expected a duration such as `500ms` or `2s`: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Properties {
        Properties::new([("redisHost", "127.0.0.1:6379"), ("Flag", "TRUE"), ("n", "x"), ("empty", "")])
    }

    #[test]
    fn lookups_ignore_case_and_empty_values() {
        let p = props();
        assert_eq!(p.get("redishost"), Some("127.0.0.1:6379"));
        assert_eq!(p.get("empty"), None);
        assert!(p.bool_or("flag", false).expect("bool"));
        assert!(matches!(p.required("missing"), Err(MetadataError::Missing { .. })));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let err = props().parse::<u32>("n").expect_err("not a number");
        assert_eq!(err.to_string(), "metadata field `n` has invalid value `x`: invalid digit found in string");
    }

    #[test]
    fn durations_accept_bare_numbers_and_units() {
        let p = Properties::new([("a", "250"), ("b", "2s"), ("c", "soon")]);
        assert_eq!(p.duration("a", Duration::from_millis(1)).expect("a"), Some(Duration::from_millis(250)));
        assert_eq!(p.duration("b", Duration::from_millis(1)).expect("b"), Some(Duration::from_secs(2)));
        assert!(p.duration("c", Duration::from_millis(1)).is_err());
    }
}
