//! W3C trace context for jobs (docs/operating.md#traces): a job's
//! `traceparent` (and `tracestate`) AMQP headers put its work in the
//! upstream's trace; a job without them starts one here, named after its
//! id. The worker's stages are spans under it; the reply carries the
//! context on, retries and dead letters keep it, and the audit record names
//! the trace. Spans leave the process only when `RENDITION_OTLP_ENDPOINT`
//! is set ([`Traces::export`]); otherwise the global tracer is
//! OpenTelemetry's no-op one and a span costs a context clone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sha2::{Digest, Sha256};

/// The headers W3C trace context travels in.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

const TRACER: &str = "rendition";

/// Installed while spans are exported; flushes them when dropped.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends spans to an OTLP/HTTP collector (`http://collector:4318`, or
    /// the whole `…/v1/traces` URL) in batches, from a thread of its own.
    pub fn export(endpoint: &str, service: &str) -> Result<Traces, String> {
        use opentelemetry_otlp::WithExportConfig;
        let url = match endpoint.trim_end_matches('/') {
            e if e.ends_with("/v1/traces") => e.to_string(),
            e => format!("{e}/v1/traces"),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| e.to_string())?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service.to_string())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        global::set_tracer_provider(provider.clone());
        Ok(Traces { provider })
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

struct Headers<'a>(&'a BTreeMap<String, String>);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct Out<'a>(&'a mut BTreeMap<String, String>);

impl Injector for Out<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

/// One job's place in its trace.
#[derive(Clone)]
pub struct JobTrace {
    cx: Context,
}

impl JobTrace {
    /// The job's span, under the upstream's context from `headers`, or
    /// under one started here from `job_id` (the same id for every
    /// delivery of the job, so repeats land in one trace).
    pub fn start(headers: &BTreeMap<String, String>, job_id: &str, attempt: u32) -> JobTrace {
        let upstream = TraceContextPropagator::new().extract(&Headers(headers));
        let parent = match upstream.span().span_context().is_valid() {
            true => upstream,
            false => Context::new().with_remote_span_context(started_here(job_id)),
        };
        let tracer = global::tracer(TRACER);
        let span = tracer
            .span_builder("rendition.job")
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("rendition.job_id", job_id.to_string()),
                KeyValue::new("rendition.attempt", i64::from(attempt)),
            ])
            .start_with_context(&tracer, &parent);
        JobTrace {
            cx: parent.with_span(span),
        }
    }

    /// A stage of the job as a child span from `started` until the guard
    /// drops.
    pub fn stage(&self, name: &'static str, started: Option<SystemTime>) -> StageSpan {
        let tracer = global::tracer(TRACER);
        let mut builder = tracer.span_builder(Cow::Borrowed(name));
        if let Some(started) = started {
            builder = builder.with_start_time(started);
        }
        StageSpan(builder.start_with_context(&tracer, &self.cx))
    }

    /// The trace's id, 32 hex digits.
    pub fn trace_id(&self) -> String {
        self.cx.span().span_context().trace_id().to_string()
    }

    /// Adds `traceparent` (and `tracestate`) for what the job sends on.
    pub fn inject(&self, headers: &mut BTreeMap<String, String>) {
        TraceContextPropagator::new().inject_context(&self.cx, &mut Out(headers));
    }

    /// Ends the job's span with its outcome.
    pub fn end(&self, status: &str, error: Option<&str>) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("rendition.status", status.to_string()));
        if let Some(code) = error {
            span.set_status(Status::error(code.to_string()));
        }
        span.end();
    }
}

/// A stage's span; ends when dropped.
pub struct StageSpan(global::BoxedSpan);

impl Drop for StageSpan {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The context of a job sent without one: trace id and span id from the
/// SHA-256 of its id, sampled.
fn started_here(job_id: &str) -> SpanContext {
    let digest = Sha256::digest(job_id.as_bytes());
    let trace = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    let span = u64::from_be_bytes(digest[16..24].try_into().expect("8 bytes"));
    SpanContext::new(
        TraceId::from(trace.max(1)),
        SpanId::from(span.max(1)),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn an_upstream_traceparent_is_carried_on() {
        let upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = JobTrace::start(&headers(&[("traceparent", upstream)]), "j-1", 1);
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut out = BTreeMap::new();
        trace.inject(&mut out);
        assert!(
            out["traceparent"].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out:?}"
        );
    }

    #[test]
    fn a_job_without_one_starts_the_same_trace_on_every_delivery() {
        let first = JobTrace::start(&BTreeMap::new(), "j-2", 1).trace_id();
        let again = JobTrace::start(&BTreeMap::new(), "j-2", 2).trace_id();
        let other = JobTrace::start(&BTreeMap::new(), "j-3", 1).trace_id();
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_eq!(first.len(), 32);
        assert_ne!(first, TraceId::INVALID.to_string());
    }

    #[test]
    fn a_malformed_traceparent_is_ignored_not_trusted() {
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            &format!("00-{}-00f067aa0ba902b7-01", "a".repeat(5000)),
        ] {
            let trace = JobTrace::start(&headers(&[("traceparent", bad)]), "j-4", 1);
            assert_eq!(
                trace.trace_id(),
                JobTrace::start(&BTreeMap::new(), "j-4", 1).trace_id(),
                "{bad}"
            );
        }
    }
}
