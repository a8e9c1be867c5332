//! The `certify` binary as a user runs it: the README's main command on the built-in set, and
//! clear errors for bad resources.

use std::process::Command;

fn certify(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_certify")).args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_builds_and_pings_the_builtin_set() {
    let (ok, stdout, stderr) = certify(&["run"]);
    assert!(ok, "{stderr}");
    for line in ["statestore", "pubsub", "lockstore", "configstore", "secretstore"] {
        assert!(stdout.lines().any(|l| l.starts_with(line) && l.contains(" ok ")), "{line} missing in:\n{stdout}");
    }
    assert!(stdout.contains("ETAG, TRANSACTIONAL, QUERY_API, TTL"), "{stdout}");
}

#[test]
fn bad_resources_fail_with_the_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: s\nspec:\n  type: state.nope\n",
    )
    .expect("write");
    let (ok, _, stderr) = certify(&["run", "--resources-path", file.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        stderr.contains("bad.yaml`: component `s`: field `spec.type`: unknown component type `state.nope`"),
        "{stderr}"
    );
    let (ok, _, stderr) = certify(&["run", "--resources-path", "/nonexistent/dir"]);
    assert!(!ok);
    assert!(stderr.contains("cannot read `/nonexistent/dir`"), "{stderr}");
}

#[test]
fn types_lists_the_registry() {
    let (ok, stdout, _) = certify(&["types"]);
    assert!(ok);
    assert!(stdout.lines().any(|l| l == "state.in-memory"));
}
