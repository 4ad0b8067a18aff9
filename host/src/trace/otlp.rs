//! Spans out over OTLP/HTTP, JSON encoded (`POST <endpoint>/v1/traces`), in batches.
//!
//! JSON, not protobuf: every OTLP receiver takes both (the Collector, Jaeger, Tempo, vendors'
//! intakes), and JSON needs no code generation here. Ids are hex and 64-bit times are decimal
//! strings, as the OTLP specification's JSON mapping asks. Export never slows the pipeline: spans
//! queue in a bounded channel, and when the receiver falls behind, spans are dropped and counted
//! rather than kept without bound. At shutdown the daemon flushes what is queued.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::spans::{Span, Value};

/// 512 spans per request: the OpenTelemetry SDKs' default batch.
pub const BATCH: usize = 512;

/// 1 s: how long a span waits for others to share its request.
pub const LINGER: Duration = Duration::from_secs(1);

/// 10 s per request, as the OTLP exporters' default.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How the exporter names this daemon (OTLP's resource).
#[derive(Debug, Clone)]
pub struct Resource {
    /// `service.instance.id`: the daemon's id, so that several daemons on one database can be
    /// told apart.
    pub instance: String,
}

/// The request body for `spans`: an `ExportTraceServiceRequest` in OTLP's JSON mapping.
pub fn encode(resource: &Resource, spans: &[Span]) -> Json {
    let spans: Vec<Json> = spans.iter().map(span).collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                attribute("service.name", &Value::Text("mecha".into())),
                attribute("service.version", &Value::Text(env!("CARGO_PKG_VERSION").into())),
                attribute("service.instance.id", &Value::Text(resource.instance.clone())),
            ]},
            "scopeSpans": [{
                "scope": { "name": "mecha", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

fn span(span: &Span) -> Json {
    let mut encoded = json!({
        "traceId": span.trace_id,
        "spanId": span.span_id.to_string(),
        "name": span.name,
        "kind": span.kind as i32,
        "startTimeUnixNano": span.start_ns.to_string(),
        "endTimeUnixNano": span.end_ns.to_string(),
        "attributes": span.attributes.iter().map(|(key, value)| attribute(key, value)).collect::<Vec<_>>(),
        // 2 is STATUS_CODE_ERROR; 0, unset, leaves the verdict to the viewer.
        "status": match &span.error {
            Some(message) => json!({ "code": 2, "message": message }),
            None => json!({ "code": 0 }),
        },
    });
    if let Some(parent) = span.parent {
        encoded["parentSpanId"] = Json::from(parent.to_string());
    }
    encoded
}

fn attribute(key: &str, value: &Value) -> Json {
    let value = match value {
        Value::Text(text) => json!({ "stringValue": text }),
        // int64 is a decimal string in OTLP's JSON.
        Value::Int(int) => json!({ "intValue": int.to_string() }),
        Value::Bool(flag) => json!({ "boolValue": flag }),
    };
    json!({ "key": key, "value": value })
}

/// What the exporter's queue carries.
pub enum Message {
    Span(Span),
    /// Send what came before now, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Posts spans to one receiver.
pub struct Exporter {
    client: reqwest::Client,
    url: reqwest::Url,
    resource: Resource,
    /// Whether the last request failed: a receiver that is down is reported once, not per batch.
    failing: bool,
}

impl Exporter {
    /// `None`, said in the log, when no HTTP client can be made.
    pub fn new(url: reqwest::Url, resource: Resource) -> Option<Exporter> {
        match reqwest::Client::builder().timeout(TIMEOUT).build() {
            Ok(client) => Some(Exporter {
                client,
                url,
                resource,
                failing: false,
            }),
            Err(err) => {
                tracing::error!(error = %err, "could not build the OTLP client; no spans are exported");
                None
            }
        }
    }

    /// Posts what `messages` delivers, in batches of up to [`BATCH`] spans that wait at most
    /// [`LINGER`] for company, until every sender is gone.
    pub async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let mut flushed = None;
            match messages.recv().await {
                None => return,
                Some(Message::Span(span)) => batch.push(span),
                Some(Message::Flush(done)) => flushed = Some(done),
            }
            let deadline = tokio::time::Instant::now() + LINGER;
            while flushed.is_none() && batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, messages.recv()).await {
                    Ok(Some(Message::Span(span))) => batch.push(span),
                    Ok(Some(Message::Flush(done))) => flushed = Some(done),
                    Ok(None) | Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.send(&batch).await;
                batch.clear();
            }
            if let Some(done) = flushed {
                let _ = done.send(());
            }
        }
    }

    async fn send(&mut self, batch: &[Span]) {
        let body = encode(&self.resource, batch);
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|err| err.without_url().to_string())
            .and_then(|response| match response.status() {
                status if status.is_success() => Ok(()),
                status => Err(format!("the receiver answered {status}")),
            });
        let url = &self.url;
        match sent {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(%url, "exporting spans again");
            }
            Ok(()) => {}
            Err(error) if !self.failing => {
                self.failing = true;
                tracing::warn!(%url, %error, spans = batch.len(), "could not export spans; they are dropped until the receiver answers");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::context::SpanId;
    use crate::trace::spans::SpanKind;

    #[test]
    fn spans_are_encoded_in_otlp_json() {
        let root = SpanId::event("0af7651916cd43dd8448eb211c80319c");
        let span = Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: SpanId::task_try("b7ad6b7169203331b7ad6b7169203331", 1),
            parent: Some(root),
            name: "task.completed".into(),
            kind: SpanKind::Client,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_500_000_000,
            error: Some("worker returned 500".into()),
            attributes: vec![
                ("mecha.attempt".into(), Value::Int(1)),
                ("mecha.worker".into(), Value::Text("reviewer".into())),
            ],
        };
        let body = encode(
            &Resource {
                instance: "d-1".into(),
            },
            &[span],
        );
        let resource = &body["resourceSpans"][0];
        assert_eq!(
            resource["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "mecha"}})
        );
        let encoded = &resource["scopeSpans"][0]["spans"][0];
        assert_eq!(encoded["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(encoded["parentSpanId"], root.to_string());
        assert_eq!(encoded["kind"], 3);
        assert_eq!(encoded["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(encoded["endTimeUnixNano"], "1700000000500000000");
        assert_eq!(
            encoded["status"],
            json!({"code": 2, "message": "worker returned 500"})
        );
        assert_eq!(
            encoded["attributes"][0],
            json!({"key": "mecha.attempt", "value": {"intValue": "1"}})
        );
    }
}
