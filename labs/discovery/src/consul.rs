//! Consul's wire format: registrations decoded from its JSON, errors answered as it answers
//! them (a status code and a plain-text message, which clients show or parse), and the
//! response shapes its clients read.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use discovery_core::{
    CheckKind, CheckSpec, CheckState, InstanceView, Millis, RegistryError, ServiceSpec, Status,
};

use crate::decode::{duration, normalise};

/// The node every instance of this one-process registry lives on.
pub const NODE: &str = "registry";
/// The datacenter it reports.
pub const DATACENTER: &str = "dc1";
/// Consul's default HTTP check timeout.
const DEFAULT_TIMEOUT: Millis = Millis(10_000);

/// An error as Consul gives it: a status and a plain-text reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsulError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message, as Consul words it.
    pub message: String,
}

impl ConsulError {
    /// A 400 Bad Request with `message`.
    pub fn bad_request(message: impl Into<String>) -> ConsulError {
        ConsulError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ConsulError {
        ConsulError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for ConsulError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

// ANCHOR: errors
impl From<RegistryError> for ConsulError {
    fn from(error: RegistryError) -> ConsulError {
        let message = error.to_string();
        match error {
            RegistryError::MissingName | RegistryError::InvalidCheck(_) => {
                ConsulError::bad_request(message)
            }
            RegistryError::UnknownService(_) | RegistryError::UnknownCheck(_) => {
                ConsulError::not_found(message)
            }
            RegistryError::NotTtl(_) => ConsulError::bad_request(message),
            RegistryError::Full { .. } => ConsulError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message,
            },
            RegistryError::DuplicateWatch(_) => ConsulError::bad_request(message),
        }
    }
}
// ANCHOR_END: errors

/// Parses a body as JSON and folds its keys.
pub fn body_json(bytes: &[u8]) -> Result<Value, ConsulError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| ConsulError::bad_request(format!("Request decode failed: {error}")))?;
    Ok(normalise(value))
}

fn decode_failed(what: &str) -> ConsulError {
    ConsulError::bad_request(format!("Request decode failed: {what}"))
}

fn string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, ConsulError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(decode_failed(&format!("{key} must be a string"))),
    }
}

fn duration_of(object: &Map<String, Value>, key: &str) -> Result<Option<Millis>, ConsulError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(value) => duration(value)
            .map(Some)
            .map_err(|why| ConsulError::bad_request(format!("Request decode failed: {why}"))),
    }
}

/// An instance from the body of `PUT /v1/agent/service/register`.
pub fn agent_registration(body: &Value) -> Result<ServiceSpec, ConsulError> {
    let object = body
        .as_object()
        .ok_or_else(|| decode_failed("the body must be a JSON object"))?;
    let name = string(object, "name")?.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ConsulError::bad_request("Missing service name"));
    }
    let id = string(object, "id")?
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut checks = Vec::new();
    if let Some(check) = object.get("check").filter(|c| !c.is_null()) {
        checks.push(check.clone());
    }
    match object.get("checks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => checks.extend(list.iter().cloned()),
        Some(_) => return Err(decode_failed("Checks must be a list")),
    }
    instance(object, id, name, &checks)
}

/// An instance from the body of `PUT /v1/catalog/register` (`Service` plus `Check` or
/// `Checks`, each check's `Definition` holding `HTTP`, `Interval`, `Timeout`, `TTL` and
/// `DeregisterCriticalServiceAfter`).
pub fn catalog_registration(body: &Value) -> Result<ServiceSpec, ConsulError> {
    let object = body
        .as_object()
        .ok_or_else(|| decode_failed("the body must be a JSON object"))?;
    if string(object, "node")?.is_none_or(|node| node.is_empty()) {
        return Err(ConsulError::bad_request("Must provide node"));
    }
    let service = match object.get("service") {
        Some(Value::Object(service)) => service,
        _ => return Err(ConsulError::bad_request("Must provide service")),
    };
    let name = string(service, "service")?.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ConsulError::bad_request("Must provide service name"));
    }
    let id = string(service, "id")?
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut checks = Vec::new();
    let mut add = |check: &Value| -> Result<(), ConsulError> {
        let mut check = check
            .as_object()
            .cloned()
            .ok_or_else(|| decode_failed("a check must be an object"))?;
        if let Some(Value::Object(definition)) = check.remove("definition") {
            check.extend(definition);
        }
        checks.push(Value::Object(check));
        Ok(())
    };
    if let Some(check) = object.get("check").filter(|c| !c.is_null()) {
        add(check)?;
    }
    if let Some(Value::Array(list)) = object.get("checks") {
        for check in list {
            add(check)?;
        }
    }
    let mut service = service.clone();
    if service
        .get("address")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && let Some(address) = object.get("address")
    {
        service.insert("address".to_owned(), address.clone());
    }
    instance(&service, id, name, &checks)
}

fn instance(
    object: &Map<String, Value>,
    id: String,
    name: String,
    checks: &[Value],
) -> Result<ServiceSpec, ConsulError> {
    let address = string(object, "address")?.unwrap_or_default();
    if let Ok(ip) = address.parse::<std::net::IpAddr>()
        && ip.is_unspecified()
    {
        return Err(ConsulError::bad_request(format!(
            "Invalid service address {address:?}: an unspecified address cannot be called"
        )));
    }
    let port = match object.get("port") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| decode_failed("Port must be a number from 0 to 65535"))?,
    };
    let tags = match object.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|tag| tag.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| decode_failed("Tags must be strings"))?,
        Some(_) => return Err(decode_failed("Tags must be a list")),
    };
    let meta = match object.get("meta") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(meta)) => meta
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(|| decode_failed("Meta values must be strings"))?,
        Some(_) => return Err(decode_failed("Meta must be an object")),
    };
    let several = checks.len() > 1;
    let checks = checks
        .iter()
        .enumerate()
        .map(|(n, check)| {
            let default_id = if several {
                format!("service:{id}:{}", n + 1)
            } else {
                format!("service:{id}")
            };
            check_spec(check, default_id, &name)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ServiceSpec {
        id,
        name,
        address: if address.is_empty() {
            "127.0.0.1".to_owned()
        } else {
            address
        },
        port,
        tags,
        meta,
        checks,
    })
}

