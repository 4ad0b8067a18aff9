//! An OTLP/HTTP trace receiver on loopback, standing in for an OpenTelemetry Collector (no
//! Collector can be installed here).
//!
//! It answers as the Collector's `otlphttp` receiver does: `POST /v1/traces` with
//! `Content-Type: application/json` and a body in OTLP's JSON mapping gets `200` and an empty
//! `ExportTraceServiceResponse` (`{}`); another content type gets `415`, a body that does not
//! parse `400`. It checks each span as a receiver decoding into the protobuf types would: hex
//! ids of the right length, times as decimal strings, a known kind, typed attribute values.
//! A span that fails those checks is kept as a failure the test reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

use super::stand_in::{Running, spawn};

/// One span as received.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent: String,
    pub name: String,
    pub kind: i64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// 0 unset, 1 ok, 2 error.
    pub status: i64,
    /// The status message.
    pub message: String,
    /// Values as text (`intValue` is a decimal string in the JSON mapping).
    pub attributes: BTreeMap<String, String>,
    /// `service.name` of the resource it came under.
    pub service: String,
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    bodies: Vec<String>,
    problems: Vec<String>,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, the value for `otlp_endpoint`.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
    _running: Running,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Received::default()));
        let router = Router::new()
            .route("/v1/traces", post(export))
            .with_state(received.clone());
        Receiver {
            endpoint,
            received,
            _running: spawn(listener, router),
        }
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().expect("lock").spans.clone()
    }

    /// Every request body received so far, as text.
    pub fn bodies(&self) -> Vec<String> {
        self.received.lock().expect("lock").bodies.clone()
    }

    /// What did not decode as OTLP.
    pub fn problems(&self) -> Vec<String> {
        self.received.lock().expect("lock").problems.clone()
    }

    /// Waits up to 30 s until `done` holds for the spans received, and returns them.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..300 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no {what} within 30 s; received {:#?}", self.spans());
    }
}

async fn export(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let json_body = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json_body {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "");
    };
    let mut received = received.lock().expect("lock");
    received
        .bodies
        .push(String::from_utf8_lossy(&body).into_owned());
    for resource in request["resourceSpans"].as_array().into_iter().flatten() {
        let service = resource["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|attribute| attribute["key"] == "service.name")
            .and_then(|attribute| attribute["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                match decode(span, &service) {
                    Ok(span) => received.spans.push(span),
                    Err(problem) => received.problems.push(format!("{problem}: {span}")),
                }
            }
        }
    }
    (StatusCode::OK, "{}")
}

fn decode(span: &Value, service: &str) -> Result<Span, String> {
    let hex = |key: &str, len: usize, required: bool| -> Result<String, String> {
        match span[key].as_str() {
            None | Some("") if !required => Ok(String::new()),
            Some(text)
                if text.len() == len
                    && text
                        .bytes()
                        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Ok(text.to_owned())
            }
            other => Err(format!("{key} is not {len} hex digits: {other:?}")),
        }
    };
    let nanos = |key: &str| -> Result<u64, String> {
        span[key]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| format!("{key} is not a decimal string"))
    };
    let kind = span["kind"].as_i64().filter(|kind| (0..=5).contains(kind));
    let mut attributes = BTreeMap::new();
    for attribute in span["attributes"].as_array().into_iter().flatten() {
        let key = attribute["key"]
            .as_str()
            .ok_or("an attribute without a key")?;
        let value = &attribute["value"];
        let text = if let Some(text) = value["stringValue"].as_str() {
            text.to_owned()
        } else if let Some(int) = value["intValue"].as_str() {
            int.parse::<i64>()
                .map_err(|_| format!("intValue of {key} is not an int64"))?
                .to_string()
        } else if let Some(flag) = value["boolValue"].as_bool() {
            flag.to_string()
        } else {
            return Err(format!("attribute {key} has no typed value"));
        };
        attributes.insert(key.to_owned(), text);
    }
    Ok(Span {
        trace_id: hex("traceId", 32, true)?,
        span_id: hex("spanId", 16, true)?,
        parent: hex("parentSpanId", 16, false)?,
        name: span["name"]
            .as_str()
            .ok_or("a span without a name")?
            .to_owned(),
        kind: kind.ok_or("an unknown kind")?,
        start_ns: nanos("startTimeUnixNano")?,
        end_ns: nanos("endTimeUnixNano")?,
        status: span["status"]["code"].as_i64().unwrap_or(0),
        message: span["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        attributes,
        service: service.to_owned(),
    })
}
