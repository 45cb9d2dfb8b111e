//! The load side of the soak (RELIABILITY.md scenario 15): a trading service that emits
//! numbered order records (`order.cl_ord_id` = `C-<n>`) to Elasticsearch and one sampled span
//! per record over OTLP/HTTP, at a steady rate from several threads, for a while — while the
//! backends in front of it flap (the caller of `examples/tests/soak.rs` switches faults on a
//! schedule it shares with this process through `--phases`).
//!
//! ```text
//! soak --es http://127.0.0.1:9200 --otlp http://127.0.0.1:4318 --secs 60 \
//!      --threads 2 --rate 2000 --phases pass:4000,refuse:2000,…
//! ```
//!
//! It measures itself and prints, one line each (`key=value` pairs):
//! - `rss t=<s> kib=<n> emitted=<n> written=<n> dropped=<n> buffered=<n>` every second (logs);
//! - `latency signal=<log|span> phase=<name> n=<samples> p50=<ns> p90= p99= p999= max=` per
//!   phase kind, measured on the emitting threads around each call (a fixed-size histogram:
//!   percentiles within 12.5 %, measuring does not grow the process);
//! - `report signal=<logs|spans> completed= emitted= written= dropped= buffered= accounted=`
//!   after the final flush and shutdown, and `drops signal=… <reason>=<n> …`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockbot_telemetry::{ElasticsearchConfig, OtlpTracesConfig, PipelineStats, TelemetryBuilder};

#[derive(Debug)]
struct Args {
    es: String,
    otlp: String,
    secs: u64,
    threads: usize,
    rate: u64,
    phases: Vec<(String, Duration)>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        es: String::new(),
        otlp: String::new(),
        secs: 60,
        threads: 2,
        rate: 2000,
        phases: vec![("steady".into(), Duration::from_secs(3600))],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--es" => args.es = value()?,
            "--otlp" => args.otlp = value()?,
            "--secs" => args.secs = number(value()?)?,
            "--threads" => args.threads = number(value()?)?.max(1) as usize,
            "--rate" => args.rate = number(value()?)?,
            "--phases" => {
                args.phases = value()?
                    .split(',')
                    .map(|p| {
                        let (name, ms) = p
                            .split_once(':')
                            .ok_or(format!("--phases: {p:?} is not name:millis"))?;
                        let ms = ms
                            .parse::<u64>()
                            .map_err(|e| format!("--phases: {p}: {e}"))?;
                        Ok((name.to_owned(), Duration::from_millis(ms)))
                    })
                    .collect::<Result<_, String>>()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.es.is_empty() || args.otlp.is_empty() {
        return Err("--es <url> and --otlp <url> are required".into());
    }
    if args.phases.iter().all(|(_, d)| d.is_zero()) {
        return Err("--phases: every phase is empty".into());
    }
    Ok(args)
}

/// The phase (index into `phases`) at `elapsed`, the schedule repeating.
fn phase_at(phases: &[(String, Duration)], elapsed: Duration) -> usize {
    let cycle: Duration = phases.iter().map(|(_, d)| *d).sum();
    let mut t = Duration::from_nanos((elapsed.as_nanos() % cycle.as_nanos()) as u64);
    for (i, (_, d)) in phases.iter().enumerate() {
        if t < *d {
            return i;
        }
        t -= *d;
    }
    phases.len() - 1
}

fn rss_kib() -> u64 {
    stockbot_telemetry_testing::rss_bytes() / 1024
}

/// A latency histogram of fixed size (so measuring does not grow the process): 8 buckets per
/// power of two of nanoseconds, each reported by its upper bound (within 12.5 %).
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    max: u64,
}

impl Histogram {
    const SUB: u32 = 8;

