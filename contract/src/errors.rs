//! Errors a component returns, and errors of loading components from YAML.
//!
//! A component error is typed by what went wrong in the contract's terms, so a caller (the
//! HTTP layer, a suite case) can tell an ETag mismatch from a backend outage without parsing
//! strings.

use std::path::PathBuf;

/// What a building-block call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The ETag given does not match the current one (or the key is absent, or a first-write
    /// found the key present). Dapr answers 409 for this on save and delete.
    #[error("possible etag mismatch for key `{key}`: {reason}")]
    EtagMismatch {
        /// The key the write was for.
        key: String,
        /// Why the ETag did not match.
        reason: String,
    },
    /// The ETag is not a value this store could ever have issued. Dapr answers 400.
    #[error("invalid etag value for key `{key}`: {reason}")]
    EtagInvalid {
        /// The key the write was for.
        key: String,
        /// Why the ETag is malformed.
        reason: String,
    },
    /// The named thing does not exist where the contract says absence is an error (a secret,
    /// a file of a binding). A missing state key is not an error: `get` answers `None`.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. ``secret `db-password` ``.
        what: String,
    },
    /// The component does not implement this operation or feature.
    #[error("operation `{operation}` is not supported by this component")]
    Unsupported {
        /// The operation, e.g. `query` or `delete-with-prefix`.
        operation: String,
    },
    /// The request itself is wrong (a non-numeric TTL, an empty prefix, a zero lock expiry).
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// Several items of a bulk request failed; the others were applied.
    #[error("{} item(s) of the bulk request failed: {}", .0.len(), summarize(.0))]
    Bulk(Vec<KeyedError>),
    /// The backend failed (connection, timeout, server error).
    #[error("backend failure: {0}")]
    Backend(String),
    /// The component chose the HTTP status and Dapr error code of its answer (a pluggable
    /// component's "kit error"); a sidecar answers with exactly these.
    #[error("{message} ({code}, HTTP {status})")]
    Coded {
        /// The HTTP status, 100–599.
        status: u16,
        /// The Dapr error code, e.g. `ERR_STATE_GET`.
        code: String,
        /// The message.
        message: String,
    },
}

/// One failed item of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedError {
    /// The key (or entry id) that failed.
    pub key: String,
    /// Why it failed.
    pub error: Error,
}

fn summarize(items: &[KeyedError]) -> String {
    items.iter().map(|item| format!("`{}`: {}", item.key, item.error)).collect::<Vec<_>>().join("; ")
}

impl Error {
    /// A shorthand for [`Error::Unsupported`].
    pub fn unsupported(operation: impl Into<String>) -> Self {
        Self::Unsupported { operation: operation.into() }
    }

    /// A shorthand for [`Error::EtagMismatch`].
    pub fn etag_mismatch(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::EtagMismatch { key: key.into(), reason: reason.into() }
    }

    /// True for both ETag error kinds.
    pub fn is_etag_error(&self) -> bool {
        matches!(self, Self::EtagMismatch { .. } | Self::EtagInvalid { .. })
    }
}

/// The result of a building-block call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A component's metadata is missing a field or holds a value it cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A required field is absent or empty.
    #[error("required metadata field `{field}` is missing{}", hint_suffix(.hint))]
    Missing {
        /// The field's name as Dapr spells it.
        field: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// A field's value cannot be used.
    #[error("metadata field `{field}` has invalid value `{value}`: {reason}")]
    Invalid {
        /// The field's name.
        field: String,
        /// The value given.
        value: String,
        /// What is expected instead.
        reason: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

/// Loading Component YAML and building components from it failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read `{}`: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message, so a plain `{}` tells the whole story).
        cause: std::io::Error,
    },
    /// The file is not valid YAML, or a document does not have the Component shape.
    #[error("`{}`: malformed YAML{}: {message}", path.display(), location_suffix(*line, *column))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when the parser knows it.
        line: Option<usize>,
        /// The 1-based column, when the parser knows it.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A document is a Component but a field is wrong.
    #[error("`{}`: component `{component}`: field `{field}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The component's `metadata.name` (or `<unnamed>`).
        component: String,
        /// The offending field, as a YAML path such as `spec.type`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// `spec.type` names no registered component type.
    #[error(
        "`{}`: component `{component}`: field `spec.type`: unknown component type `{type_name}` (known types: {known})",
        path.display()
    )]
    UnknownType {
        /// The file.
        path: PathBuf,
        /// The component's name.
        component: String,
        /// The type given.
        type_name: String,
        /// The registered types, comma-separated.
        known: String,
    },
    /// The component's metadata is missing a field or has an invalid value.
    #[error("`{}`: component `{component}` (`{type_name}`): {cause}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The component's name.
        component: String,
        /// The component's type.
        type_name: String,
        /// Which field and why.
        cause: MetadataError,
    },
    /// The component was configured correctly but failed to start (backend unreachable).
    #[error("`{}`: component `{component}` (`{type_name}`) failed to initialise: {cause}", path.display())]
    Init {
        /// The file.
        path: PathBuf,
        /// The component's name.
        component: String,
        /// The component's type.
        type_name: String,
        /// The component's error.
        cause: Error,
    },
    /// Two components share a name.
    #[error("`{}`: component `{component}` is defined twice (first in `{}`)", path.display(), first.display())]
    Duplicate {
        /// The file of the second definition.
        path: PathBuf,
        /// The name.
        component: String,
        /// The file of the first definition.
        first: PathBuf,
    },
}

fn location_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}
