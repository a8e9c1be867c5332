//! The `certify` binary as a user runs it: the README's main command, the example spec, a
//! sidecar certified black-box, and clear errors for bad input.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn certify(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_certify")).args(args).env("NO_COLOR", "1").output().expect("runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn validate_against_schema(path: &Path) {
    let schema: serde_json::Value = serde_json::from_str(reports::REPORT_SCHEMA).expect("schema");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("report.json")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let errors: Vec<String> =
        validator.iter_errors(&report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn run_certifies_the_builtin_store_through_both_drivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&["run", "--report-dir", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" 0 failed, 0 inconclusive"), "{}", out.stdout);
    for line in [
        "PASS [",
        "statestore::state.etag.stale-write-rejected",
        "statestore@http::state.etag.stale-write-rejected",
        "SKIP [",
    ] {
        assert!(out.stdout.contains(line), "`{line}` missing:\n{}", out.stdout);
    }
    validate_against_schema(&dir.path().join("report.json"));
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary.md");
    assert!(summary.starts_with("# certify: PASSED"), "{summary}");
    assert!(summary.contains("| statestore | http |"), "{summary}");
    assert!(std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit").contains("<testsuites"));
}

#[test]
fn the_example_spec_runs_and_filters_select_trials() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/in-memory.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&[
        "run",
        "--spec",
        spec,
        "--report-dir",
        dir.path().to_str().expect("utf8"),
        "state.etag",
        "--skip",
        "@http",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).expect("report")).expect("parse");
    assert!(report.cases.iter().all(|c| c.trial.contains("state.etag") && c.driver == "in-process"));
    assert!(report.summary.passed >= 10);
    let none = certify(&["run", "--spec", spec, "--report-dir", dir.path().to_str().expect("utf8"), "no-such-case"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no case matched"), "{}", none.stderr);
}

#[test]
fn a_run_split_into_shards_merges_into_the_unsplit_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf8").to_owned();
    let (all, merged) = (path("all"), path("merged"));
    let shards: Vec<String> = (1..=3).map(|k| path(&format!("shard-{k}"))).collect();
    let run = |dir: &str, extra: &[&str]| {
        let mut args = vec!["run", "state.", "lock.", "--report-dir", dir];
        args.extend(extra);
        let out = certify(&args);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    };
    run(&all, &[]);
    for (k, shard) in shards.iter().enumerate() {
        run(shard, &["--partition", &format!("hash:{}/3", k + 1)]);
    }
    let mut args = vec!["report", "merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--report-dir", &merged]);
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let read = |dir: &str| -> reports::Report {
        serde_json::from_str(&std::fs::read_to_string(Path::new(dir).join("report.json")).expect("report"))
            .expect("parse")
    };
    let verdicts = |r: &reports::Report| -> std::collections::BTreeMap<String, reports::Verdict> {
        r.cases.iter().map(|c| (c.trial.clone(), c.verdict)).collect()
    };
    let (whole, joined) = (read(&all), read(&merged));
    assert!(whole.summary.total > 100, "{:?}", whole.summary);
    assert_eq!(verdicts(&joined), verdicts(&whole));
    assert_eq!(joined.summary, whole.summary);
    validate_against_schema(&Path::new(&merged).join("report.json"));
    // Overlapping shards and bad partitions are named.
    let twice = certify(&["report", "merge", &shards[0], &shards[0], "--report-dir", &merged]);
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("is in more than one report"), "{}", twice.stderr);
    let bad = certify(&["run", "--partition", "hash:4/3"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("write hash:K/N"), "{}", bad.stderr);
}