    fn new() -> Self {
        Histogram {
            counts: vec![0; (64 * Self::SUB) as usize],
            max: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < u64::from(Self::SUB) {
            return ns as usize;
        }
        let octave = 63 - ns.leading_zeros();
        let sub = (ns >> (octave - 3)) & u64::from(Self::SUB - 1);
        (octave * Self::SUB) as usize + sub as usize
    }

    /// The largest value of bucket `i`.
    fn upper(i: usize) -> u64 {
        let (octave, sub) = (i as u32 / Self::SUB, i as u64 % u64::from(Self::SUB));
        if octave < 3 {
            return i as u64;
        }
        ((u64::from(Self::SUB) + sub + 1) << (octave - 3)) - 1
    }

    fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counts[Self::bucket(ns)] += 1;
        self.max = self.max.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    fn percentiles(&self) -> String {
        let n: u64 = self.counts.iter().sum();
        if n == 0 {
            return "n=0".into();
        }
        let at = |q: f64| {
            let rank = ((n as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in self.counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Self::upper(i).min(self.max);
                }
            }
            self.max
        };
        format!(
            "n={n} p50={} p90={} p99={} p999={} max={}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(0.999),
            self.max
        )
    }
}

/// Latency histograms by phase index, of one thread.
type Samples = Vec<Histogram>;

fn report(out: &mut impl Write, signal: &str, completed: bool, stats: &PipelineStats) {
    let written: u64 = stats.sinks.iter().map(|s| s.written).max().unwrap_or(0);
    let sink_dropped: u64 = stats.sinks.iter().map(|s| s.dropped_total()).sum();
    let sink_buffered: u64 = stats.sinks.iter().map(|s| s.buffered).sum();
    let _ = writeln!(
        out,
        "report signal={signal} completed={completed} emitted={} written={written} dropped={} buffered={} accounted={}",
        stats.emitted,
        stats.dropped_total() + sink_dropped,
        stats.buffered() + sink_buffered,
        stats.accounted_for(),
    );
    let mut drops: BTreeMap<&str, u64> = BTreeMap::new();
    for (reason, n) in stats
        .dropped
        .iter()
        .chain(stats.sinks.iter().flat_map(|s| s.dropped.iter()))
    {
        *drops.entry(reason).or_default() += n;
    }
    let drops: Vec<String> = drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    let _ = writeln!(out, "drops signal={signal} {}", drops.join(" "));
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let mut config = stockbot_telemetry_testing::load_config("soak");
    config.traces.sampler = "always_on".into();
    config.traces.flush_interval = Duration::from_millis(100);
    // Bounds small enough that an outage reaches them within the run.
    config.pipeline.queue_max_bytes = 8 << 20;
    config.log.shipping.memory_max_bytes = 4 << 20;
    let mut es = ElasticsearchConfig::new(&args.es);
    es.timeout = Duration::from_millis(400);
    config.log.elasticsearch = Some(es);
    let mut otlp = OtlpTracesConfig::new(format!("{}/v1/traces", args.otlp));
    otlp.timeout = Duration::from_millis(400);
    config.traces.otlp = Some(otlp);
    let (dispatch, guard) = match TelemetryBuilder::new(config).build_dispatch() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    };

