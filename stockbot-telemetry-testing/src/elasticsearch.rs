//! A fake Elasticsearch for tests: the `_bulk`, `_search`, `_index_template` and
//! `_ilm/policy` APIs on a loopback port. `_bulk` parses real NDJSON,
//! storing documents per data stream with `create` semantics (an `_id` already stored answers
//! 409), answering like Elasticsearch (HTTP 200 with `"errors": true` and a status per item),
//! and taking scripted faults: a status for the whole request (with `Retry-After`), statuses per
//! item, delays, dropped connections, garbage bodies, and a request size limit (413).
//!
//! ```
//! use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};
//!
//! let es = FakeElasticsearch::start().unwrap();
//! es.script([EsReply::status(429).retry_after(1), EsReply::items([201, 503, 400])]);
//! assert!(es.url().starts_with("http://127.0.0.1:"));
//! assert!(es.documents().is_empty());
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http_server::{HttpServer, Request, Response};

/// Default largest request body (Elasticsearch's `http.max_content_length` is 100 MB).
pub const DEFAULT_MAX_BODY: usize = 100 * 1024 * 1024;

/// One scripted answer to a `_bulk` request; without a script the fake behaves normally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsReply {
    status: Option<u16>,
    retry_after: Option<u64>,
    items: Option<Vec<u16>>,
    delay: Duration,
    close: bool,
    body: Option<Vec<u8>>,
}

impl EsReply {
    /// Normal behaviour (store, 201 or 409 per item).
    pub fn ok() -> Self {
        EsReply::default()
    }
    /// The whole request answered with `status` (nothing stored), e.g. 429, 503, 401.
    pub fn status(status: u16) -> Self {
        EsReply {
            status: Some(status),
            ..EsReply::default()
        }
    }
    /// Adds `Retry-After: <secs>`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// HTTP 200 with these statuses for the request's items, in order (items past the list
    /// behave normally). 2xx items are stored; others are not and carry an error object.
    pub fn items(statuses: impl IntoIterator<Item = u16>) -> Self {
        EsReply {
            items: Some(statuses.into_iter().collect()),
            ..EsReply::default()
        }
    }
    /// Waits before answering.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// Drops the connection without answering (nothing stored).
    pub fn close() -> Self {
        EsReply {
            close: true,
            ..EsReply::default()
        }
    }
    /// HTTP 200 with this raw body (nothing stored), e.g. garbage.
    pub fn body(body: Vec<u8>) -> Self {
        EsReply {
            body: Some(body),
            ..EsReply::default()
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The data stream or index.
    pub index: String,
    /// Its `_id`.
    pub id: String,
    /// The source.
    pub source: Value,
}

/// A `_bulk` request the fake received.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    /// Request path, e.g. `/_bulk`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// It came gzip-compressed.
    pub gzip: bool,
    /// Body size as received (decompressed), in bytes.
    pub bytes: usize,
    /// `(index, _id)` of each item, in order.
    pub items: Vec<(String, String)>,
    /// The HTTP status answered (0: connection dropped).
    pub answered: u16,
    /// The status given to each item (empty unless answered 200 with items).
    pub item_statuses: Vec<u16>,
    /// When the answer was sent.
    pub at: Instant,
}

impl BulkRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http_server::header(&self.headers, name)
    }
}

#[derive(Default)]
struct State {
    /// Keep the documents' sources (off for throughput runs: only ids and a count are kept).
    keep_sources: bool,
    stored: u64,
    script: VecDeque<EsReply>,
    documents: Vec<Document>,
    ids: HashSet<(String, String)>,
    requests: Vec<BulkRequest>,
    templates: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
}

/// `PUT /_index_template/<name>` and `PUT /_ilm/policy/<name>`: stored after the checks
/// Elasticsearch makes first (a template needs `index_patterns`; a policy needs `phases`).
fn put_definition(request: &Request, state: &Mutex<State>) -> Response {
    let json_error = |reason: String| {
        Response::new(
            400,
            "application/json",
            error_json(400, "parse_exception", &reason),
        )
    };
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return json_error(format!("request body is not JSON: {e}")),
    };
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(name) = request.path.strip_prefix("/_index_template/") {
        if !body["index_patterns"].is_array() {
            return json_error("index_patterns is missing".into());
        }
        st.templates.insert(name.to_owned(), body);
    } else if let Some(name) = request.path.strip_prefix("/_ilm/policy/") {
        if !body["policy"]["phases"].is_object() {
            return json_error("policy.phases is missing".into());
        }
        st.policies.insert(name.to_owned(), body);
    }
    Response::new(
        200,
        "application/json",
        br#"{"acknowledged":true}"#.to_vec(),
    )
}

