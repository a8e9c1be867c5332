//! The certification spec: which components, what they claim, their settings, which drivers,
//! and the run profile. Validated up front; every error names the file, the line (when the
//! YAML parser knows it) and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use contract::{ComponentManifest, Resources};
use serde::Deserialize;
use sha2::Digest;
use suites::{Claim, Settings};

use crate::bench::profile::{BenchProfile, Operation};
pub use crate::driver::DriverKind;

/// The JSON Schema of a spec file, generated from the types that parse it (checked in as
/// `specs/spec.schema.json`; `certify schema` prints it).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(SpecFile)).unwrap_or_default()
}

/// The spec `certify run` uses without `--spec`: the in-memory store, every claim, both drivers.
pub const BUILTIN_SPEC: &str = include_str!("builtin-spec.yaml");

fn default_drivers() -> Vec<DriverKind> {
    vec![DriverKind::InProcess, DriverKind::Http, DriverKind::Grpc]
}

fn default_concurrency() -> usize {
    8
}

/// A certification spec (YAML): the components to certify, what they claim, their settings,
/// the drivers, where backends come from, and the run and benchmark profiles.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(title = "certify spec")]
#[serde(deny_unknown_fields)]
struct SpecFile {
    components: Vec<SpecComponent>,
    #[serde(default)]
    backends: BackendsSpec,
    #[serde(default)]
    profile: RunProfile,
    #[serde(default)]
    bench: Option<BenchSpec>,
}

/// The benchmark profile of a spec.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BenchSpec {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    warmup: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    payload_bytes: Option<usize>,
    #[serde(default)]
    operations: Option<Vec<String>>,
}

/// A latency budget as written in a spec: durations like `2ms`, a throughput floor per second.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct BudgetSpec {
    #[serde(default)]
    p50: Option<String>,
    #[serde(default)]
    p99: Option<String>,
    #[serde(default)]
    p999: Option<String>,
    #[serde(default)]
    throughput: Option<f64>,
}

/// The spec's backend settings; the environment overrides them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendsSpec {
    /// Redis.
    #[serde(default)]
    pub redis: Option<BackendSpec>,
    /// PostgreSQL.
    #[serde(default)]
    pub postgres: Option<BackendSpec>,
    /// RabbitMQ.
    #[serde(default)]
    pub rabbitmq: Option<BackendSpec>,
    /// Kafka.
    #[serde(default)]
    pub kafka: Option<BackendSpec>,
}

/// One backend's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// The container image for the testcontainers provider.
    #[serde(default)]
    pub image: Option<String>,
    /// A running server's URL for the external provider.
    #[serde(default)]
    pub url: Option<String>,
}

impl BackendsSpec {
    /// As the fixtures' settings.
    pub fn settings(&self) -> std::collections::BTreeMap<fixtures::BackendKind, fixtures::Settings> {
        use fixtures::BackendKind as K;
        [(K::Redis, &self.redis), (K::Postgres, &self.postgres), (K::RabbitMq, &self.rabbitmq), (K::Kafka, &self.kafka)]
            .into_iter()
            .filter_map(|(k, s)| {
                s.as_ref().map(|s| (k, fixtures::Settings { image: s.image.clone(), url: s.url.clone() }))
            })
            .collect()
    }
}

/// One component: its Component document inline (`component`) or in a file (`file`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SpecComponent {
    /// The Component document (`apiVersion: dapr.io/v1alpha1`, `kind: Component`).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    component: Option<serde_norway::Value>,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    claims: Vec<Claim>,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    drivers: Option<Vec<DriverKind>>,
    #[serde(default)]
    budgets: BTreeMap<String, BudgetSpec>,
    #[serde(default)]
    pluggable: Option<PluggableSpec>,
}

/// Where a pluggable component listens.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct PluggableSpec {
    socket: PathBuf,
}

/// How the run is executed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunProfile {
    /// Cases running at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl Default for RunProfile {
    fn default() -> Self {
        Self { concurrency: default_concurrency() }
    }
}

/// One component to certify.
#[derive(Debug, Clone)]
pub struct SpecEntry {
    /// Its Component document.
    pub manifest: ComponentManifest,
    /// What it claims.
    pub claims: BTreeSet<Claim>,
    /// Its settings.
    pub settings: Settings,
    /// The drivers to run it through.
    pub drivers: Vec<DriverKind>,
    /// For a pluggable component: its socket. Its type is `<block>.<socket name>`, as daprd
    /// names it, and the drivers are `grpc` and `http` (through the reference sidecar).
    pub pluggable: Option<PathBuf>,
}

