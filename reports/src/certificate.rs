//! `certificate.json`: what a run proves, in a form anyone can check again. It pins the report
//! by SHA-256, names the spec and every component (metadata redacted) by digest, counts the
//! verdicts per block and per rule, and gives each block a conformance level. Optionally signed
//! with Ed25519; [`verify`] recomputes everything from `report.json`.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Report, Summary, Verdict};

/// [`Certificate::schema`].
pub const CERTIFICATE_SCHEMA: &str = "certify.certificate/v1";

/// What a run proves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// [`CERTIFICATE_SCHEMA`].
    pub schema: String,
    /// The certify that ran.
    pub certify_version: String,
    /// `sha256:<hex>` of `report.json` as written.
    pub report_sha256: String,
    /// The spec (a path, `built-in`, or the sidecar's URL) and its digest, when it had a file.
    pub spec: String,
    /// `sha256:<hex>` of the spec's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_sha256: Option<String>,
    /// The components, by name.
    pub components: BTreeMap<String, CertifiedComponent>,
    /// Where it ran: OS, architecture, and each backend's server.
    pub environment: BTreeMap<String, String>,
    /// Per block: counts and level.
    pub blocks: BTreeMap<String, BlockResult>,
    /// Per rule (a case's source, e.g. `S26`, `HTTP 1.3`): counts.
    pub rules: BTreeMap<String, Summary>,
    /// The Ed25519 signature over this certificate without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// One component as certified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedComponent {
    /// Its `spec.type`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// What it claimed, and where the claims came from.
    pub claims: Vec<String>,
    /// `spec`, `--features` or `advertised`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub claims_from: String,
    /// The drivers it ran through.
    pub drivers: Vec<String>,
    /// `sha256:<hex>` of its record in the report (name, type, claims, drivers, metadata with
    /// secret values redacted).
    pub sha256: String,
}

/// A block's verdicts and what they make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResult {
    /// Counts.
    pub summary: Summary,
    /// `conformant` (every case that applies passed), `incomplete` (nothing failed, but some
    /// could not run), `untested` (every case skipped) or `not-conformant`.
    pub level: String,
}

/// An Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `ed25519`.
    pub algorithm: String,
    /// The public key, hex.
    pub public_key: String,
    /// The signature, hex.
    pub value: String,
}

/// A certificate that does not match its report, or its signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A recomputed field differs.
    #[error("{field} does not match the report: the certificate says {stated}, the report gives {recomputed}")]
    Mismatch {
        /// Which field.
        field: String,
        /// What the certificate says.
        stated: String,
        /// What the report gives.
        recomputed: String,
    },
    /// The signature does not verify, or is not there when a key is given.
    #[error("signature: {0}")]
    Signature(String),
    /// A key file could not be used.
    #[error("key: {0}")]
    Key(String),
}

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn level(summary: &Summary) -> &'static str {
    match (summary.ok(), summary.complete()) {
        (false, _) => "not-conformant",
        // Every case skipped: nothing was shown, so nothing is certified.
        _ if summary.total == summary.skipped => "untested",
        (true, false) => "incomplete",
        (true, true) => "conformant",
    }
}

fn counts<'a>(cases: impl Iterator<Item = &'a crate::CaseRecord>) -> Summary {
    Summary::of(&cases.cloned().collect::<Vec<_>>())
}

impl Certificate {
    /// The certificate of `report`, whose `report.json` bytes are `report_json`; unsigned.
    pub fn of(report: &Report, report_json: &[u8]) -> Self {
        // The components the run certified: those with a case in it (a filtered run names fewer).
        let components = report
            .components
            .iter()
            .filter(|c| report.cases.iter().any(|case| case.component == c.name))
            .map(|c| {
                let record = serde_json::to_vec(c).unwrap_or_default();
                let certified = CertifiedComponent {
                    type_name: c.type_name.clone(),
                    claims: c.claims.clone(),
                    claims_from: c.claims_from.clone(),
                    drivers: c.drivers.clone(),
                    sha256: sha256(&record),
                };
                (c.name.clone(), certified)
            })
            .collect();
        let mut environment = BTreeMap::from([
            ("os".to_owned(), report.environment.os.clone()),
            ("arch".to_owned(), report.environment.arch.clone()),
        ]);
        for b in &report.backends {
            environment.insert(format!("backend.{}", b.kind), b.server.clone());
        }
        let mut blocks = BTreeMap::new();
        let block_names: std::collections::BTreeSet<&str> = report.cases.iter().map(|c| c.block_name()).collect();
        for block in block_names {
            let summary = counts(report.cases.iter().filter(|c| c.block_name() == block));
            blocks.insert(block.to_owned(), BlockResult { level: level(&summary).to_owned(), summary });
        }
        let mut rules = BTreeMap::new();
        let sources: std::collections::BTreeSet<&str> =
            report.cases.iter().filter(|c| c.verdict != Verdict::Skipped).map(|c| c.source.as_str()).collect();
        for source in sources {
            rules.insert(source.to_owned(), counts(report.cases.iter().filter(|c| c.source == source)));
        }
        Certificate {
            schema: CERTIFICATE_SCHEMA.into(),
            certify_version: report.environment.certify_version.clone(),
            report_sha256: sha256(report_json),
            spec: report.spec.clone(),
            spec_sha256: report.environment.spec_digest.clone(),
            components,
            environment,
            blocks,
            rules,
            signature: None,
        }
    }