/// Whether `source` matches a query of the subset the SDK sends: `term`, and `bool` with
/// `should` (at least one) / `must` (all) of terms, on flat dotted field names.
fn matches(query: &Value, source: &Value) -> bool {
    if let Some(term) = query.get("term").and_then(Value::as_object) {
        return term.iter().all(|(field, wanted)| {
            let wanted = wanted.get("value").unwrap_or(wanted);
            source.get(field) == Some(wanted)
        });
    }
    if let Some(b) = query.get("bool") {
        let all = |k: &str| {
            b.get(k)
                .and_then(Value::as_array)
                .is_none_or(|qs| qs.iter().all(|q| matches(q, source)))
        };
        let any = b
            .get("should")
            .and_then(Value::as_array)
            .is_none_or(|qs| qs.iter().any(|q| matches(q, source)));
        return all("must") && all("filter") && any;
    }
    query.get("match_all").is_some()
}

/// `POST /<target>/_search`: matching documents of the target, sorted by `@timestamp`.
fn search(request: &Request, state: &Mutex<State>) -> Response {
    let target = request
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(json!({}));
    let size = body["size"].as_u64().unwrap_or(10) as usize;
    let query = body
        .get("query")
        .cloned()
        .unwrap_or(json!({"match_all": {}}));
    let st = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut hits: Vec<&Document> = st
        .documents
        .iter()
        .filter(|d| d.index == target && matches(&query, &d.source))
        .collect();
    hits.sort_by_key(|d| d.source["@timestamp"].as_str().unwrap_or("").to_owned());
    let total = hits.len();
    let hits: Vec<Value> = hits
        .into_iter()
        .take(size)
        .map(|d| json!({"_index": d.index, "_id": d.id, "_source": d.source}))
        .collect();
    let answer = json!({"took": 1, "timed_out": false,
        "hits": {"total": {"value": total, "relation": "eq"}, "hits": hits}});
    Response::new(200, "application/json", answer.to_string().into_bytes())
}

