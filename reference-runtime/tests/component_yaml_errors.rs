//! Malformed Component YAML, unknown types, missing and invalid metadata: each error names the
//! file, the component and the field.

use std::path::Path;

use contract::{LoadError, ManualClock, Resources};

async fn load(text: &str) -> Result<contract::Components, LoadError> {
    let resources = Resources::parse(Path::new("resources/broken.yaml"), text)?;
    reference_runtime::builtin_registry().build_all(&resources.components, ManualClock::new().shared()).await
}

fn component(name: &str, type_name: &str, metadata: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n{metadata}"
    )
}

async fn check(text: &str, expected: &str) {
    let err = load(text).await.expect_err("should fail").to_string();
    assert_eq!(err, expected);
}

#[tokio::test]
async fn malformed_yaml() {
    let err = load("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x\n")
        .await
        .expect_err("malformed")
        .to_string();
    assert!(err.starts_with("`resources/broken.yaml`: malformed YAML at line "), "{err}");
}

#[tokio::test]
async fn unknown_type() {
    let err = load(&component("cache", "state.memcached", "")).await.expect_err("unknown").to_string();
    assert!(
        err.starts_with("`resources/broken.yaml`: component `cache`: field `spec.type`: unknown component type `state.memcached` (known types: actors.in-memory, "),
        "{err}"
    );
}

#[tokio::test]
async fn missing_required_metadata() {
    check(
        &component("files", "bindings.localstorage", ""),
        "`resources/broken.yaml`: component `files` (`bindings.localstorage`): required metadata field `rootPath` is missing",
    )
    .await;
}

#[tokio::test]
async fn invalid_metadata_values() {
    check(
        &component("bus", "pubsub.in-memory", "  metadata:\n  - name: maxDeliveryAttempts\n    value: lots\n"),
        "`resources/broken.yaml`: component `bus` (`pubsub.in-memory`): metadata field `maxDeliveryAttempts` has invalid value `lots`: invalid digit found in string",
    )
    .await;
    check(
        &component("bus", "pubsub.in-memory", "  metadata:\n  - name: redeliveryBackoff\n    value: soon\n"),
        "`resources/broken.yaml`: component `bus` (`pubsub.in-memory`): metadata field `redeliveryBackoff` has invalid value `soon`: expected a duration such as `500ms` or `2s`: expected number at 0",
    )
    .await;
    let err = load(&component(
        "vault",
        "secretstores.local.file",
        "  metadata:\n  - name: secretsFile\n    value: /nonexistent/secrets.json\n",
    ))
    .await
    .expect_err("missing file")
    .to_string();
    assert!(
        err.starts_with("`resources/broken.yaml`: component `vault` (`secretstores.local.file`): metadata field `secretsFile` has invalid value `/nonexistent/secrets.json`: "),
        "{err}"
    );
}

#[tokio::test]
async fn secret_references_resolve_through_the_named_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"storage": {"root": "ROOT"}}"#).expect("write");
    let root = dir.path().join("files");
    std::fs::write(&secrets, format!(r#"{{"storage": {{"root": "{}"}}}}"#, root.display())).expect("write");
    let text = format!(
        "{}---\n{}auth:\n  secretStore: vault\n",
        component(
            "vault",
            "secretstores.local.file",
            &format!(
                "  metadata:\n  - name: secretsFile\n    value: {}\n  - name: multiValued\n    value: true\n",
                secrets.display()
            )
        ),
        component(
            "files",
            "bindings.localstorage",
            "  metadata:\n  - name: rootPath\n    secretKeyRef:\n      name: storage\n      key: root\n"
        ),
    );
    let components = load(&text).await.expect("resolves");
    assert!(components.by_name.contains_key("files"));
    assert!(root.is_dir(), "the binding got the secret's value as its root");

    let no_key = text.replace("key: root", "key: nope");
    let err = load(&no_key).await.expect_err("missing key").to_string();
    assert_eq!(
        err,
        "`resources/broken.yaml`: component `files`: field `spec.metadata[0].secretKeyRef`: secret `storage` in `vault` has no key `nope`"
    );
    let no_store = text.replace("secretStore: vault", "secretStore: kubernetes");
    let err = load(&no_store).await.expect_err("missing store").to_string();
    assert_eq!(
        err,
        "`resources/broken.yaml`: component `files`: field `spec.metadata[0].secretKeyRef`: `auth.secretStore` names `kubernetes`, which is not a loaded secret store"
    );
}

#[tokio::test]
async fn duplicate_names_and_ignore_errors() {
    let twice = format!("{}---\n{}", component("a", "state.in-memory", ""), component("a", "lock.in-memory", ""));
    let err = load(&twice).await.expect_err("duplicate").to_string();
    assert_eq!(err, "`resources/broken.yaml`: component `a` is defined twice (first in `resources/broken.yaml`)");
    let tolerated = component("files", "bindings.localstorage", "  ignoreErrors: true\n");
    let components = load(&tolerated).await.expect("ignored");
    assert!(components.by_name.is_empty());
    assert_eq!(components.skipped.len(), 1);
}

#[tokio::test]
async fn resource_directories_are_read_in_name_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("b.yaml"), component("second", "lock.in-memory", "")).expect("write");
    std::fs::write(dir.path().join("a.yml"), component("first", "state.in-memory", "")).expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not yaml").expect("write");
    let resources = Resources::load(&[dir.path().to_owned()]).expect("load");
    let names: Vec<_> = resources.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
}

#[tokio::test]
async fn the_default_set_builds() {
    let resources = reference_runtime::default_resources().expect("parses");
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, ManualClock::new().shared())
        .await
        .expect("builds");
    let names: Vec<_> = components.by_name.keys().map(String::as_str).collect();
    assert_eq!(names, ["configstore", "lockstore", "pubsub", "secretstore", "statestore"]);
}
