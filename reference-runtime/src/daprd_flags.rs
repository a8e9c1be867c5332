//! daprd's command-line habits, so that a `daprd …` line runs the reference runtime unchanged.
//! daprd parses with Go's `flag` package: one dash or two (`-app-id x`, `--app-id=x`), and
//! flags this runtime does not implement (mTLS, placement, metrics, …) are part of everyday
//! command lines. [`normalize`] rewrites single-dash long flags for clap and takes out daprd's
//! unimplemented flags (with their values), saying which were ignored.

use std::ffi::OsString;

/// daprd flags the reference runtime accepts and ignores, and whether each takes a value
/// (Go's boolean flags never take a separate one).
const IGNORED: &[(&str, bool)] = &[
    ("allowed-origins", true),
    ("app-channel-address", true),
    ("app-health-check-path", true),
    ("app-health-probe-interval", true),
    ("app-health-probe-timeout", true),
    ("app-health-threshold", true),
    ("app-max-concurrency", true),
    ("app-ssl", false),
    ("build-info", false),
    ("control-plane-address", true),
    ("control-plane-trust-domain", true),
    ("dapr-block-shutdown-duration", true),
    ("dapr-graceful-shutdown-seconds", true),
    ("dapr-http-read-buffer-size", true),
    ("dapr-internal-grpc-listen-address", true),
    ("dapr-internal-grpc-port", true),
    ("dapr-public-listen-address", true),
    ("dapr-public-port", true),
    ("disable-builtin-k8s-secret-store", false),
    ("enable-api-logging", false),
    ("enable-app-health-check", false),
    ("enable-mtls", false),
    ("enable-profiling", false),
    ("kubernetes-namespace", true),
    ("metrics-listen-address", true),
    ("mode", true),
    ("placement-host-address", true),
    ("profile-port", true),
    ("read-buffer-size", true),
    ("scheduler-host-address", true),
    ("sentry-address", true),
    ("trust-anchors-file", true),
    ("unix-domain-socket", true),
];

/// `args` (the program name first) with `-long-flag` written `--long-flag` where `known` (the
/// long flags this runtime parses) or daprd has it, and daprd's flags this runtime does not
/// implement taken out; with one warning per flag taken out.
pub fn normalize(args: impl IntoIterator<Item = OsString>, known: &[&str]) -> (Vec<OsString>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut args = args.into_iter();
    out.extend(args.next());
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let Some(text) = arg.to_str().filter(|t| t.starts_with('-') && *t != "-") else {
            out.push(arg);
            continue;
        };
        let body = text.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if let Some((_, takes_value)) = IGNORED.iter().find(|(n, _)| *n == name) {
            let value = match (takes_value, inline) {
                (true, None) => args.next().map(|v| v.to_string_lossy().into_owned()),
                (_, inline) => inline.map(str::to_owned),
            };
            let shown = value.map(|v| format!(" {v}")).unwrap_or_default();
            warnings.push(format!(
                "daprd flag --{name}{shown} is accepted and ignored: the reference runtime does not implement it"
            ));
            continue;
        }
        let long = name.len() > 1 && !text.starts_with("--");
        if long && known.contains(&name) {
            out.push(OsString::from(format!("-{text}")));
        } else {
            out.push(arg);
        }
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> (Vec<String>, Vec<String>) {
        let args = line.split_whitespace().map(OsString::from);
        let (out, warnings) = normalize(args, &["app-id", "dapr-http-port", "log-as-json"]);
        (out.into_iter().map(|a| a.to_string_lossy().into_owned()).collect(), warnings)
    }

    #[test]
    fn single_dash_long_flags_are_rewritten_and_unknown_daprd_flags_dropped() {
        let (out, warnings) = run(
            "daprd -app-id x -dapr-http-port=3501 -enable-mtls -placement-host-address localhost:50005 --log-as-json -h",
        );
        assert_eq!(out, ["daprd", "--app-id", "x", "--dapr-http-port=3501", "--log-as-json", "-h"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].contains("--placement-host-address localhost:50005"), "{warnings:?}");
    }

    #[test]
    fn values_and_unknown_flags_pass_through_for_clap_to_judge() {
        let (out, warnings) = run("daprd --app-id -odd -no-such-flag 1 -- -app-id");
        assert_eq!(out, ["daprd", "--app-id", "-odd", "-no-such-flag", "1", "--", "-app-id"]);
        assert!(warnings.is_empty());
    }
}