/// A validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it came from (`built-in`, or a path).
    pub source: String,
    /// `sha256:<hex>` of its text, so a report says exactly which spec it certified.
    pub digest: String,
    /// The components, in spec order.
    pub entries: Vec<SpecEntry>,
    /// Backend settings.
    pub backends: BackendsSpec,
    /// Latency budgets by component and operation.
    pub budgets: BTreeMap<String, BTreeMap<String, reports::Budget>>,
    /// The benchmark profile.
    pub bench: BenchProfile,
    /// The run profile.
    pub profile: RunProfile,
}

/// A spec that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read the spec `{}`: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The YAML is malformed or a field is wrong; the message carries the field and line.
    #[error("`{path}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, where.
        message: String,
    },
    /// A component's YAML is wrong.
    #[error(transparent)]
    Component(#[from] contract::LoadError),
}

impl Spec {
    /// Reads and validates a spec file; relative `file:` entries resolve against its folder.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|cause| SpecError::Read { path: path.to_owned(), cause })?;
        Spec::parse(&path.display().to_string(), path.parent().unwrap_or(Path::new(".")), &text)
    }

    /// The built-in spec.
    pub fn builtin() -> Result<Spec, SpecError> {
        Spec::parse("built-in", Path::new("."), BUILTIN_SPEC)
    }

    /// Parses spec text named `source`, resolving `file:` entries against `dir`.
    pub fn parse(source: &str, dir: &Path, text: &str) -> Result<Spec, SpecError> {
        let invalid = |message: String| SpecError::Invalid { path: source.to_owned(), message };
        let file: SpecFile = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.components.is_empty() {
            return Err(invalid("field `components`: the spec certifies nothing; list at least one component".into()));
        }
        if file.profile.concurrency == 0 {
            return Err(invalid("field `profile.concurrency`: must be at least 1".into()));
        }
        let bench = match &file.bench {
            Some(b) => bench_profile(b).map_err(|m| invalid(format!("field `bench`: {m}")))?,
            None => BenchProfile::default(),
        };
        let mut budgets = BTreeMap::new();
        let mut entries = Vec::new();
        for (i, c) in file.components.into_iter().enumerate() {
            let field = format!("components[{i}]");
            let resources = match (&c.component, &c.file) {
                (Some(inline), None) => {
                    let yaml = serde_norway::to_string(inline)
                        .map_err(|e| invalid(format!("field `{field}.component`: {e}")))?;
                    Resources::parse(Path::new(&format!("{source}#{field}.component")), &yaml)?
                }
                (None, Some(path)) => Resources::load(&[dir.join(path)])?,
                _ => {
                    return Err(invalid(format!(
                        "field `{field}`: give exactly one of `component` (an inline Component) or `file` (a Component YAML path)"
                    )));
                }
            };
            let [mut manifest] = <[ComponentManifest; 1]>::try_from(resources.components).map_err(|found| {
                invalid(format!("field `{field}`: expected exactly one Component document, found {}", found.len()))
            })?;
            // `${{spec.dir}}`: the spec's own folder, so fixtures beside it are found from anywhere.
            let spec_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
            for entry in &mut manifest.metadata {
                if let contract::manifest::MetadataValue::Plain(value) = &mut entry.value {
                    *value = value.replace("${{spec.dir}}", &spec_dir.to_string_lossy());
                }
            }
            let socket = c.pluggable.as_ref().map(|p| {
                let text = p.socket.to_string_lossy().replace("${{spec.dir}}", &spec_dir.to_string_lossy());
                dir.join(text)
            });
            let drivers = match (&socket, c.drivers) {
                (_, Some(d)) => d,
                (Some(_), None) => vec![DriverKind::Pluggable, DriverKind::Http],
                (None, None) => default_drivers(),
            };
            let allowed = match &socket {
                Some(_) => "`pluggable`, `http`, `grpc`",
                None => "`in-process`, `http`, `grpc`, `faults`",
            };
            if drivers.is_empty() {
                return Err(invalid(format!("field `{field}.drivers`: list at least one of {allowed}")));
            }
            let misplaced = |d: &&DriverKind| match socket {
                Some(_) => !matches!(d, DriverKind::Pluggable | DriverKind::Http | DriverKind::Grpc),
                None => **d == DriverKind::Pluggable,
            };
            if let Some(wrong) = drivers.iter().find(misplaced) {
                return Err(invalid(format!(
                    "field `{field}.drivers`: `{}` does not apply to this component (it can use {allowed}; `pluggable` is for components with `pluggable`)",
                    wrong.as_str()
                )));
            }
            if let Some(socket) = &socket {
                let stem = socket.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let expected: Vec<String> = ["state", "pubsub", "bindings", "secretstores"]
                    .iter()
                    .map(|block| format!("{block}.{stem}"))
                    .collect();
                if !expected.contains(&manifest.type_name) {
                    return Err(invalid(format!(
                        "field `{field}.pluggable`: the component on {} has the type `<block>.{stem}` (daprd names it after the socket), e.g. `{}`; found `{}`",
                        socket.display(),
                        expected[0],
                        manifest.type_name
                    )));
                }
            }
            if entries.iter().any(|e: &SpecEntry| e.manifest.name == manifest.name) {
                return Err(invalid(format!("field `{field}`: component `{}` is listed twice", manifest.name)));
            }
            let mut component_budgets = BTreeMap::new();
            for (op, b) in &c.budgets {
                if Operation::parse(op).is_none() {
                    let known = Operation::ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ");
                    return Err(invalid(format!("field `{field}.budgets.{op}`: unknown operation (known: {known})")));
                }
                let budget = budget(b).map_err(|m| invalid(format!("field `{field}.budgets.{op}`: {m}")))?;
                component_budgets.insert(op.clone(), budget);
            }
            budgets.insert(manifest.name.clone(), component_budgets);
            // Claims are checked against the blocks claims know; a new block's are its own.
            let fits = |claim: &Claim| claim.blocks().iter().any(|b| b.owns(&manifest.type_name));
            let known_block = Claim::ALL.iter().any(fits);
            if let Some(wrong) = c.claims.iter().find(|claim| known_block && !fits(claim)) {
                let fits: Vec<&str> =
                    Claim::ALL.iter().filter(|claim| fits(claim)).map(|claim| claim.as_str()).collect();
                return Err(invalid(format!(
                    "field `{field}.claims`: `{wrong}` is not a claim a {} component can make (it can claim: {})",
                    manifest.type_name,
                    if fits.is_empty() { "nothing".into() } else { fits.join(", ") }
                )));
            }
            let drivers: BTreeSet<DriverKind> = drivers.into_iter().collect();
            entries.push(SpecEntry {
                manifest,
                claims: c.claims.into_iter().collect(),
                settings: c.settings,
                drivers: drivers.into_iter().collect(),
                pluggable: socket,
            });
        }
        let digest = sha2::Sha256::digest(text.as_bytes()).iter().fold(String::from("sha256:"), |mut hex, byte| {
            hex.push_str(&format!("{byte:02x}"));
            hex
        });
        Ok(Spec {
            source: source.to_owned(),
            digest,
            entries,
            backends: file.backends,
            budgets,
            bench,
            profile: file.profile,
        })
    }
}

