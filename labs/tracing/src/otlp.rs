//! OTLP/HTTP trace requests: decoded from protobuf or JSON with `opentelemetry-proto`'s
//! messages, and turned into the core's [`SpanRecord`]s (ids checked, `service.name` from the
//! resource, error from the span's status).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use trace_context_core::{SpanId, SpanRecord, TraceId};

/// The two encodings OTLP/HTTP allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset` ignored).
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        match value.split(';').next().unwrap_or_default().trim() {
            "application/x-protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }
}

/// A span as received: the core's record and its attributes, for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// What the core needs.
    pub record: SpanRecord,
    /// Every attribute of the span, as text.
    pub attributes: Vec<(String, String)>,
}

/// Decodes a request body.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| format!("not an OTLP protobuf request: {e}")),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| format!("not an OTLP JSON request: {e}"))
        }
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// The spans of a request, and how many were rejected with the first reason.
pub fn spans(request: ExportTraceServiceRequest) -> (Vec<Received>, u64, Option<String>) {
    let (mut out, mut rejected, mut reason) = (Vec::new(), 0u64, None);
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map_or_else(|| "unknown_service".to_owned(), |(_, v)| v.clone());
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            let ids = (
                <[u8; 16]>::try_from(span.trace_id.as_slice()),
                <[u8; 8]>::try_from(span.span_id.as_slice()),
            );
            let parent = match span.parent_span_id.len() {
                0 => Ok(None),
                _ => <[u8; 8]>::try_from(span.parent_span_id.as_slice()).map(|p| Some(SpanId(p))),
            };
            let (Ok(trace), Ok(id), Ok(parent)) = (ids.0, ids.1, parent) else {
                rejected += 1;
                reason.get_or_insert_with(|| {
                    format!("span {:?}: a trace id is 16 bytes, a span id 8", span.name)
                });
                continue;
            };
            let error = span
                .status
                .as_ref()
                .is_some_and(|s| s.code == StatusCode::Error as i32);
            out.push(Received {
                record: SpanRecord {
                    trace_id: TraceId(trace),
                    span_id: SpanId(id),
                    parent,
                    service: service.clone(),
                    name: span.name.clone(),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    error,
                },
                attributes: attributes(&span.attributes),
            });
        }
    }
    (out, rejected, reason)
}

/// An OTLP request holding `spans` of one service: what the tests and the benchmark send.
pub fn request(service: &str, spans: &[SpanRecord]) -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    let string = |s: &str| {
        Some(AnyValue {
            value: Some(Value::StringValue(s.to_owned())),
        })
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string(service),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .iter()
                    .map(|s| Span {
                        trace_id: s.trace_id.0.to_vec(),
                        span_id: s.span_id.0.to_vec(),
                        parent_span_id: s.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
                        name: s.name.clone(),
                        start_time_unix_nano: s.start_ns,
                        end_time_unix_nano: s.end_ns,
                        status: s.error.then(|| Status {
                            code: StatusCode::Error as i32,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
