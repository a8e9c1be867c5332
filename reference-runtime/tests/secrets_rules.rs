//! Secret stores against the SS-rules of conformance-rules.md and the holes: a missing secret
//! is an error, multi-key secrets, nested separators.

mod common;

use std::sync::Arc;

use contract::secrets::{GetSecretRequest, SecretData};
use contract::{Error, ManualClock, SecretFeature, SecretStore};

async fn store(type_name: &str, metadata: &[(&str, &str)]) -> Arc<dyn SecretStore> {
    let c = common::build(type_name, metadata, &ManualClock::new()).await;
    c.as_secrets().cloned().expect("a secret store")
}

fn data(pairs: &[(&str, &str)]) -> SecretData {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const FILE: &str = r#"{"conftestsecret": "abcd", "secondsecret": "efgh",
  "db": {"user": "admin", "password": "s3cr3t", "port": 5432}}"#;

fn secrets_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), FILE).expect("write");
    file
}

#[tokio::test]
async fn ss04_ss05_local_file_single_and_bulk() {
    let file = secrets_file();
    let s = store("secretstores.local.file", &[("secretsFile", file.path().to_str().expect("utf8"))]).await;
    s.ping().await.expect("ping");
    assert_eq!(s.get(GetSecretRequest::new("conftestsecret")).await.expect("get"), data(&[("conftestsecret", "abcd")]));
    assert_eq!(s.get(GetSecretRequest::new("db:password")).await.expect("nested"), data(&[("db:password", "s3cr3t")]));
    assert_eq!(s.get(GetSecretRequest::new("db:port")).await.expect("number"), data(&[("db:port", "5432")]));
    let all = s.bulk_get(Default::default()).await.expect("bulk");
    assert_eq!(all.get("conftestsecret"), Some(&data(&[("conftestsecret", "abcd")])));
    assert_eq!(all.get("secondsecret"), Some(&data(&[("secondsecret", "efgh")])));
    assert!(s.features().is_empty());
}

#[tokio::test]
async fn local_file_nested_separator_and_multi_valued() {
    let file = secrets_file();
    let path = file.path().to_str().expect("utf8");
    let s = store("secretstores.local.file", &[("secretsFile", path), ("nestedSeparator", ".")]).await;
    assert_eq!(s.get(GetSecretRequest::new("db.user")).await.expect("get"), data(&[("db.user", "admin")]));
    let s = store("secretstores.local.file", &[("secretsFile", path), ("multiValued", "true")]).await;
    assert_eq!(
        s.get(GetSecretRequest::new("db")).await.expect("multi-key"),
        data(&[("user", "admin"), ("password", "s3cr3t"), ("port", "5432")])
    );
    assert_eq!(s.get(GetSecretRequest::new("secondsecret")).await.expect("scalar"), data(&[("secondsecret", "efgh")]));
    assert!(s.features().contains(&SecretFeature::MultipleKeyValuesPerSecret));
}

#[tokio::test]
async fn a_missing_secret_is_an_error() {
    let file = secrets_file();
    let s = store("secretstores.local.file", &[("secretsFile", file.path().to_str().expect("utf8"))]).await;
    assert!(matches!(s.get(GetSecretRequest::new("nope")).await, Err(Error::NotFound { .. })));
    let s = store("secretstores.local.env", &[("prefix", "CERTIFY_TEST_NOPE_")]).await;
    assert!(matches!(s.get(GetSecretRequest::new("x")).await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn ss01_local_env_with_prefix() {
    // Cargo (and nextest) give test processes `CARGO_PKG_*` variables; use them rather than
    // mutating the environment of a multi-threaded test binary.
    let s = store("secretstores.local.env", &[("prefix", "CARGO_PKG_")]).await;
    assert_eq!(s.get(GetSecretRequest::new("NAME")).await.expect("get"), data(&[("NAME", "reference-runtime")]));
    let all = s.bulk_get(Default::default()).await.expect("bulk");
    assert_eq!(all.get("NAME"), Some(&data(&[("NAME", "reference-runtime")])));
    assert!(all.contains_key("VERSION"));
    for (name, value) in &all {
        assert_eq!(std::env::var(format!("CARGO_PKG_{name}")).ok().as_ref(), value.get(name), "prefix stripped");
    }
}
