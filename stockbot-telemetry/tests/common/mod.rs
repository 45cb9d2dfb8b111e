//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};

use stockbot_telemetry::{Config, SchemaMode, TelemetryBuilder, TelemetryGuard};

/// An in-memory sink.
#[derive(Clone, Default)]
pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
    pub fn lines(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.text()
            .lines()
            .map(|l| match serde_json::from_str(l) {
                Ok(serde_json::Value::Object(m)) => m,
                other => panic!("not a JSON object: {other:?}: {l}"),
            })
            .collect()
    }
    /// Records emitted by the test itself (not the SDK's own start-up records).
    pub fn user_lines(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.lines()
            .into_iter()
            .filter(|m| m.get("log.logger").and_then(|v| v.as_str()) != Some("stockbot_telemetry"))
            .collect()
    }
}

/// A writer that blocks every write until released: a stuck sink.
#[derive(Clone, Default)]
pub struct Gate(pub Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, cv) = &*self.0;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn config() -> Config {
    let mut c = Config::for_service("test-service");
    c.service.version = "1.2.3".into();
    c.service.host_name = Some("test-host".into());
    c.service.own_targets = vec!["logs".into(), "pipeline".into(), "shutdown".into()];
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.log.filter = "trace".into();
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.traces.file.enabled = false;
    c.log.schema = SchemaMode::Strict;
    c.log.redaction.pseudonym_key =
        Some(stockbot_telemetry::Secret::new("0123456789abcdef-test-key"));
    c
}

/// Builds a pipeline writing into a buffer and runs `f` with it as the thread's default.
pub fn with_capture<R>(config: Config, f: impl FnOnce() -> R) -> (R, Buffer, TelemetryGuard) {
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(config)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    let r = tracing::dispatcher::with_default(&dispatch, f);
    assert!(guard.flush(std::time::Duration::from_secs(10)));
    (r, buf, guard)
}