#[test]
fn json_messages_follow_their_schema_and_the_human_view_goes_to_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("step-summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_certify"))
        .args(["run", "state.crud", "--message-format", "json", "--color", "always", "--report-dir"])
        .arg(dir.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let compile =
        |text: &str| jsonschema::validator_for(&serde_json::from_str(text).expect("schema")).expect("compiles");
    let (events, reports_schema) = (
        compile(reports::EVENTS_SCHEMA),
        serde_json::from_str::<serde_json::Value>(reports::REPORT_SCHEMA).expect("schema"),
    );
    let record = jsonschema::validator_for(&reports_schema["properties"]["cases"]["items"]).expect("compiles");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        let errors: Vec<String> = events.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
        if line["event"] == "trial-finished" {
            assert!(record.is_valid(&line["record"]), "{line}");
        }
    }
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run-started"));
    assert_eq!(kinds.last(), Some(&"run-finished"));
    let started = kinds.iter().filter(|k| **k == "trial-started").count();
    assert_eq!(started, kinds.iter().filter(|k| **k == "trial-finished").count());
    assert_eq!(lines.last().map(|l| l["ok"].clone()), Some(serde_json::json!(true)));
    // The human view, coloured as asked, is on stderr; the job summary got the Markdown.
    let human = String::from_utf8_lossy(&out.stderr);
    assert!(human.contains("\u{1b}[32m") && human.contains("Summary"), "{human}");
    let markdown = std::fs::read_to_string(&summary).expect("step summary");
    assert!(markdown.starts_with("# certify: PASSED"), "{markdown}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = certify(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        for word in ["partition", "message-format", "merge"] {
            assert!(out.stdout.contains(word), "{shell} completions lack `{word}`");
        }
    }
    let out = certify(&["completions", "tcsh"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("possible values"), "{}", out.stderr);
}