    let start = Instant::now();
    let until = start + Duration::from_secs(args.secs);
    let phases = Arc::new(args.phases);
    let emitters: Vec<_> = (0..args.threads)
        .map(|t| {
            let (dispatch, phases) = (dispatch.clone(), Arc::clone(&phases));
            let (threads, rate) = (args.threads as u64, args.rate.max(1));
            std::thread::spawn(move || -> (Samples, Samples) {
                let mut logs: Samples = vec![Histogram::new(); phases.len()];
                let mut spans: Samples = vec![Histogram::new(); phases.len()];
                let note = "x".repeat(120);
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0u64.. {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        let phase = phase_at(&phases, now - start);
                        let seq = i * threads + t as u64;
                        let cl_ord_id = format!("C-{seq}");
                        let t0 = Instant::now();
                        let span = tracing::info_span!("route_order", seq).entered();
                        let t1 = Instant::now();
                        tracing::info!(
                            seq,
                            cl_ord_id = cl_ord_id.as_str(),
                            note = note.as_str(),
                            "order routed"
                        );
                        let t2 = Instant::now();
                        drop(span);
                        let t3 = Instant::now();
                        logs[phase].record(t2 - t1);
                        spans[phase].record((t1 - t0) + (t3 - t2));
                        let due = start + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                });
                (logs, spans)
            })
        })
        .collect();

    // This thread samples the process (the guard stays on it) while the emitters run.
    let mut out = std::io::stdout();
    let mut next = start;
    while emitters.iter().any(|e| !e.is_finished()) {
        if Instant::now() >= next {
            let s = guard.stats();
            let sink =
                |f: fn(&stockbot_telemetry::SinkStats) -> u64| s.sink("elasticsearch").map_or(0, f);
            let _ = writeln!(
                out,
                "rss t={} kib={} emitted={} written={} dropped={} buffered={}",
                (next - start).as_secs(),
                rss_kib(),
                s.emitted,
                sink(|k| k.written),
                s.dropped_total() + sink(|k| k.dropped_total()),
                s.buffered() + sink(|k| k.buffered),
            );
            let _ = out.flush();
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut logs: Samples = vec![Histogram::new(); phases.len()];
    let mut spans: Samples = vec![Histogram::new(); phases.len()];
    for e in emitters {
        let (l, s) = e.join().expect("an emitting thread panicked");
        for (p, h) in l.iter().enumerate() {
            logs[p].merge(h);
        }
        for (p, h) in s.iter().enumerate() {
            spans[p].merge(h);
        }
    }
    // Phases of the same kind (the schedule may list one twice) are reported together.
    for (signal, samples) in [("log", logs), ("span", spans)] {
        let mut by_kind: BTreeMap<&str, Histogram> = BTreeMap::new();
        let mut all = Histogram::new();
        for (p, h) in samples.iter().enumerate() {
            by_kind
                .entry(&phases[p].0)
                .or_insert_with(Histogram::new)
                .merge(h);
            all.merge(h);
        }
        for (kind, h) in by_kind {
            let _ = writeln!(
                out,
                "latency signal={signal} phase={kind} {}",
                h.percentiles()
            );
        }
        let _ = writeln!(
            out,
            "latency signal={signal} phase=all {}",
            all.percentiles()
        );
    }
    let _ = writeln!(out, "emitting done t={:.1}", start.elapsed().as_secs_f64());
    let _ = out.flush();
    // The caller switches the backends back on after the load: everything held is delivered.
    let flushed = guard.flush(Duration::from_secs(60));
    let report_ = guard.shutdown(Duration::from_secs(30));
    let _ = writeln!(out, "flushed {flushed} rss_kib={}", rss_kib());
    report(&mut out, "logs", report_.completed, &report_.stats);
    if let Some(spans) = &report_.spans {
        report(&mut out, "spans", report_.completed, spans);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values_within_an_eighth() {
        let mut v = 1u64;
        while v < 1 << 60 {
            for x in [v, v + 1, v * 3 / 2] {
                let up = Histogram::upper(Histogram::bucket(x));
                assert!(up >= x && up <= x + x / 8 + 1, "{x} -> {up}");
            }
            v = v * 5 / 3 + 1;
        }
    }

    #[test]
    fn histogram_percentiles_follow_the_samples() {
        let mut h = Histogram::new();
        for ns in 1..=1000u64 {
            h.record(Duration::from_nanos(ns * 1000));
        }
        let p = h.percentiles();
        let f = |k: &str| -> u64 {
            p.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(f("n"), 1000);
        assert!((500_000..=562_500).contains(&f("p50")), "{p}");
        assert!((990_000..=1_000_000).contains(&f("p99")), "{p}");
        assert_eq!(f("max"), 1_000_000);
    }
}