// ANCHOR: check_spec
fn check_spec(value: &Value, default_id: String, service: &str) -> Result<CheckSpec, ConsulError> {
    let object = value
        .as_object()
        .ok_or_else(|| decode_failed("a check must be an object"))?;
    let id = string(object, "checkid")?
        .or(string(object, "id")?)
        .filter(|id| !id.is_empty())
        .unwrap_or(default_id);
    let name = string(object, "name")?.unwrap_or_else(|| format!("Service '{service}' check"));
    let ttl = duration_of(object, "ttl")?;
    let http = string(object, "http")?;
    let interval = duration_of(object, "interval")?;
    let timeout = duration_of(object, "timeout")?;
    let kind = match (ttl, http, interval) {
        (Some(ttl), None, _) => CheckKind::Ttl { ttl },
        (None, Some(url), Some(interval)) => CheckKind::Http {
            url,
            interval,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        },
        (None, Some(_), None) => {
            return Err(ConsulError::bad_request(
                "Invalid check: Interval must be > 0 for an HTTP check",
            ));
        }
        _ => {
            return Err(ConsulError::bad_request(
                "Invalid check: TTL must be > 0 for TTL checks, or HTTP and Interval given \
                 (this registry runs TTL and HTTP checks only)",
            ));
        }
    };
    let initial = match string(object, "status")?.as_deref() {
        None | Some("") | Some("critical") => Status::Critical,
        Some("passing") => Status::Passing,
        Some("warning") => Status::Warning,
        Some(other) => {
            return Err(ConsulError::bad_request(format!(
                "Invalid check status: {other:?}"
            )));
        }
    };
    Ok(CheckSpec {
        id,
        name,
        kind,
        deregister_after: duration_of(object, "deregistercriticalserviceafter")?,
        initial,
    })
}
// ANCHOR_END: check_spec

/// A status word from a check update's `Status`.
pub fn status_word(word: &str) -> Result<Status, ConsulError> {
    match word {
        "passing" => Ok(Status::Passing),
        "warning" => Ok(Status::Warning),
        "critical" => Ok(Status::Critical),
        other => Err(ConsulError::bad_request(format!(
            "Invalid check status: {other:?}"
        ))),
    }
}

fn weights() -> Value {
    json!({"Passing": 1, "Warning": 1})
}

/// An instance as `/v1/agent/services` and `/v1/health/service` show it.
pub fn agent_service(spec: &ServiceSpec) -> Value {
    json!({
        "ID": spec.id,
        "Service": spec.name,
        "Tags": spec.tags,
        "Meta": spec.meta,
        "Address": spec.address,
        "Port": spec.port,
        "Weights": weights(),
        "EnableTagOverride": false,
        "Datacenter": DATACENTER,
    })
}

/// A check as `/v1/agent/checks` and `/v1/health/service` show it.
pub fn check(state: &CheckState, service: &ServiceSpec) -> Value {
    let kind = match state.spec.kind {
        CheckKind::Ttl { .. } => "ttl",
        CheckKind::Http { .. } => "http",
    };
    json!({
        "Node": NODE,
        "CheckID": state.spec.id,
        "Name": state.spec.name,
        "Status": state.status.as_str(),
        "Notes": "",
        "Output": state.output,
        "ServiceID": service.id,
        "ServiceName": service.name,
        "ServiceTags": service.tags,
        "Type": kind,
    })
}

fn node(index: u64) -> Value {
    json!({
        "ID": "00000000-0000-0000-0000-000000000001",
        "Node": NODE,
        "Address": "127.0.0.1",
        "Datacenter": DATACENTER,
        "TaggedAddresses": {},
        "Meta": {},
        "CreateIndex": 1,
        "ModifyIndex": index,
    })
}

// ANCHOR: health_entry
/// One entry of `/v1/health/service/:name`: `{Node, Service, Checks}`, the node's own
/// `serfHealth` check first, as Consul lists it.
pub fn health_entry(view: &InstanceView<'_>) -> Value {
    let mut checks = vec![json!({
        "Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status",
        "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
        "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
    })];
    checks.extend(view.checks.iter().map(|c| check(c, view.spec)));
    json!({ "Node": node(view.modify_index), "Service": agent_service(view.spec), "Checks": checks })
}
// ANCHOR_END: health_entry

/// One entry of `/v1/catalog/service/:name`.
pub fn catalog_entry(view: &InstanceView<'_>) -> Value {
    let spec = view.spec;
    json!({
        "ID": "00000000-0000-0000-0000-000000000001",
        "Node": NODE,
        "Address": "127.0.0.1",
        "Datacenter": DATACENTER,
        "TaggedAddresses": {},
        "NodeMeta": {},
        "ServiceID": spec.id,
        "ServiceName": spec.name,
        "ServiceAddress": spec.address,
        "ServiceTags": spec.tags,
        "ServiceMeta": spec.meta,
        "ServicePort": spec.port,
        "ServiceWeights": weights(),
        "ServiceEnableTagOverride": false,
        "CreateIndex": view.modify_index,
        "ModifyIndex": view.modify_index,
    })
}
