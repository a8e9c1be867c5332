//! `certify` as a CI gate, as a user runs it: shards merged, JSON events, completions, the spec
//! schema, signed certificates, Dapr's own conformance configs, and `certify init`.

mod cli_common;

use std::path::Path;
use std::process::Command;

use cli_common::{certify, validate_against_schema};

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
