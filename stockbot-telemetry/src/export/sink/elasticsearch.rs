//! The Elasticsearch sink: log batches shipped with the `_bulk` API, `create` actions into a
//! data stream with our own `_id` per record (so a re-sent item is a 409, never a duplicate).
//!
//! Per request: 2xx items and 409 are done; 429 and 5xx items are re-sent (only them) after the
//! shared backoff (or `Retry-After`); other items are written to the dead-letter file and
//! counted as rejected. HTTP 413 splits the request in two; a single record over the request
//! limit is dropped and counted. HTTP 429/502/503/504, timeouts and connection errors retry the
//! request; any other HTTP error fails the pending items. A 200 whose body cannot be read
//! re-sends everything pending (safe: the `_id`s make it idempotent). A batch's requests all
//! end within three times the timeout (no request starts that could not end in time); what is
//! still pending then goes back to the shipper, which retries it later (or spools it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{ElasticsearchAuth, Secret};
use crate::export::push::{Outcome, classify};
use crate::export::retry::{Backoff, RetryPolicy};
use crate::export::shipper::{Delivery, Parcel, Transport};

/// Largest response read (a `_bulk` answer lists every item).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// A `create` action line around the data stream and the `_id`.
const ACTION: [&[u8]; 3] = [b"{\"create\":{\"_index\":\"", b"\",\"_id\":\"", b"\"}}\n"];
/// Requests per chunk of a batch (the first one and retries).
const MAX_ATTEMPTS: u32 = 6;

/// Settings of the sink (validated configuration).
#[derive(Debug, Clone)]
pub(crate) struct ElasticsearchSettings {
    pub(crate) url: String,
    /// Trusted CAs (validated configuration); `None`: Mozilla's roots.
    pub(crate) ca: Option<crate::export::tls::Ca>,
    pub(crate) data_stream: String,
    pub(crate) auth: Option<ElasticsearchAuth>,
    pub(crate) max_bulk_bytes: usize,
    pub(crate) timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) dead_letter: PathBuf,
    pub(crate) dead_letter_max_bytes: u64,
}

/// One record on its way: its place in the parcel, its `_id` and its JSON line.
struct Item<'a> {
    index: usize,
    id: String,
    line: &'a [u8],
}

pub(crate) struct ElasticsearchSink {
    agent: ureq::Agent,
    bulk_url: String,
    authorization: Option<Secret>,
    settings: ElasticsearchSettings,
    backoff: Backoff,
    dead_letter: Option<File>,
    dead_letter_bytes: u64,
}

