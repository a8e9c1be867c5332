//! Dapr `Component` YAML: parsing and validation, with errors that name the file, the
//! component and the field.
//!
//! Documents are walked by hand rather than derived, so that a wrong field is reported by its
//! YAML path (`spec.metadata[2].value`) instead of by a serde message without one.

use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::errors::LoadError;

/// The only `apiVersion` Dapr uses for components.
pub const COMPONENT_API_VERSION: &str = "dapr.io/v1alpha1";

/// A `Component` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentManifest {
    /// The file it came from.
    pub source: PathBuf,
    /// `metadata.name`: how applications address the component.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// `spec.type`, e.g. `state.redis`.
    pub type_name: String,
    /// `spec.version`, e.g. `v1`.
    pub version: String,
    /// `spec.metadata`, in order.
    pub metadata: Vec<MetadataEntry>,
    /// `auth.secretStore`: where `secretKeyRef`s are resolved.
    pub secret_store: Option<String>,
    /// `spec.ignoreErrors`: a component that fails to start is skipped instead of fatal.
    pub ignore_errors: bool,
    /// `scopes`: the app ids allowed to use it; empty means all.
    pub scopes: Vec<String>,
}

/// One `spec.metadata` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    /// The field's name.
    pub name: String,
    /// Where its value comes from.
    pub value: MetadataValue,
}

/// A metadata value: inline, or a reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataValue {
    /// An inline value, scalars rendered as strings.
    Plain(String),
    /// `secretKeyRef: {name, key}`, resolved through the component's secret store.
    SecretRef {
        /// The secret's name.
        name: String,
        /// The key inside the secret; defaults to the secret's name.
        key: String,
    },
}

impl MetadataEntry {
    /// True when the value is a secret (and must be redacted in output).
    pub fn is_secret(&self) -> bool {
        matches!(self.value, MetadataValue::SecretRef { .. })
    }
}

/// A YAML document that is not a Component (a Subscription, a Configuration, ...), kept for
/// loaders of those kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherDocument {
    /// The file it came from.
    pub source: PathBuf,
    /// Its `kind`.
    pub kind: String,
    /// The whole document.
    pub value: Value,
}

/// Everything read from resource files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// The Component documents.
    pub components: Vec<ComponentManifest>,
    /// Every other document.
    pub others: Vec<OtherDocument>,
}

impl Resources {
    /// Reads resource files: each path is a YAML file, or a directory whose `*.yaml` and
    /// `*.yml` files are read in name order.
    pub fn load(paths: &[PathBuf]) -> Result<Self, LoadError> {
        let mut resources = Resources::default();
        for path in paths {
            for file in yaml_files(path)? {
                let text =
                    std::fs::read_to_string(&file).map_err(|cause| LoadError::Read { path: file.clone(), cause })?;
                resources.parse_into(&file, &text)?;
            }
        }
        Ok(resources)
    }

    /// Parses YAML text (one or more documents) that came from `source`.
    pub fn parse(source: &Path, text: &str) -> Result<Self, LoadError> {
        let mut resources = Resources::default();
        resources.parse_into(source, text)?;
        Ok(resources)
    }

    fn parse_into(&mut self, source: &Path, text: &str) -> Result<(), LoadError> {
        for document in serde_norway::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(document).map_err(|e| {
                let location = e.location();
                LoadError::Malformed {
                    path: source.to_owned(),
                    line: location.as_ref().map(|l| l.line()),
                    column: location.as_ref().map(|l| l.column()),
                    message: e.to_string(),
                }
            })?;
            if value.is_null() {
                continue; // An empty document, e.g. after a trailing `---`.
            }
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind == "Component" {
                self.components.push(parse_component(source, &value)?);
            } else {
                self.others.push(OtherDocument { source: source.to_owned(), kind: kind.to_owned(), value });
            }
        }
        Ok(())
    }
}

fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_error = |cause| LoadError::Read { path: path.to_owned(), cause };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let file = entry.map_err(read_error)?.path();
        let is_yaml = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if is_yaml && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

struct Walker<'a> {
    source: &'a Path,
    component: String,
}