#[test]
fn the_spec_schema_is_current_and_every_shipped_spec_follows_it() {
    let checked_in = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/spec.schema.json");
    let out = certify(&["schema"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let current = std::fs::read_to_string(checked_in).expect("specs/spec.schema.json");
    assert_eq!(out.stdout, current, "specs/spec.schema.json is stale: run `certify schema > specs/spec.schema.json`");
    let schema: serde_json::Value = serde_json::from_str(&current).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let specs = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs")).expect("specs");
    let mut texts: Vec<(String, String)> = specs
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("read")))
        .collect();
    texts.push(("built-in".into(), harness::spec::BUILTIN_SPEC.into()));
    assert!(texts.len() >= 3, "{texts:?}");
    for (name, text) in &texts {
        let value: serde_json::Value = serde_norway::from_str(text).expect("yaml");
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
    let typo: serde_json::Value = serde_json::json!({"components": [{"file": "x.yaml", "claim": ["etag"]}]});
    assert!(!validator.is_valid(&typo), "a misspelt field must not validate");
}

#[test]
fn a_signed_certificate_verifies_and_tampering_is_caught() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let (private, public, other) =
        (dir.path().join("key.pem"), dir.path().join("pub.pem"), dir.path().join("other.pem"));
    std::fs::write(&private, key.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes()).expect("write");
    std::fs::write(&public, key.verifying_key().to_public_key_pem(LineEnding::LF).expect("pem")).expect("write");
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    std::fs::write(&other, stranger.to_public_key_pem(LineEnding::LF).expect("pem")).expect("write");
    let bundle = dir.path().join("bundle");
    let s = |p: &Path| p.to_str().expect("utf8").to_owned();
    let out = certify(&["run", "state.crud", "--report-dir", &s(&bundle), "--sign-key", &s(&private)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let verified = certify(&["verify", &s(&bundle), "--public-key", &s(&public)]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified.stdout.contains("state conformant") && verified.stdout.contains("signature verified"),
        "{}",
        verified.stdout
    );
    let stranger = certify(&["verify", &s(&bundle), "--public-key", &s(&other)]);
    assert_eq!(stranger.code, 1);
    assert!(stranger.stderr.contains("does not verify with this public key"), "{}", stranger.stderr);
    // A verdict changed after the run: the report's digest gives it away.
    let report = bundle.join("report.json");
    let text = std::fs::read_to_string(&report).expect("report");
    std::fs::write(&report, text.replacen("\"verdict\": \"pass\"", "\"verdict\": \"fail\"", 1)).expect("write");
    let tampered = certify(&["verify", &s(&bundle)]);
    assert_eq!(tampered.code, 1);
    assert!(tampered.stderr.contains("report_sha256 does not match"), "{}", tampered.stderr);
    let missing = certify(&["run", "state.crud.ping", "--sign-key", "/nonexistent/key.pem"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("--sign-key: cannot read"), "{}", missing.stderr);
    // Not a key: said before the run, not after it.
    let not_a_key = certify(&["run", "state.crud.ping", "--sign-key", &s(&public)]);
    assert_eq!(not_a_key.code, 2);
    assert!(not_a_key.stderr.contains("not a PKCS#8 PEM Ed25519 private key"), "{}", not_a_key.stderr);
    assert!(!not_a_key.stdout.contains("Starting"), "{}", not_a_key.stdout);
}

#[test]
fn dapr_conformance_configs_run_as_they_are() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/dapr-tests");
    let dir = tempfile::tempdir().expect("tempdir");
    let report_dir = dir.path().join("report");
    for (block, name, claims) in [
        (
            "state",
            "in-memory",
            vec!["etag", "first-write", "transaction", "ttl", "query", "delete-with-prefix", "keyslike"],
        ),
        ("pubsub", "in-memory-fast", vec!["bulkpublish", "bulksubscribe"]),
    ] {
        let tests = format!("{examples}/{block}/tests.yml");
        let out = certify(&["run", "--dapr-tests", &tests, "--report-dir", report_dir.to_str().expect("utf8")]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        let report: reports::Report =
            serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).expect("report"))
                .expect("parse");
        let component = report.components.iter().find(|c| c.name == name).expect("the entry's name");
        let mut expected: Vec<String> = claims.iter().map(|c| (*c).to_owned()).collect();
        let mut seen = component.claims.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{block}");
        assert!(report.summary.passed > 20, "{:?}", report.summary);
    }
    // A folder without its Component YAML, and an unset variable, are named.
    let config = dir.path().join("tests.yml");
    std::fs::write(&config, "componentType: state\ncomponents:\n  - component: nowhere.v1\n").expect("write");
    let out = certify(&["run", "--dapr-tests", config.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("nowhere/v1"), "{}", out.stderr);
    let folder = dir.path().join("env");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(
        folder.join("statestore.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: s}\nspec:\n  type: state.in-memory\n  version: v1\n  metadata:\n  - {name: x, value: \"${{CERTIFY_UNSET_FOR_TEST}}\"}\n",
    )
    .expect("write");
    std::fs::write(&config, "componentType: state\ncomponents:\n  - component: env\n").expect("write");
    let out = certify(&["run", "--dapr-tests", config.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("required env var is not set: CERTIFY_UNSET_FOR_TEST"), "{}", out.stderr);
}

#[test]
fn init_writes_a_spec_that_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = dir.path().join("components.yaml");
    let component = |name: &str, type_name: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\nspec: {{type: {type_name}, version: v1}}\n"
        )
    };
    std::fs::write(&yaml, [component("kv", "state.in-memory"), component("locks", "lock.in-memory")].join("---\n"))
        .expect("write");
    let spec = dir.path().join("certify.yaml");
    let s = |p: &Path| p.to_str().expect("utf8").to_owned();
    let out = certify(&["init", &s(&yaml), "--output", &s(&spec)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&spec).expect("spec");
    for line in ["#   - etag ", "#   badEtag: bad-etag", "name: locks", "This block has no claims"] {
        assert!(text.contains(line), "`{line}` missing:\n{text}");
    }
    let run =
        certify(&["run", "--spec", &s(&spec), "state.crud", "lock.basic", "--report-dir", &s(&dir.path().join("r"))]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("kv::state.crud.ping") && run.stdout.contains("locks@http::lock.basic"),
        "{}",
        run.stdout
    );
    let again = certify(&["init", &s(&yaml), "--output", &s(&spec)]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("give --force"), "{}", again.stderr);
    std::fs::write(&yaml, component("odd", "state.no-such-store")).expect("write");
    let unknown = certify(&["init", &s(&yaml), "--output", "-"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no component type `state.no-such-store`"), "{}", unknown.stderr);
}

/// Starts a reference runtime on loopback over the default in-memory components plus the
/// Component YAML `extra`, delivering to `app_port`; answers its URL.
async fn start_sidecar(app_port: Option<u16>, extra: Option<&str>) -> String {
    let mut resources = reference_runtime::default_resources().expect("defaults");
    if let Some(yaml) = extra {
        let parsed = contract::Resources::parse(Path::new("extra.yaml"), yaml).expect("component");
        resources.components.extend(parsed.components);
    }
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, Arc::new(contract::SystemClock))
        .await
        .expect("build");
    let config =
        reference_runtime::sidecar::SidecarConfig { app_id: "blackbox".into(), app_port, ..Default::default() };
    let sidecar = reference_runtime::sidecar::Sidecar::new(config, components, Vec::new());
    sidecar.serve_on_loopback().await.expect("serve").0
}

#[test]
fn a_running_sidecar_is_certified_black_box() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar(None, None));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = certify(&[
        "run",
        "--sidecar",
        &url,
        "--state",
        "statestore",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("statestore@http::state.etag.stale-write-rejected"), "{}", out.stdout);
    let report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).expect("report")).expect("parse");
    assert_eq!(
        report.components[0].claims,
        ["etag", "first-write", "transaction", "ttl", "query", "delete-with-prefix", "keyslike"],
        "claims from the sidecar's capabilities"
    );
    // The summary says so, and how to pin them.
    assert_eq!(report.components[0].claims_from, "advertised");
    assert!(
        out.stdout.contains(
            "the claims of `statestore` are what it advertised (etag,first-write,transaction,ttl,query,delete-with-prefix,keyslike): pin them in CI with --features"
        ),
        "{}",
        out.stdout
    );
    // --features overrides the claims: claiming less makes the negative checks run, and fail.
    let out = certify(&[
        "run",
        "--sidecar",
        &url,
        "--state",
        "statestore",
        "--features",
        "etag",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
        "features",
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("does not claim `ttl` but advertises TTL"), "{}", out.stdout);
    let out = certify(&["run", "--sidecar", &url, "--state", "nostore"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("has no state store named `nostore` (its state stores: statestore)"), "{}", out.stderr);
    drop(rt);
}

#[test]
fn an_unreachable_sidecar_fails_within_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let started = Instant::now();
    let out = certify(&["run", "--sidecar", &format!("http://127.0.0.1:{port}"), "--state", "statestore"]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("cannot reach the sidecar at http://127.0.0.1:{port}")), "{}", out.stderr);
}

