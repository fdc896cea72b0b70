//! Observability: an OpenTelemetry span per request (W3C trace context in, propagated to
//! upstream sources, Logboek Dataverwerkingen attributes, every request recorded — no sampling)
//! exported over OTLP when configured, and Prometheus metrics for `/metrics`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider, SpanExporter,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// The `[telemetry]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`); off when absent.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "sluis".into(),
        }
    }
}

/// The span attribute that ties a request to the register of processing activities.
pub const PROCESSING_ACTIVITY: &str = "dpl.core.processing_activity_id";

pub struct Telemetry {
    provider: SdkTracerProvider,
    /// Whether spans leave the process (OTLP or a test exporter); without it only their ids matter.
    exporting: bool,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    pub metrics: Metrics,
}

impl Telemetry {
    /// From configuration: spans are always made (their ids go into the audit log) and exported
    /// only when an OTLP endpoint is configured.
    pub fn from_settings(s: &TelemetrySettings) -> Result<Self, String> {
        let mut builder = base_provider(&s.service_name);
        if let Some(endpoint) = &s.otlp_endpoint {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .with_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
            builder = builder.with_batch_exporter(exporter);
        }
        Ok(Self::from_provider(
            builder.build(),
            s.otlp_endpoint.is_some(),
        ))
    }