/// The fake; stops on drop.
pub struct FakeElasticsearch {
    server: HttpServer,
    state: Arc<Mutex<State>>,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for FakeElasticsearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeElasticsearch")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

fn error_json(status: u16, kind: &str, reason: &str) -> Vec<u8> {
    json!({"error": {"type": kind, "reason": reason}, "status": status})
        .to_string()
        .into_bytes()
}

fn item_error(status: u16) -> Value {
    let (kind, reason) = match status {
        409 => (
            "version_conflict_engine_exception",
            "document already exists",
        ),
        429 => (
            "es_rejected_execution_exception",
            "rejected execution (queue full)",
        ),
        400 => ("document_parsing_exception", "failed to parse field"),
        404 => ("index_not_found_exception", "no such index"),
        s if s >= 500 => (
            "unavailable_shards_exception",
            "primary shard is not active",
        ),
        _ => ("illegal_argument_exception", "scripted failure"),
    };
    json!({"type": kind, "reason": reason})
}

fn bulk(request: &Request, state: &Mutex<State>, max_body: usize) -> Response {
    let reply = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .script
        .pop_front()
        .unwrap_or_default();
    std::thread::sleep(reply.delay);
    let mut record = BulkRequest {
        path: request.path.clone(),
        headers: request.headers.clone(),
        gzip: request.gzip,
        bytes: request.body.len(),
        items: Vec::new(),
        answered: 0,
        item_statuses: Vec::new(),
        at: Instant::now(),
    };
    let respond = |record: BulkRequest, response: Response| {
        state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .requests
            .push(record);
        response
    };
    if request.body.len() > max_body {
        record.answered = 413;
        return respond(
            record,
            Response::new(
                413,
                "application/json",
                error_json(413, "content_too_long", "request body is too large"),
            ),
        );
    }
    // Parse first: even a scripted failure records which items it refused.
    let keep_sources = state.lock().unwrap_or_else(|p| p.into_inner()).keep_sources;
    let parsed = parse_bulk(request, keep_sources);
    if let Ok(items) = &parsed {
        record.items = items
            .iter()
            .map(|(i, id, _)| (i.clone(), id.clone()))
            .collect();
    }
    if reply.close {
        let mut r = Response::new(0, "application/json", Vec::new());
        r.close = true;
        return respond(record, r);
    }
    if let Some(status) = reply.status {
        record.answered = status;
        let mut r = Response::new(
            status,
            "application/json",
            error_json(status, "scripted", "scripted failure"),
        );
        if let Some(s) = reply.retry_after {
            r.headers.push(("retry-after".into(), s.to_string()));
        }
        return respond(record, r);
    }
    if let Some(body) = reply.body {
        record.answered = 200;
        return respond(record, Response::new(200, "application/json", body));
    }
    let items = match parsed {
        Ok(items) => items,
        Err((status, kind, reason)) => {
            record.answered = status;
            return respond(
                record,
                Response::new(
                    status,
                    "application/json",
                    error_json(status, kind, &reason),
                ),
            );
        }
    };
    let mut answers = Vec::with_capacity(items.len());
    let mut errors = false;
    {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        for (i, (index, id, source)) in items.into_iter().enumerate() {
            let scripted = reply.items.as_ref().and_then(|s| s.get(i)).copied();
            let key = (index.clone(), id.clone());
            let status = match scripted {
                Some(s) if !(200..300).contains(&s) => s,
                _ if st.ids.contains(&key) => 409,
                _ => {
                    st.ids.insert(key);
                    st.stored += 1;
                    if st.keep_sources {
                        st.documents.push(Document {
                            index: index.clone(),
                            id: id.clone(),
                            source,
                        });
                    }
                    201
                }
            };
            let mut item = format!(
                "{{\"create\":{{\"_index\":{},\"_id\":{},\"status\":{status}",
                Value::from(index.as_str()),
                Value::from(id.as_str())
            );
            if !(200..300).contains(&status) {
                errors = true;
                item.push_str(",\"error\":");
                item.push_str(&item_error(status).to_string());
            }
            item.push_str("}}");
            record.item_statuses.push(status);
            answers.push(item);
        }
    }
    record.answered = 200;
    let body = format!(
        "{{\"took\":1,\"errors\":{errors},\"items\":[{}]}}",
        answers.join(",")
    );
    respond(
        record,
        Response::new(200, "application/json", body.into_bytes()),
    )
}

type Parsed = Vec<(String, String, Value)>;

/// The `create` items of a `_bulk` body, or the error Elasticsearch would answer.
/// Parses the items; without `keep_sources` a document is only checked to be a JSON object
/// (not parsed), which keeps the fake cheap in throughput runs.
fn parse_bulk(
    request: &Request,
    keep_sources: bool,
) -> Result<Parsed, (u16, &'static str, String)> {
    let content_type = request.header("content-type").unwrap_or("");
    if !(content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/json"))
    {
        return Err((
            406,
            "media_type_header_exception",
            format!("Content-Type header [{content_type}] is not supported"),
        ));
    }
    if !request.body.ends_with(b"\n") {
        return Err((
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]".into(),
        ));
    }
    let default_index = request
        .path
        .strip_suffix("/_bulk")
        .map(|p| p.trim_start_matches('/'))
        .filter(|p| !p.is_empty());
    let mut lines = request
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty());
    let mut items = Vec::new();
    while let Some(action) = lines.next() {
        let action: Value = serde_json::from_slice(action).map_err(|e| {
            (
                400,
                "x_content_parse_exception",
                format!("malformed action: {e}"),
            )
        })?;
        let (op, meta) = action.as_object().and_then(|o| o.iter().next()).ok_or((
            400,
            "illegal_argument_exception",
            "empty action".to_owned(),
        ))?;
        if op != "create" {
            return Err((
                400,
                "illegal_argument_exception",
                format!("only create is allowed into a data stream, got [{op}]"),
            ));
        }
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .ok_or((
                400,
                "action_request_validation_exception",
                "index is missing".into(),
            ))?
            .to_owned();
        let id = meta
            .get("_id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("auto-{}", items.len()), str::to_owned);
        let source = lines.next().ok_or((
            400,
            "illegal_argument_exception",
            "action without a document".into(),
        ))?;
        let source: Value = if keep_sources {
            serde_json::from_slice(source).map_err(|e| {
                (
                    400,
                    "document_parsing_exception",
                    format!("malformed document: {e}"),
                )
            })?
        } else {
            let t = source.trim_ascii();
            if !(t.starts_with(b"{") && t.ends_with(b"}")) {
                return Err((
                    400,
                    "document_parsing_exception",
                    "malformed document: not a JSON object".into(),
                ));
            }
            Value::Null
        };
        items.push((index, id, source));
    }
    Ok(items)
}

impl FakeElasticsearch {
    /// Starts on a free loopback port.
    ///
    /// # Errors
    /// If no loopback port can be bound.
    pub fn start() -> std::io::Result<Self> {
        FakeElasticsearch::with_max_body(DEFAULT_MAX_BODY)
    }

