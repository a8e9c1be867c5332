//! Spans and their export over OTLP, off unless a daprd Configuration asks for them
//! (`--config FILE` with `spec.tracing.samplingRate` and `spec.tracing.otel.endpointAddress`).
//! When on, every API call is a span, the child of the caller's trace context (or a new trace's
//! root); what leaves the sidecar (the answer, the call to the app, the CloudEvent) carries
//! this span's context: the trace id stays, the parent id becomes the sidecar's (O5).
//! Spans go to the collector in batches over OTLP/HTTP (protobuf), on the exporter's own
//! thread.

use std::path::Path;
use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// Where spans go and how many are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// The share of new traces recorded, 0 to 1 (a caller's sampled flag decides for its own).
    pub sampling_rate: f64,
}

impl TracingConfig {
    /// The tracing a daprd Configuration file asks for: `None` when it asks for none (no
    /// `tracing`, a zero sampling rate, or no OTLP endpoint).
    pub fn from_configuration(path: &Path) -> Result<Option<Self>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
        let tracing = &doc["spec"]["tracing"];
        let rate = match &tracing["samplingRate"] {
            serde_norway::Value::Null => 0.0,
            serde_norway::Value::String(s) => s.trim().parse::<f64>().map_err(|_| rate_error(path, s))?,
            serde_norway::Value::Number(n) => n.as_f64().unwrap_or(0.0),
            other => return Err(rate_error(path, &format!("{other:?}"))),
        };
        if !(0.0..=1.0).contains(&rate) {
            return Err(rate_error(path, &rate.to_string()));
        }
        let otel = &tracing["otel"];
        let Some(address) = otel["endpointAddress"].as_str().filter(|a| !a.is_empty()) else { return Ok(None) };
        match otel["protocol"].as_str().unwrap_or("http") {
            "http" => {}
            other => {
                return Err(format!(
                    "{}: spec.tracing.otel.protocol `{other}` is not supported; the reference runtime exports over OTLP/HTTP (protocol: http)",
                    path.display()
                ));
            }
        }
        if rate == 0.0 {
            return Ok(None);
        }
        let scheme = if otel["isSecure"].as_bool().unwrap_or(false) { "https" } else { "http" };
        let base = if address.contains("://") { address.to_owned() } else { format!("{scheme}://{address}") };
        let has_path = base.split_once("://").is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'));
        let endpoint = if has_path { base } else { format!("{}/v1/traces", base.trim_end_matches('/')) };
        Ok(Some(Self { endpoint, sampling_rate: rate }))
    }
}

fn rate_error(path: &Path, seen: &str) -> String {
    format!("{}: spec.tracing.samplingRate `{seen}` is not a number from 0 to 1", path.display())
}

/// The sidecar's tracer: spans, batched to the collector.
pub struct Tracer {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

/// One call's span: ended (and queued for export) when dropped.
pub struct CallSpan(opentelemetry_sdk::trace::Span);

impl Drop for CallSpan {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl Tracer {
    /// A tracer exporting as `config` says, naming the service `app_id`.
    pub fn start(config: &TracingConfig, app_id: &str) -> Result<Arc<Self>, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&config.endpoint)
            .build()
            .map_err(|e| format!("cannot export spans to {}: {e}", config.endpoint))?;
        let service = if app_id.is_empty() { "reference-runtime" } else { app_id };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_rate))))
            .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
            .build();
        let tracer = provider.tracer("certify-reference-runtime");
        Ok(Arc::new(Self { provider, tracer }))
    }

    /// A span named `name`, the child of the caller's `traceparent` (valid, with its
    /// `tracestate`) or a new trace's root; with the traceparent that carries it on.
    pub fn span(&self, name: String, caller: Option<(&str, Option<&str>)>) -> (CallSpan, String) {
        let parent = caller.and_then(|(p, s)| remote_context(p, s)).unwrap_or_default();
        let span = self.tracer.start_with_context(name, &parent);
        let context = span.span_context().clone();
        let traceparent =
            format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8());
        (CallSpan(span), traceparent)
    }

    /// Exports what is queued and stops.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "the span exporter did not shut down cleanly");
        }
    }
}

/// The caller's context as the parent of a span.
fn remote_context(traceparent: &str, tracestate: Option<&str>) -> Option<Context> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [_, trace, span, flags, ..] = parts.as_slice() else { return None };
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let state = tracestate.and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(flags),
        true,
        state,
    );
    context.is_valid().then(|| Context::new().with_remote_span_context(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<Option<TracingConfig>, String> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).expect("write");
        TracingConfig::from_configuration(&path)
    }

    #[test]
    fn a_daprd_configuration_turns_tracing_on_or_off() {
        let on = "kind: Configuration\nspec:\n  tracing:\n    samplingRate: \"1\"\n    otel:\n      endpointAddress: 127.0.0.1:4318\n      isSecure: false\n      protocol: http\n";
        let expected = TracingConfig { endpoint: "http://127.0.0.1:4318/v1/traces".into(), sampling_rate: 1.0 };
        assert_eq!(config(on), Ok(Some(expected)));
        assert_eq!(config("kind: Configuration\nspec: {}\n"), Ok(None));
        assert_eq!(config(&on.replace("\"1\"", "\"0\"")), Ok(None));
        assert!(config(&on.replace("\"1\"", "\"often\"")).is_err_and(|e| e.contains("samplingRate")));
        assert!(config(&on.replace("protocol: http", "protocol: grpc")).is_err_and(|e| e.contains("OTLP/HTTP")));
    }
}