    /// With a given exporter, exporting each span as it ends (tests use the in-memory exporter).
    pub fn with_exporter<E: SpanExporter + 'static>(exporter: E) -> Self {
        Self::from_provider(
            base_provider("sluis")
                .with_simple_exporter(exporter)
                .build(),
            true,
        )
    }

    fn from_provider(provider: SdkTracerProvider, exporting: bool) -> Self {
        Self {
            exporting,
            tracer: provider.tracer("sluis"),
            provider,
            propagator: TraceContextPropagator::new(),
            metrics: Metrics::new(),
        }
    }

    /// Starts the server span of a request, as a child of the caller's `traceparent` if valid.
    pub fn request_span(
        &self,
        name: &str,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> RequestSpan {
        let parent = self.propagator.extract(&Headers {
            traceparent,
            tracestate,
        });
        let (sc, span) = if self.exporting {
            let span = self
                .tracer
                .span_builder(name.to_string())
                .with_kind(SpanKind::Server)
                .start_with_context(&self.tracer, &parent);
            (span.span_context().clone(), Some(Box::new(span)))
        } else {
            (unexported_context(parent.span().span_context()), None)
        };
        // Hex by hand, into one string: `format!`, or a string per id, costs more than the rest
        // of this function. `00-{trace id}-{span id}-{flags}`; the ids are slices of it.
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        push_hex(&mut traceparent, &sc.trace_id().to_bytes());
        traceparent.push('-');
        push_hex(&mut traceparent, &sc.span_id().to_bytes());
        traceparent.push('-');
        push_hex(&mut traceparent, &[sc.trace_flags().to_u8()]);
        let trace_id = traceparent[3..35].to_string();
        let span_id = traceparent[36..52].to_string();
        RequestSpan {
            trace_id,
            span_id,
            traceparent,
            span,
        }
    }

    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Exports what is pending (on shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "telemetry shutdown");
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The context the SDK gives a server span (random ids, the caller's trace continued if valid,
/// always sampled as `Sampler::AlwaysOn` decides), without building the span: when nothing is
/// exported, only the ids are used.
fn unexported_context(parent: &SpanContext) -> SpanContext {
    let ids = RandomIdGenerator::default();
    let (trace_id, flags) = if parent.is_valid() {
        (parent.trace_id(), parent.trace_flags())
    } else {
        (ids.new_trace_id(), TraceFlags::default())
    };
    SpanContext::new(
        trace_id,
        ids.new_span_id(),
        flags.with_sampled(true),
        false,
        TraceState::default(),
    )
}

fn base_provider(service: &str) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    SdkTracerProvider::builder()
        // Logboek Dataverwerkingen: every processing action is recorded, none sampled away.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
}

struct Headers<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// One request's span and its ids (for the audit record and for upstream propagation).
pub struct RequestSpan {
    pub trace_id: String,
    pub span_id: String,
    /// What an upstream call carries so that it joins this trace.
    pub traceparent: String,
    /// Built only when spans are exported; boxed, so that a request future that holds the
    /// span stays small when none is.
    span: Option<Box<opentelemetry_sdk::trace::Span>>,
}

impl RequestSpan {
    pub fn finish(self, name: Option<String>, attributes: Vec<KeyValue>, status: u16) {
        let Some(mut span) = self.span else {
            return;
        };
        if let Some(name) = name {
            span.update_name(name);
        }
        span.set_attributes(attributes);
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub product: String,
    pub decision: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub product: String,
}

/// The audit writer's counters in the OpenMetrics text format (they are owned by the writer and
/// read at scrape time).
pub fn audit_families(s: &crate::audit::AuditStats) -> String {
    let mut out = String::new();
    for (name, help, value) in [
        (
            "audit_batches",
            "Audit batches committed",
            s.batches_committed,
        ),
        (
            "audit_records",
            "Audit records committed",
            s.records_committed,
        ),
        (
            "audit_failed_batches",
            "Audit batches that failed (their requests were refused)",
            s.batches_failed,
        ),
        (
            "audit_checkpoints",
            "Signed audit checkpoints written",
            s.checkpoints_written,
        ),
    ] {
        out.push_str(&format!(
            "# HELP sluis_{name} {help}.\n# TYPE sluis_{name} counter\nsluis_{name}_total {value}\n"
        ));
    }
    out.push_str("# HELP sluis_audit_batch_size Records per committed audit batch.\n# TYPE sluis_audit_batch_size histogram\n");
    let mut cumulative = 0;
    for (bound, count) in s.batch_sizes {
        cumulative += count;
        let le = if bound == u64::MAX {
            "+Inf".to_string()
        } else {
            format!("{bound}.0")
        };
        out.push_str(&format!(
            "sluis_audit_batch_size_bucket{{le=\"{le}\"}} {cumulative}\n"
        ));
    }
    if s.batch_sizes.last().is_none_or(|(b, _)| *b != u64::MAX) {
        out.push_str(&format!(
            "sluis_audit_batch_size_bucket{{le=\"+Inf\"}} {cumulative}\n"
        ));
    }
    out.push_str(&format!(
        "sluis_audit_batch_size_count {}\nsluis_audit_batch_size_sum {}\n",
        s.batches_committed, s.records_committed
    ));
    out
}

/// Prometheus metrics. Values owned elsewhere (audit queue, policy store, portal) are read at
/// scrape time.
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub audit_queue_depth: Gauge,
    pub policy_reload_failures: Gauge,
    registry: Registry,
    /// The series `observe` has used, by product: found by `&str`, where the families are
    /// looked up by their owned labels (two strings built and hashed per request).
    handles: RwLock<HashMap<String, ProductSeries>>,
}

/// One product's series in the request families (handles share the families' values).
struct ProductSeries {
    latency: Histogram,
    requests: Vec<((&'static str, u16), Counter)>,
}

impl Metrics {
    fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 50 µs … ~1.6 s: the audited path lives in the low milliseconds.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00005, 2.0, 16,
            ))
        });
        let audit_queue_depth = Gauge::default();
        let policy_reload_failures = Gauge::default();
        let mut registry = Registry::with_prefix("sluis");
        registry.register(
            "requests",
            "Requests by product, decision and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to audited response headers",
            latency.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for their batch",
            audit_queue_depth.clone(),
        );
        registry.register(
            "policy_reload_failures",
            "Policy edits that failed to load since start (the last valid version stays in force)",
            policy_reload_failures.clone(),
        );
        Self {
            requests,
            latency,
            audit_queue_depth,
            policy_reload_failures,
            registry,
            handles: RwLock::default(),
        }
    }

    pub fn observe(
        &self,
        product: Option<&str>,
        decision: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let product = product.unwrap_or("-");
        let seconds = elapsed.as_secs_f64();
        {
            let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = handles.get(product) {
                if let Some((_, c)) = series
                    .requests
                    .iter()
                    .find(|(k, _)| *k == (decision, status))
                {
                    c.inc();
                    series.latency.observe(seconds);
                    return;
                }
            }
        }
        let requests = (*self.requests.get_or_create(&RequestLabels {
            product: product.to_string(),
            decision,
            status,
        }))
        .clone();
        let latency = (*self.latency.get_or_create(&LatencyLabels {
            product: product.to_string(),
        }))
        .clone();
        requests.inc();
        latency.observe(seconds);
        let mut handles = self.handles.write().unwrap_or_else(|e| e.into_inner());
        let series = handles
            .entry(product.to_string())
            .or_insert_with(|| ProductSeries {
                latency,
                requests: Vec::new(),
            });
        if !series
            .requests
            .iter()
            .any(|(k, _)| *k == (decision, status))
        {
            series.requests.push(((decision, status), requests));
        }
    }

    /// The OpenMetrics text exposition, with `extra` (already encoded families) before `# EOF`.
    pub fn encode(&self, extra: &str) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out.push_str(extra);
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unexported() -> Telemetry {
        Telemetry::from_settings(&TelemetrySettings::default()).unwrap()
    }

    #[test]
    fn an_unexported_span_continues_the_callers_trace() {
        let t = unexported();
        assert!(!t.exporting());
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let span = t.request_span("GET", Some(caller), None);
        assert_eq!(span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.span_id.len(), 16);
        assert_ne!(span.span_id, "00f067aa0ba902b7", "a span of its own");
        assert_eq!(
            span.traceparent,
            format!("00-{}-{}-01", span.trace_id, span.span_id),
            "sampled, as Sampler::AlwaysOn decides"
        );
        span.finish(Some("GET /x".into()), vec![], 200);
    }

    #[test]
    fn without_a_valid_caller_a_trace_starts() {
        let t = unexported();
        for caller in [
            None,
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            let a = t.request_span("GET", caller, None);
            let b = t.request_span("GET", caller, None);
            assert_ne!(a.trace_id, b.trace_id);
            assert_eq!(a.trace_id.len(), 32);
            assert_ne!(a.trace_id, "0".repeat(32));
            assert_eq!(a.traceparent, format!("00-{}-{}-01", a.trace_id, a.span_id));
        }
    }

    #[test]
    fn ids_are_formatted_as_the_sdk_formats_them() {
        let sc = SpanContext::new(
            opentelemetry::trace::TraceId::from(0x0a_u128),
            opentelemetry::trace::SpanId::from(0x0b_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let t = unexported();
        let parent = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        let span = t.request_span("GET", Some(&parent), None);
        assert_eq!(span.trace_id, sc.trace_id().to_string());
        assert_eq!(span.trace_id, format!("{:032x}", 0x0a));
    }

    #[test]
    fn remembered_label_sets_count_in_the_families() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.observe(Some("a"), "permit", 200, ms);
        m.observe(Some("a"), "permit", 200, ms);
        m.observe(Some("a"), "deny", 403, ms);
        m.observe(None, "deny", 404, ms);
        let text = m.encode("");
        for line in [
            r#"sluis_requests_total{product="a",decision="permit",status="200"} 2"#,
            r#"sluis_requests_total{product="a",decision="deny",status="403"} 1"#,
            r#"sluis_requests_total{product="-",decision="deny",status="404"} 1"#,
            r#"sluis_request_duration_seconds_count{product="a"} 3"#,
            r#"sluis_request_duration_seconds_count{product="-"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