#[test]
fn bad_specs_and_flags_fail_with_the_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "components:\n  - file: c.yaml\n    claims: [etag, acid]\n").expect("write");
    let out = certify(&["run", "--spec", spec.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("spec.yaml`: components[0].claims[1]: unknown variant `acid`")
            && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );
    std::fs::write(&spec, "components:\n  - file: c.yaml\n").expect("write");
    std::fs::write(
        dir.path().join("c.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: s\nspec:\n  type: state.nope\n",
    )
    .expect("write");
    let out = certify(&["run", "--spec", spec.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("c.yaml`: component `s`: field `spec.type`: unknown component type `state.nope`"),
        "{}",
        out.stderr
    );
    let out = certify(&["run", "--sidecar", "http://127.0.0.1:1", "--state", "s", "--features", "acid"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown feature `acid`"), "{}", out.stderr);
}

#[test]
fn list_prints_every_case() {
    let out = certify(&["list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.lines().any(|l| l.starts_with("state.etag.stale-write-rejected")), "{}", out.stdout);
    let out = certify(&["list", "--json"]);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    assert!(cases.len() > 50);
    assert!(
        cases.iter().all(|c| c["rule"].as_str().is_some_and(|r| r.contains("MUST"))),
        "every rule is a MUST sentence"
    );
    let out = certify(&["types"]);
    assert!(out.stdout.lines().any(|l| l == "state.in-memory"));
}

#[test]
fn a_sidecars_components_and_service_invocation_are_certified_black_box() {
    // The sidecar delivers to an app port where certify, started afterwards, serves the app.
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/fixtures/secrets.json");
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: fixture-secrets}}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - {{name: secretsFile, value: \"{fixture}\"}}\n  - {{name: multiValued, value: \"true\"}}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: queue}}\nspec: {{type: bindings.in-memory, version: v1}}\n"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(start_sidecar(Some(app_port), Some(&yaml)));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let args = [
        "run",
        "--sidecar",
        &url,
        "--pubsub",
        "pubsub",
        "--app-port",
        &port,
        "--secrets",
        "fixture-secrets",
        "--lock",
        "lockstore",
        "--binding",
        "queue",
        "--invoke",
        "--features",
        "multiplekeyvaluespersecret,bulkpublish,bulksubscribe,ordering,create,read",
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ];
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).expect("report")).expect("parse");
    let passed = |prefix: &str| {
        report.cases.iter().filter(|c| c.trial.starts_with(prefix) && c.verdict == reports::Verdict::Pass).count()
    };
    assert_eq!(passed("fixture-secrets@http::"), 6, "{}", out.stdout);
    assert_eq!(passed("lockstore@http::"), 13, "{}", out.stdout);
    // ping, unknown operation, create, its input events (delivered, every one, redelivered), and
    // the HTTP API's errors.
    assert_eq!(passed("queue@http::"), 7, "{}", out.stdout);
    // Service invocation, to certify as the app `blackbox`.
    assert_eq!(passed("blackbox@http::invocation."), 10, "{}", out.stdout);
    assert!(passed("pubsub@http::") >= 14, "{}", out.stdout);
    let redelivered = report.cases.iter().find(|c| c.id == "pubsub.redelivery.retry-redelivered").expect("ran");
    assert_eq!(redelivered.verdict, reports::Verdict::Pass);
    // A missing store is named, with what the sidecar has.
    let out = certify(&["run", "--sidecar", &url, "--secrets", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no secretstores store named `nope`"), "{}", out.stderr);
    // Reading a binding's events needs the app port.
    let out = certify(&["run", "--sidecar", &url, "--binding", "queue", "--features", "create,read"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("needs --app-port"), "{}", out.stderr);
}

/// A proxy in front of a sidecar that mangles service invocation: it drops query strings,
/// turns every 5xx into 500, and drops the app's `x-certify-*` reply headers.
async fn start_mangling_proxy(upstream: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let client = reqwest::Client::new();
    let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let invoking = uri.path().starts_with("/v1.0/invoke/");
            let path = match (invoking, uri.query()) {
                (false, Some(q)) => format!("{}?{q}", uri.path()),
                _ => uri.path().to_owned(),
            };
            let mut request = client.request(method, format!("{upstream}{path}")).body(body);
            for (k, v) in headers.iter().filter(|(k, _)| *k != "host" && *k != "content-length") {
                request = request.header(k, v);
            }
            let response = request.send().await.expect("upstream answers");
            let mut status = response.status();
            if invoking && status.is_server_error() {
                status = StatusCode::INTERNAL_SERVER_ERROR;
            }
            let mut out = HeaderMap::new();
            for (k, v) in response.headers() {
                let mangled = invoking && k.as_str().starts_with("x-certify-");
                if !mangled && k != "content-length" && k != "transfer-encoding" {
                    out.insert(k.clone(), v.clone());
                }
            }
            (status, out, response.bytes().await.expect("body")).into_response()
        }
    };
    use axum::response::IntoResponse;
    let router = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[test]
fn a_sidecar_that_mangles_invocations_is_caught() {
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = rt.block_on(async {
        let url = start_sidecar(Some(app_port), None).await;
        start_mangling_proxy(url).await
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let port = app_port.to_string();
    let out = certify(&[
        "run",
        "--sidecar",
        &proxy,
        "--invoke",
        "--app-port",
        &port,
        "--report-dir",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report: reports::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).expect("report")).expect("parse");
    let verdict = |id: &str| {
        let case = report.cases.iter().find(|c| c.id == id).expect("ran");
        (case.verdict, case.reason.clone().unwrap_or_default())
    };
    for (id, reason) in [
        ("invocation.query.verbatim", "the query string the app received"),
        ("invocation.status.passed-through", "the status the caller saw: expected 503, saw 500"),
        ("invocation.reply-headers.passed-through", "`x-certify-reply` header at the caller"),
    ] {
        let (v, r) = verdict(id);
        assert_eq!(v, reports::Verdict::Fail, "{id}: {r}");
        assert!(r.contains(reason), "{id}: `{r}` lacks `{reason}`");
    }
    // What it leaves alone passes.
    for id in ["invocation.verbs.passed-through", "invocation.body.byte-exact", "invocation.headers.forwarded"] {
        assert_eq!(verdict(id).0, reports::Verdict::Pass, "{id}: {}", verdict(id).1);
    }
}

#[test]
fn a_sidecars_redis_configuration_store_is_certified_black_box() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let options = fixtures::Options {
        ready_timeout: Duration::from_secs(30),
        run_id: "blackbox-config".into(),
        settings: Default::default(),
    };
    let redis =
        match rt.block_on(fixtures::provision(fixtures::BackendKind::Redis, fixtures::Provider::Process, &options)) {
            Ok(r) => r,
            Err(e) if std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err() => {
                fixtures::skip_test(&e.to_string());
                return;
            }
            Err(e) => panic!("{e}"),
        };
    let component = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: settings}}\nspec:\n  type: configuration.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"{}\"}}\n",
        redis.endpoint.host
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = dir.path().join("writer.yaml");
    std::fs::write(&writer, &component).expect("write");
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let url = rt.block_on(start_sidecar(Some(app_port), Some(&component)));
    let port = app_port.to_string();
    let report_dir = dir.path().join("report");
    let base = ["run", "--sidecar", &url, "--configuration", "settings", "--app-port", &port, "--report-dir"];
    let mut args = base.to_vec();
    args.extend([report_dir.to_str().expect("utf8"), "--configuration-writer", writer.to_str().expect("utf8")]);
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("8 passed, 0 failed"), "{}", out.stdout);
    // Without a writer, the cases that write say how to give one, and the run says it does not
    // certify them; --require-all (as in CI) fails it.
    let mut args = base.to_vec();
    args.push(report_dir.to_str().expect("utf8"));
    let out = certify(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("give --configuration-writer"), "{}", out.stdout);
    assert!(out.stdout.contains("not certified: 7 cases could not run"), "{}", out.stdout);
    let summary = std::fs::read_to_string(report_dir.join("summary.md")).expect("summary");
    assert!(summary.contains("not certified: 7 cases could not run"), "{summary}");
    args.push("--require-all");
    let out = certify(&args);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    // A writer that is not a configuration store is named.
    std::fs::write(&writer, component.replace("configuration.redis", "state.redis")).expect("write");
    let mut args = base.to_vec();
    args.extend([report_dir.to_str().expect("utf8"), "--configuration-writer", writer.to_str().expect("utf8")]);
    let out = certify(&args);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is not a configuration store certify can write to"), "{}", out.stderr);
    drop(redis);
}