impl Walker<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> LoadError {
        LoadError::Invalid {
            path: self.source.to_owned(),
            component: self.component.clone(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn string(&self, value: Option<&Value>, field: &str) -> Result<Option<String>, LoadError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.invalid(field, format!("expected a string, got {}", describe(other)))),
        }
    }

    fn required(&self, value: Option<&Value>, field: &str, example: &str) -> Result<String, LoadError> {
        match self.string(value, field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.invalid(field, format!("is required (for example `{example}`)"))),
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn parse_component(source: &Path, doc: &Value) -> Result<ComponentManifest, LoadError> {
    let name =
        doc.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
    let w = Walker { source, component: name.clone() };
    let api_version = w.required(doc.get("apiVersion"), "apiVersion", COMPONENT_API_VERSION)?;
    if api_version != COMPONENT_API_VERSION {
        return Err(w.invalid(
            "apiVersion",
            format!("unsupported apiVersion `{api_version}` (components use `{COMPONENT_API_VERSION}`)"),
        ));
    }
    let metadata = doc.get("metadata");
    let name = w.required(metadata.and_then(|m| m.get("name")), "metadata.name", "statestore")?;
    let namespace = w.string(metadata.and_then(|m| m.get("namespace")), "metadata.namespace")?;
    let spec = match doc.get("spec") {
        Some(spec @ Value::Mapping(_)) => spec,
        Some(other) => return Err(w.invalid("spec", format!("expected a mapping, got {}", describe(other)))),
        None => return Err(w.invalid("spec", "is required (with `type`, `version` and `metadata`)")),
    };
    let type_name = w.required(spec.get("type"), "spec.type", "state.in-memory")?;
    if !type_name.contains('.') {
        return Err(w.invalid(
            "spec.type",
            format!("`{type_name}` has no building-block prefix (expected e.g. `state.{type_name}`)"),
        ));
    }
    let version = w.string(spec.get("version"), "spec.version")?.unwrap_or_else(|| "v1".to_owned());
    let ignore_errors = match spec.get("ignoreErrors") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => {
            return Err(w.invalid("spec.ignoreErrors", format!("expected a boolean, got {}", describe(other))));
        }
    };
    let entries = match spec.get("metadata") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => {
            items.iter().enumerate().map(|(i, item)| parse_entry(&w, i, item)).collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => {
            return Err(w.invalid(
                "spec.metadata",
                format!("expected a list of `{{name, value}}` entries, got {}", describe(other)),
            ));
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        if let Some(j) = entries[..i].iter().position(|e| e.name.eq_ignore_ascii_case(&entry.name)) {
            return Err(w.invalid(
                &format!("spec.metadata[{i}].name"),
                format!("`{}` is already set by spec.metadata[{j}]", entry.name),
            ));
        }
    }
    let secret_store = w.string(doc.get("auth").and_then(|a| a.get("secretStore")), "auth.secretStore")?;
    let scopes = match doc.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| w.required(Some(v), &format!("scopes[{i}]"), "myapp"))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(w.invalid("scopes", format!("expected a list of app ids, got {}", describe(other)))),
    };
    Ok(ComponentManifest {
        source: source.to_owned(),
        name,
        namespace,
        type_name,
        version,
        metadata: entries,
        secret_store,
        ignore_errors,
        scopes,
    })
}

fn parse_entry(w: &Walker<'_>, index: usize, item: &Value) -> Result<MetadataEntry, LoadError> {
    let field = format!("spec.metadata[{index}]");
    if !item.is_mapping() {
        return Err(w.invalid(&field, format!("expected a mapping with `name` and `value`, got {}", describe(item))));
    }
    let name = w.required(item.get("name"), &format!("{field}.name"), "redisHost")?;
    let value = match (item.get("value"), item.get("secretKeyRef")) {
        (Some(_), Some(_)) => {
            return Err(w.invalid(&field, format!("`{name}` has both `value` and `secretKeyRef`; keep one")));
        }
        (None, None) => {
            return Err(w.invalid(&field, format!("`{name}` needs a `value` or a `secretKeyRef`")));
        }
        (Some(value), None) => MetadataValue::Plain(scalar_text(w, &format!("{field}.value"), value)?),
        (None, Some(reference)) => {
            let ref_field = format!("{field}.secretKeyRef");
            let secret = w.required(reference.get("name"), &format!("{ref_field}.name"), "redis-secret")?;
            let key = w
                .string(reference.get("key"), &format!("{ref_field}.key"))?
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| secret.clone());
            MetadataValue::SecretRef { name: secret, key }
        }
    };
    Ok(MetadataEntry { name, value })
}