impl ElasticsearchSink {
    pub(crate) fn new(settings: ElasticsearchSettings) -> Self {
        let authorization = settings.auth.as_ref().map(ElasticsearchAuth::header_value);
        ElasticsearchSink {
            agent: crate::export::tls::agent(settings.timeout, settings.ca.as_ref()),
            bulk_url: format!("{}/_bulk", settings.url.trim_end_matches('/')),
            authorization,
            backoff: Backoff::new(RetryPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                max_retry_after: Duration::from_secs(30),
                ..RetryPolicy::default()
            }),
            dead_letter: None,
            dead_letter_bytes: 0,
            settings,
        }
    }

    /// Appends the `create` action line of a record.
    fn action(&self, id: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(ACTION[0]);
        out.extend_from_slice(self.settings.data_stream.as_bytes());
        out.extend_from_slice(ACTION[1]);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(ACTION[2]);
    }

    /// Length of a record's action line.
    fn action_len(&self, id: &str) -> usize {
        ACTION.iter().map(|p| p.len()).sum::<usize>() + self.settings.data_stream.len() + id.len()
    }

    fn body(&self, items: &[Item<'_>]) -> Vec<u8> {
        let size = items
            .iter()
            .map(|i| self.action_len(&i.id) + i.line.len() + 1)
            .sum();
        let mut body = Vec::with_capacity(size);
        for item in items {
            self.action(&item.id, &mut body);
            body.extend_from_slice(item.line);
            body.push(b'\n');
        }
        body
    }

    /// Sends `pending` until every item is done, refused or out of time; records each item's
    /// outcome in `out` (left `Failed` when time runs out).
    fn ship(&mut self, mut pending: Vec<Item<'_>>, deadline: Instant, out: &mut [Delivery]) {
        // No request starts that could not end within the batch's budget (this also bounds
        // the splits after 413s).
        if Instant::now() + self.settings.timeout > deadline {
            return;
        }
        for attempt in 1..=MAX_ATTEMPTS {
            if pending.is_empty() {
                return;
            }
            let retry_after = match self.request(&pending) {
                Answer::Items(items) if items.len() == pending.len() => {
                    let mut retry = Vec::new();
                    for (item, status) in pending.into_iter().zip(items) {
                        match status.code {
                            200..=299 | 409 => out[item.index] = Delivery::Done,
                            429 | 500..=599 => retry.push(item),
                            _ => {
                                self.dead_letter(&item, &status);
                                out[item.index] = Delivery::Rejected;
                            }
                        }
                    }
                    pending = retry;
                    None
                }
                // A 200 we could not read: re-send; the `_id`s make it idempotent.
                Answer::Items(_) | Answer::Unreadable => None,
                Answer::TooLarge if pending.len() == 1 => {
                    out[pending[0].index] = Delivery::Oversize;
                    return;
                }
                Answer::TooLarge => {
                    let second = pending.split_off(pending.len() / 2);
                    self.ship(pending, deadline, out);
                    self.ship(second, deadline, out);
                    return;
                }
                Answer::Retry(after) => after,
                Answer::Refused => break,
            };
            if pending.is_empty() {
                self.backoff.succeeded();
                return;
            }
            if attempt == MAX_ATTEMPTS {
                break;
            }
            let now = Instant::now();
            let wait = self.backoff.failed(now, retry_after);
            // The next request may take a whole timeout: only start it if it can end in time.
            if now + wait + self.settings.timeout > deadline {
                break;
            }
            std::thread::sleep(wait);
        }
    }

    fn request(&self, items: &[Item<'_>]) -> Answer {
        let mut body = self.body(items);
        let mut request = self
            .agent
            .post(&self.bulk_url)
            .header("Content-Type", "application/x-ndjson");
        if self.settings.gzip {
            body = crate::export::gzip(&body);
            request = request.header("Content-Encoding", "gzip");
        }
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth.expose());
        }
        let mut response = request.send(body);
        match response.as_mut() {
            Ok(r) if r.status().is_success() => {
                let mut text = Vec::new();
                let read = r
                    .body_mut()
                    .as_reader()
                    .take(MAX_RESPONSE_BYTES)
                    .read_to_end(&mut text);
                match read.ok().and_then(|_| parse_items(&text)) {
                    Some(items) => Answer::Items(items),
                    None => Answer::Unreadable,
                }
            }
            Ok(r) if r.status().as_u16() == 413 => Answer::TooLarge,
            _ => match classify(response) {
                Outcome::Retry(after) => Answer::Retry(after),
                _ => Answer::Refused,
            },
        }
    }

    /// Appends a refused record to the dead-letter file (bounded; past the bound it is only
    /// counted). A write error is ignored: the record is counted as rejected either way.
    fn dead_letter(&mut self, item: &Item<'_>, status: &ItemStatus) {
        if self.dead_letter.is_none() {
            if let Some(dir) = self.settings.dead_letter.parent()
                && !dir.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(dir);
            }
            self.dead_letter = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.settings.dead_letter)
                .ok();
            self.dead_letter_bytes = self
                .dead_letter
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
        }
        let mut line = format!(
            "{{\"status\":{},\"error\":{},\"_id\":\"{}\",\"record\":",
            status.code,
            status.error.as_deref().unwrap_or("null"),
            item.id
        )
        .into_bytes();
        line.extend_from_slice(item.line);
        line.extend_from_slice(b"}\n");
        if self.dead_letter_bytes + line.len() as u64 > self.settings.dead_letter_max_bytes {
            return;
        }
        if let Some(f) = &mut self.dead_letter
            && f.write_all(&line).is_ok()
        {
            self.dead_letter_bytes += line.len() as u64;
        }
    }
}

