//! The testing crate's fake Elasticsearch as its own process (for throughput runs, so the
//! receiving side does not share the process under test). Prints its URL on the first line,
//! serves until stdin closes, then prints how many documents it stored.
//!
//! ```text
//! cargo run -p examples --bin fake-elasticsearch
//! ```

use std::io::{BufRead, Write};

use stockbot_telemetry_testing::elasticsearch::FakeElasticsearch;

fn main() -> std::io::Result<()> {
    let es = FakeElasticsearch::start()?;
    es.discard_sources();
    let mut out = std::io::stdout();
    writeln!(out, "{}", es.url())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "count" {
            writeln!(out, "{}", es.stored_count())?;
            out.flush()?;
        }
    }
    writeln!(out, "{}", es.stored_count())?;
    Ok(())
}