    /// The bytes a signature covers: the certificate without its signature, as compact JSON
    /// (maps are ordered, so the bytes are the same wherever they are computed again).
    fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Certificate { signature: None, ..self.clone() }).unwrap_or_default()
    }

    /// Signs it with the PKCS#8 PEM Ed25519 private key `pem` (as `openssl genpkey -algorithm
    /// ed25519` writes).
    pub fn sign(&mut self, pem: &str) -> Result<(), CertificateError> {
        let key = signing_key(pem)?;
        let value = key.sign(&self.signed_bytes());
        self.signature = Some(Signature {
            algorithm: "ed25519".into(),
            public_key: hex(key.verifying_key().as_bytes()),
            value: hex(&value.to_bytes()),
        });
        Ok(())
    }

    /// The one-line badge text: `certify 0.1.0: state conformant, pubsub incomplete (…)`.
    pub fn badge(&self) -> String {
        let blocks: Vec<String> = self
            .blocks
            .iter()
            .map(|(block, r)| {
                format!("{block} {} ({}/{} passed)", r.level, r.summary.passed, r.summary.total - r.summary.skipped)
            })
            .collect();
        format!("certify {}: {}", self.certify_version, blocks.join(", "))
    }
}

/// The signing key in `pem`, or why it is not one; a run checks it before it starts.
pub fn signing_key(pem: &str) -> Result<SigningKey, CertificateError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        CertificateError::Key(format!(
            "not a PKCS#8 PEM Ed25519 private key ({e}); make one with `openssl genpkey -algorithm ed25519 -out key.pem`"
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// Checks `certificate` against the report it claims (`report_json`, the bytes of
/// `report.json`) and, given the PEM public key `public_key`, its signature.
pub fn verify(certificate: &Certificate, report_json: &[u8], public_key: Option<&str>) -> Result<(), CertificateError> {
    let report: Report = serde_json::from_slice(report_json).map_err(|e| CertificateError::Mismatch {
        field: "report.json".into(),
        stated: "a certify report".into(),
        recomputed: format!("something else ({e})"),
    })?;
    let recomputed = Certificate { signature: certificate.signature.clone(), ..Certificate::of(&report, report_json) };
    let fields: [(&str, String, String); 6] = [
        ("report_sha256", certificate.report_sha256.clone(), recomputed.report_sha256.clone()),
        (
            "spec",
            format!("{} {:?}", certificate.spec, certificate.spec_sha256),
            format!("{} {:?}", recomputed.spec, recomputed.spec_sha256),
        ),
        ("components", json(&certificate.components), json(&recomputed.components)),
        ("environment", json(&certificate.environment), json(&recomputed.environment)),
        ("blocks", json(&certificate.blocks), json(&recomputed.blocks)),
        ("rules", json(&certificate.rules), json(&recomputed.rules)),
    ];
    for (field, stated, again) in fields {
        if stated != again {
            return Err(CertificateError::Mismatch { field: field.into(), stated, recomputed: again });
        }
    }
    let Some(pem) = public_key else { return Ok(()) };
    let signature = certificate
        .signature
        .as_ref()
        .ok_or_else(|| CertificateError::Signature("the certificate is not signed".into()))?;
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let key = VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| CertificateError::Key(format!("not a PEM Ed25519 public key ({e})")))?;
    let bytes = unhex(&signature.value).and_then(|b| <[u8; 64]>::try_from(b).ok());
    let value = bytes.ok_or_else(|| CertificateError::Signature("the signature is not 64 bytes of hex".into()))?;
    key.verify(&certificate.signed_bytes(), &ed25519_dalek::Signature::from_bytes(&value))
        .map_err(|_| CertificateError::Signature("it does not verify with this public key".into()))
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