enum Answer {
    /// 2xx with one status per item, in request order.
    Items(Vec<ItemStatus>),
    /// 2xx whose body is not a `_bulk` answer.
    Unreadable,
    /// 413.
    TooLarge,
    /// 429/502/503/504, a timeout or a connection error.
    Retry(Option<Duration>),
    /// Any other HTTP error (401, 403, 404, 400 for the whole request…).
    Refused,
}

struct ItemStatus {
    code: u16,
    /// The item's `error` object, as JSON text.
    error: Option<String>,
}

/// The per-item statuses of a `_bulk` answer, in order; `None` if it is not one.
fn parse_items(body: &[u8]) -> Option<Vec<ItemStatus>> {
    // The common case, read without building every item: no errors, one entry per item.
    #[derive(serde::Deserialize)]
    struct Summary {
        errors: bool,
        items: Vec<serde::de::IgnoredAny>,
    }
    if let Ok(s) = serde_json::from_slice::<Summary>(body)
        && !s.errors
    {
        return Some(
            (0..s.items.len())
                .map(|_| ItemStatus {
                    code: 201,
                    error: None,
                })
                .collect(),
        );
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("items")?
        .as_array()?
        .iter()
        .map(|item| {
            let (_, result) = item.as_object()?.iter().next()?;
            Some(ItemStatus {
                code: u16::try_from(result.get("status")?.as_u64()?).ok()?,
                error: result.get("error").map(ToString::to_string),
            })
        })
        .collect()
}

impl Transport for ElasticsearchSink {
    fn budget(&self) -> Duration {
        self.settings.timeout * 3
    }

    fn send(&mut self, parcel: &Parcel, out: &mut [Delivery]) {
        let deadline = Instant::now() + self.settings.timeout * 3;
        let limit = self.settings.max_bulk_bytes;
        let mut chunk: Vec<Item<'_>> = Vec::new();
        let mut chunk_bytes = 0;
        let mut chunks = Vec::new();
        for (index, delivery) in out.iter_mut().enumerate().take(parcel.len()) {
            let (id, line) = (parcel.id(index), parcel.line(index));
            let size = self.action_len(&id) + line.len() + 1;
            if size > limit {
                *delivery = Delivery::Oversize;
                continue;
            }
            if chunk_bytes + size > limit && !chunk.is_empty() {
                chunks.push(std::mem::take(&mut chunk));
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push(Item { index, id, line });
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        for chunk in chunks {
            self.ship(chunk, deadline, out);
        }
    }
}

/// Standard base64 with padding (for Basic credentials).
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("elastic:changeme", "ZWxhc3RpYzpjaGFuZ2VtZQ=="),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn bulk_answers_are_read_per_item_and_garbage_is_not() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"create":{"_index":"logs-a-default","_id":"1","status":201}},
            {"create":{"_index":"logs-a-default","_id":"2","status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},
            {"create":{"_index":"logs-a-default","_id":"3","status":409,"error":{"type":"version_conflict_engine_exception"}}}]}"#;
        let items = parse_items(body).unwrap();
        let codes: Vec<u16> = items.iter().map(|i| i.code).collect();
        assert_eq!(codes, [201, 429, 409]);
        assert!(
            items[1]
                .error
                .as_deref()
                .unwrap()
                .contains("es_rejected_execution_exception")
        );
        let clean = br#"{"took":1,"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        let items = parse_items(clean).unwrap();
        assert_eq!(items.iter().map(|i| i.code).collect::<Vec<_>>(), [201, 201]);
        for garbage in [
            &b"not json"[..],
            b"{}",
            br#"{"items":[{"create":{}}]}"#,
            b"[1,2]",
        ] {
            assert!(parse_items(garbage).is_none());
        }
    }
}