    /// Starts with a request size limit: larger requests get 413.
    ///
    /// # Errors
    /// If no loopback port can be bound.
    pub fn with_max_body(max_body: usize) -> std::io::Result<Self> {
        FakeElasticsearch::start_inner(max_body, false)
    }

    /// Starts over TLS with a certificate for `127.0.0.1` signed by a CA made for this fake:
    /// [`FakeElasticsearch::ca_pem`] is that CA, to trust in the client under test. A client
    /// that does not trust it must refuse the connection.
    ///
    /// # Errors
    /// If no loopback port can be bound or the certificates cannot be made.
    pub fn start_tls() -> std::io::Result<Self> {
        FakeElasticsearch::start_inner(DEFAULT_MAX_BODY, true)
    }

    /// The CA certificate (PEM) of a TLS fake.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn start_inner(max_body: usize, tls: bool) -> std::io::Result<Self> {
        let pki = tls
            .then(crate::http_server::TestPki::generate)
            .transpose()?;
        let state = Arc::new(Mutex::new(State {
            keep_sources: true,
            ..State::default()
        }));
        let st = Arc::clone(&state);
        // The transport takes anything up to Elasticsearch's own limit; the fake applies
        // `max_body` itself so that 413 answers are recorded like the others.
        let server = HttpServer::start_with(
            "fake-elasticsearch",
            DEFAULT_MAX_BODY.max(max_body),
            Arc::new(move |request: Request| {
                if request.method == "POST" && request.path.ends_with("/_bulk") {
                    bulk(&request, &st, max_body)
                } else if request.method == "PUT"
                    && (request.path.starts_with("/_index_template/")
                        || request.path.starts_with("/_ilm/policy/"))
                {
                    put_definition(&request, &st)
                } else if request.method == "POST" && request.path.ends_with("/_search") {
                    search(&request, &st)
                } else {
                    Response::new(
                        404,
                        "application/json",
                        error_json(404, "no_handler_found_exception", "no handler found"),
                    )
                }
            }),
            pki.as_ref().map(|p| Arc::clone(&p.server)),
        )?;
        Ok(FakeElasticsearch {
            server,
            state,
            ca_pem: pki.map(|p| p.ca_pem),
        })
    }

    /// `http://127.0.0.1:<port>`, or `https://` for a TLS fake.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.server.addr)
    }

    /// Queues answers for the next `_bulk` requests (afterwards: normal behaviour).
    pub fn script(&self, replies: impl IntoIterator<Item = EsReply>) {
        self.lock().script.extend(replies);
    }

    /// Forgets the scripted answers not used yet (back to normal behaviour).
    pub fn clear_script(&self) {
        self.lock().script.clear();
    }

    /// Keeps only the ids and a count of stored documents, not their sources (for throughput
    /// runs: [`FakeElasticsearch::documents`] then stays empty).
    pub fn discard_sources(&self) {
        self.lock().keep_sources = false;
    }

    /// How many documents were stored.
    pub fn stored_count(&self) -> u64 {
        self.lock().stored
    }

    /// Every stored document, in arrival order.
    pub fn documents(&self) -> Vec<Document> {
        self.lock().documents.clone()
    }

    /// For tests that tag every record with a unique number (`field` = `"<prefix><n>"`): how
    /// many stored documents carry each number — each should be 1 (nothing lost, nothing
    /// stored twice). Documents without such a field are ignored.
    pub fn count_numbered(&self, field: &str, prefix: &str) -> BTreeMap<u64, usize> {
        let mut seen = BTreeMap::new();
        for d in &self.lock().documents {
            if let Some(n) = d
                .source
                .get(field)
                .and_then(Value::as_str)
                .and_then(|v| v.strip_prefix(prefix))
                .and_then(|n| n.parse().ok())
            {
                *seen.entry(n).or_default() += 1;
            }
        }
        seen
    }

    /// Index templates installed (`PUT /_index_template/<name>`), by name.
    pub fn index_templates(&self) -> BTreeMap<String, Value> {
        self.lock().templates.clone()
    }

    /// ILM policies installed (`PUT /_ilm/policy/<name>`), by name.
    pub fn ilm_policies(&self) -> BTreeMap<String, Value> {
        self.lock().policies.clone()
    }

    /// Every `_bulk` request so far.
    pub fn requests(&self) -> Vec<BulkRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
