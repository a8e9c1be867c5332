//! `certify run --dapr-tests FILE`: runs a components-contrib conformance config as it is. A
//! `tests/config/<block>/tests.yml` lists components by dotted name (`redis.v6` is the folder
//! `redis/v6` beside it, holding one Component YAML), each with its capability `operations`
//! and a `config`. It becomes a spec: one component per entry, named after the entry (Dapr's
//! YAMLs all call theirs `statestore` or `pubsub`), its operations as claims, `badEtag` as a
//! setting. Placeholders are filled as Dapr fills them: `${{NAME}}` from the environment (an
//! error when unset), `$((uuid))` with a fresh UUID; certify's own (`${{redis.host}}`, with a
//! dot) are left for the backends certify starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;
use suites::Claim;

use crate::spec::{Spec, SpecError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestsFile {
    #[serde(default)]
    component_type: Option<String>,
    components: Vec<TestComponent>,
}

#[derive(Debug, Deserialize)]
struct TestComponent {
    component: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    operations: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
}

/// Operations of Dapr's configs that are not claims: what certify does instead.
const NOT_CLAIMS: &[(&str, &str)] = &[
    ("actorStateStore", "ETag and transaction cases already cover what actors need of a store"),
    ("operations", "certify always checks a binding's operation list where the driver can read it"),
];

/// The spec of the components-contrib config `path`, with the names of operations it ignores.
pub fn spec(path: &Path) -> Result<(Spec, Vec<String>), SpecError> {
    let source = path.display().to_string();
    let invalid = |message: String| SpecError::Invalid { path: source.clone(), message };
    let text = std::fs::read_to_string(path).map_err(|cause| SpecError::Read { path: path.to_owned(), cause })?;
    let file: TestsFile = serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut components = Vec::new();
    let mut ignored = Vec::new();
    for (i, test) in file.components.iter().enumerate() {
        let field = format!("components[{i}] (`{}`)", test.component);
        let name = match &test.profile {
            Some(p) => format!("{}-{p}", test.component),
            None => test.component.clone(),
        };
        let mut folder: PathBuf = dir.join(test.component.replace('.', "/"));
        if let Some(profile) = &test.profile {
            folder.push(profile);
        }
        let mut component = component_in(&folder).map_err(|m| invalid(format!("{field}: {m}")))?;
        component["metadata"]["name"] = Value::String(name.clone());
        let mut claims = Vec::new();
        for op in &test.operations {
            match Claim::parse(op) {
                Some(claim) => claims.push(Value::String(claim.as_str().into())),
                None => {
                    let why = NOT_CLAIMS.iter().find(|(n, _)| n == op).map_or("certify has no such claim", |(_, w)| w);
                    ignored.push(format!("{name}: operation `{op}` ({why})"));
                }
            }
        }
        let mut entry = serde_norway::Mapping::new();
        entry.insert("component".into(), component);
        entry.insert("claims".into(), Value::Sequence(claims));
        if let Some(bad_etag) = test.config.get("badEtag") {
            let value = fill(&scalar(bad_etag)).map_err(|m| invalid(format!("{field}.config.badEtag: {m}")))?;
            entry.insert(
                "settings".into(),
                Value::Mapping([("badEtag".into(), Value::String(value))].into_iter().collect()),
            );
        }
        for key in test.config.keys().filter(|k| *k != "badEtag") {
            ignored.push(format!("{name}: config `{key}` (certify's cases take their own values)"));
        }
        components.push(Value::Mapping(entry));
    }
    if let Some(kind) = &file.component_type {
        tracing::debug!(%kind, "Dapr tests.yml");
    }
    let spec_text = serde_norway::to_string(&[("components", components)].into_iter().collect::<BTreeMap<_, _>>())
        .map_err(|e| invalid(e.to_string()))?;
    Ok((Spec::parse(&source, dir, &spec_text)?, ignored))
}

/// The one Component document in `folder` (a file of several documents keeps only
/// `kind: Component` ones, as Dapr's loader does), placeholders filled.
fn component_in(folder: &Path) -> Result<Value, String> {
    let entries = std::fs::read_dir(folder).map_err(|e| format!("cannot read `{}`: {e}", folder.display()))?;
    let mut found = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if !path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let text = fill(&text).map_err(|m| format!("`{}`: {m}", path.display()))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).map_err(|e| format!("`{}`: {e}", path.display()))?;
            if value["kind"] == "Component" {
                found.push(value);
            }
        }
    }
    match <[Value; 1]>::try_from(found) {
        Ok([component]) => Ok(component),
        Err(found) => Err(format!(
            "expected one Component YAML in `{}`, found {} (Dapr keeps one per folder)",
            folder.display(),
            found.len()
        )),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_owned(),
    }
}

/// Fills `${{NAME}}` from the environment and `$((uuid))` with a UUID; `${{a.b}}` (certify's
/// backend placeholders) stay.
fn fill(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after.find("}}").ok_or_else(|| format!("`${{{{` without `}}}}` in `{}`", &rest[start..]))?;
        let name = after[..end].trim();
        if name.contains('.') {
            out.push_str(&rest[start..start + 3 + end + 2]);
        } else {
            let value = std::env::var(name).map_err(|_| format!("required env var is not set: {name}"))?;
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    let mut filled = out;
    while filled.contains("$((uuid))") {
        filled = filled.replacen("$((uuid))", &uuid::Uuid::new_v4().to_string(), 1);
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_as_dapr_fills_them() {
        let path = std::env::var("PATH").expect("PATH is set");
        let filled = fill("p=${{PATH}} url=${{redis.host}} id=$((uuid))").expect("fill");
        let kept = format!("p={path} url=${{{{redis.host}}}} id=");
        assert!(filled.starts_with(&kept), "{filled}");
        assert_eq!(filled.len(), kept.len() + 36);
        let missing = fill("${{CERTIFY_SURELY_UNSET}}").expect_err("unset");
        assert!(missing.contains("CERTIFY_SURELY_UNSET"), "{missing}");
    }
}