fn scalar_text(w: &Walker<'_>, field: &str, value: &Value) -> Result<String, LoadError> {
    Ok(match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        // Dapr's dynamic values accept structured values and hand them on as JSON.
        Value::Sequence(_) | Value::Mapping(_) => serde_json::to_string(value)
            .map_err(|e| w.invalid(field, format!("cannot render the value as JSON: {e}")))?,
        Value::Tagged(_) => return Err(w.invalid(field, "tagged YAML values are not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Resources, LoadError> {
        Resources::parse(Path::new("components.yaml"), text)
    }

    fn check_error(text: &str, expected: &str) {
        let err = parse(text).expect_err("should be rejected").to_string();
        assert_eq!(err, expected);
    }

    const VALID: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: 127.0.0.1:6379
  - name: redisPassword
    secretKeyRef:
      name: redis
      key: password
  - name: maxRetries
    value: 3
auth:
  secretStore: local
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders
"#;

    #[test]
    fn parses_components_and_keeps_other_documents() {
        let r = parse(VALID).expect("valid");
        assert_eq!(r.components.len(), 1);
        assert_eq!(r.others.len(), 1);
        assert_eq!(r.others[0].kind, "Subscription");
        let c = &r.components[0];
        assert_eq!((c.name.as_str(), c.type_name.as_str(), c.version.as_str()), ("statestore", "state.redis", "v1"));
        assert_eq!(c.secret_store.as_deref(), Some("local"));
        assert_eq!(c.metadata[1].value, MetadataValue::SecretRef { name: "redis".into(), key: "password".into() });
        assert_eq!(c.metadata[2].value, MetadataValue::Plain("3".into()));
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let err = parse("kind: Component\nmetadata: [unclosed\n").expect_err("malformed").to_string();
        assert!(err.starts_with("`components.yaml`: malformed YAML at line "), "{err}");
    }

    #[test]
    fn invalid_fields_name_the_file_component_and_field() {
        let base = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: store\n";
        check_error(
            &format!("{base}spec:\n  version: v1\n"),
            "`components.yaml`: component `store`: field `spec.type`: is required (for example `state.in-memory`)",
        );
        check_error(
            &format!("{base}spec:\n  type: redis\n"),
            "`components.yaml`: component `store`: field `spec.type`: `redis` has no building-block prefix (expected e.g. `state.redis`)",
        );
        check_error(
            &format!("{base}spec:\n  type: state.redis\n  metadata:\n  - name: a\n"),
            "`components.yaml`: component `store`: field `spec.metadata[0]`: `a` needs a `value` or a `secretKeyRef`",
        );
        check_error(
            &format!("{base}spec:\n  type: state.redis\n  metadata:\n  - value: x\n"),
            "`components.yaml`: component `store`: field `spec.metadata[0].name`: is required (for example `redisHost`)",
        );
        check_error(
            &format!(
                "{base}spec:\n  type: state.redis\n  metadata:\n  - name: a\n    value: 1\n  - name: A\n    value: 2\n"
            ),
            "`components.yaml`: component `store`: field `spec.metadata[1].name`: `A` is already set by spec.metadata[0]",
        );
        check_error(
            "apiVersion: dapr.io/v2\nkind: Component\nmetadata:\n  name: s\nspec:\n  type: state.x\n",
            "`components.yaml`: component `s`: field `apiVersion`: unsupported apiVersion `dapr.io/v2` (components use `dapr.io/v1alpha1`)",
        );
        check_error(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nspec:\n  type: state.x\n",
            "`components.yaml`: component `<unnamed>`: field `metadata.name`: is required (for example `statestore`)",
        );
    }
}