fn micros(field: &str, text: &Option<String>) -> Result<Option<f64>, String> {
    text.as_ref()
        .map(|t| {
            humantime::parse_duration(t.trim())
                .map(|d| d.as_secs_f64() * 1e6)
                .map_err(|e| format!("`{field}: {t}` is not a duration such as `2ms` ({e})"))
        })
        .transpose()
}

fn budget(b: &BudgetSpec) -> Result<reports::Budget, String> {
    Ok(reports::Budget {
        p50_us: micros("p50", &b.p50)?,
        p99_us: micros("p99", &b.p99)?,
        p999_us: micros("p999", &b.p999)?,
        min_throughput: b.throughput,
    })
}

fn bench_profile(b: &BenchSpec) -> Result<BenchProfile, String> {
    use crate::bench::load::Mode;
    let d = BenchProfile::default();
    let duration = |field: &str, text: &Option<String>, default: std::time::Duration| match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t.trim())
            .map_err(|e| format!("`{field}: {t}` is not a duration such as `3s` ({e})")),
    };
    let mode = match b.mode.as_deref() {
        None | Some("fixed-rate") => match b.rate {
            Some(r) if r <= 0.0 => return Err(format!("`rate: {r}` must be positive")),
            Some(r) => Mode::FixedRate(r),
            None => d.load.mode,
        },
        Some("closed-loop") => Mode::ClosedLoop,
        Some(other) => return Err(format!("`mode: {other}` is not `fixed-rate` or `closed-loop`")),
    };
    let operations = match &b.operations {
        None => d.operations,
        Some(names) => names
            .iter()
            .map(|n| Operation::parse(n).ok_or_else(|| format!("unknown operation `{n}`")))
            .collect::<Result<_, _>>()?,
    };
    Ok(BenchProfile {
        load: crate::bench::load::Load {
            mode,
            concurrency: b.concurrency.unwrap_or(d.load.concurrency).max(1),
            warmup: duration("warmup", &b.warmup, d.load.warmup)?,
            duration: duration("duration", &b.duration, d.load.duration)?,
        },
        payload_bytes: b.payload_bytes.unwrap_or(d.payload_bytes),
        operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let err = Spec::parse("spec.yaml", Path::new("."), text).expect_err("invalid").to_string();
        assert!(err.contains(expected), "`{err}` lacks `{expected}`");
    }

    const COMPONENT: &str = "  component:\n    apiVersion: dapr.io/v1alpha1\n    kind: Component\n    metadata: {name: s}\n    spec: {type: state.in-memory, version: v1}\n";

    #[test]
    fn the_builtin_spec_is_valid() {
        let spec = Spec::builtin().expect("valid");
        assert_eq!(spec.entries.len(), 9);
        let state_claims = Claim::ALL.iter().filter(|c| c.blocks().contains(&contract::Block::STATE)).count();
        assert_eq!(spec.entries[0].claims.len(), state_claims);
    }

    #[test]
    fn pluggable_components_are_typed_after_their_socket_and_driven_over_their_socket_and_http() {
        let plug = "  component:\n    apiVersion: dapr.io/v1alpha1\n    kind: Component\n    metadata: {name: p}\n    spec: {type: state.my-store, version: v1}\n  pluggable: {socket: sockets/my-store.sock}\n";
        let spec =
            Spec::parse("spec.yaml", Path::new("/specs"), &format!("components:\n-{}", &plug[1..])).expect("valid");
        assert_eq!(spec.entries[0].drivers, [DriverKind::Http, DriverKind::Pluggable]);
        assert_eq!(spec.entries[0].pluggable.as_deref(), Some(Path::new("/specs/sockets/my-store.sock")));
        check(
            &format!("components:\n-{}", plug[1..].replace("state.my-store", "state.redis")),
            "the component on ./sockets/my-store.sock has the type `<block>.my-store`",
        );
        check(
            &format!("components:\n-{}  drivers: [in-process]\n", &plug[1..]),
            "`in-process` does not apply to this component (it can use `pluggable`, `http`, `grpc`",
        );
        check(
            &format!("components:\n-{}  drivers: [pluggable]\n", &COMPONENT[1..]),
            "`pluggable` is for components with `pluggable`",
        );
    }

    #[test]
    fn a_claim_of_another_block_is_a_spec_error() {
        check(
            &format!("components:\n-{}  claims: [etag, ordering]\n", &COMPONENT[1..]),
            "`ordering` is not a claim a state.in-memory component can make",
        );
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        check(
            &format!("components:\n-{}  claims: [etag, acid]\n", &COMPONENT[1..]),
            "`spec.yaml`: components[0].claims[1]: unknown variant `acid`",
        );
        check(&format!("components:\n-{}  claims: [etag, acid]\n", &COMPONENT[1..]), "line 7");
        check(&format!("components:\n-{}  color: blue\n", &COMPONENT[1..]), "unknown field `color`");
        check("components: []\n", "the spec certifies nothing");
        check("components:\n- claims: [etag]\n", "field `components[0]`: give exactly one of `component`");
        check("components:\n- file: nowhere.yaml\n", "cannot read `./nowhere.yaml`");
        check(&format!("components:\n-{}-{}", &COMPONENT[1..], &COMPONENT[1..]), "component `s` is listed twice");
        check(
            "components:\n- component:\n    apiVersion: dapr.io/v1alpha1\n    kind: Component\n    metadata: {name: s}\n    spec: {version: v1}\n",
            "`spec.yaml#components[0].component`: component `s`: field `spec.type`: is required",
        );
        check(&format!("components:\n-{}profile:\n  concurrency: 0\n", &COMPONENT[1..]), "profile.concurrency");
        check(
            &format!("components:\n-{}backends:\n  mongo: {{}}\n", &COMPONENT[1..]),
            "backends: unknown field `mongo`",
        );
        check(
            &format!("components:\n-{}backends:\n  redis: {{tag: 7}}\n", &COMPONENT[1..]),
            "backends.redis: unknown field `tag`",
        );
    }
}
