//! A real Prometheus server and `promtool` for integration tests.
//!
//! [`PrometheusServer`] starts the `prometheus` binary of the Debian package `prometheus`
//! (2.42 on Debian 12) on its own free loopback port, with a generated configuration and a
//! temporary data directory, and kills it (and removes the directory) when dropped. Its
//! methods query the Prometheus HTTP API over a plain HTTP/1.1 connection.
//! [`promtool_check_metrics`] and [`promtool`] run `promtool`. [`StaticExposition`] serves a
//! fixed body for Prometheus to scrape.
//!
//! Nothing here skips: when a binary is missing, the functions return an error that says so
//! and how to install it, and a test that unwraps it fails.
//!
//! ```no_run
//! use std::time::Duration;
//! use stockbot_telemetry_testing::prometheus::{PrometheusServer, StaticExposition};
//!
//! let exposition = StaticExposition::serve(
//!     "# TYPE orders_total counter\norders_total 3\n".to_owned(),
//!     "text/plain; version=0.0.4; charset=utf-8",
//! )
//! .unwrap();
//! let server = PrometheusServer::start(&[exposition.addr()], Duration::from_secs(1), &[])
//!     .unwrap_or_else(|e| panic!("{e}"));
//! server
//!     .wait_for("orders_total", Duration::from_secs(30), |result| {
//!         result[0]["value"][1] == "3"
//!     })
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the Debian package `prometheus` installs the server binary.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

/// Where the Debian package `prometheus` installs `promtool`.
pub const PROMTOOL_BIN: &str = "/usr/bin/promtool";

/// The `job_name` of the scrape configuration [`PrometheusServer`] generates; every scraped
/// series carries the label `job="stockbot"`.
pub const JOB_NAME: &str = "stockbot";

/// How long [`PrometheusServer::start`] waits for `/-/ready` to answer 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect, read and write timeout of one HTTP request to the server.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one readiness probe: short, so that a process exiting is noticed soon.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// Pause between two queries of [`PrometheusServer::wait_for`].
const QUERY_POLL: Duration = Duration::from_millis(200);
/// Attempts to start the server when the free port was taken before it could bind it.
const START_ATTEMPTS: usize = 3;
/// Lines of the server log quoted in error messages.
const LOG_TAIL_LINES: usize = 40;
/// Characters of a response body or an input quoted in error messages.
const QUOTE_LIMIT: usize = 4000;

/// Error of the harness.
///
/// Its `Display` (and its `Debug`, so that `unwrap()` and tests returning `Result` print it
/// readably) tells the whole story: what was run or requested, the exit status or HTTP status,
/// and the output, response or server log.
pub struct HarnessError {
    message: String,
}

impl HarnessError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    pub(crate) fn missing_binary(name: &str, path: &str) -> Self {
        Self::new(format!(
            "{name} binary not found at {path} (install the Debian packages `prometheus` and \
             `prometheus-alertmanager`; scripts/test.sh does)"
        ))
    }

    /// The whole message, the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Multi-line on purpose: `unwrap()` and `-> Result` tests print this.
        write!(f, "HarnessError: {}", self.message)
    }
}

impl std::error::Error for HarnessError {}

/// A free loopback TCP port: binds `127.0.0.1:0`, reads the port the kernel chose and drops
/// the listener.
///
/// Another process may take the port before the caller binds it; [`PrometheusServer::start`]
/// retries with a new port when that happens.
///
/// # Panics
///
/// When no loopback port can be bound at all (a test helper: the machine is unusable then).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the address of a bound listener: {e}"))
        .port()
}

/// A real Prometheus server for a test: own free loopback port, temporary config and data dir,
/// killed (and the dir removed) on drop.
///
/// It scrapes its targets with job name [`JOB_NAME`] and metrics path `/metrics`.
///
/// Timing: the server is ready within a fraction of a second, but Prometheus 2.42 hands
/// discovered targets to its scrape loops on a fixed 5 s tick, so the first scrape happens about
/// 5 s plus up to one scrape interval after the start, whatever the interval. Give
/// [`PrometheusServer::wait_for`] 20 s or more, and make several assertions against one server
/// rather than starting one per assertion.
///
/// If the test process is killed (rather than panicking, which runs `Drop`), the server is
/// left running; its directory is named `stockbot-telemetry-prometheus-<pid>-<n>`.
///
/// The generated `prometheus.yml` is:
///
/// ```yaml
/// global:
///   scrape_interval: <interval>
///   evaluation_interval: <interval>
/// scrape_configs:
///   - job_name: stockbot
///     metrics_path: /metrics
///     static_configs:
///       - targets: ["127.0.0.1:45678"]
/// <extra_yaml>
/// ```
pub struct PrometheusServer {
    child: Child,
    port: u16,
    log_path: PathBuf,
    // Dropped after `Drop::drop` killed the child, so the directory is no longer in use.
    dir: TempDir,
}

impl fmt::Debug for PrometheusServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusServer")
            .field("url", &self.url())
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path)
            .finish()
    }
}

impl PrometheusServer {
    /// Starts `prometheus` scraping `targets` (host:port strings, e.g. `"127.0.0.1:45678"`)
    /// every `scrape_interval` with `metrics_path` `/metrics`, job name [`JOB_NAME`]. Extra
    /// flags may be passed (e.g. `"--enable-feature=exemplar-storage"`). Waits until `/-/ready`
    /// answers 200 (timeout 30 s). Binds `--web.listen-address=127.0.0.1:<free port>`.
    ///
    /// # Errors
    ///
    /// When the binary is missing (`prometheus binary not found at /usr/bin/prometheus
    /// (install the Debian packages …; scripts/test.sh does)`), when
    /// `scrape_interval` is shorter than a millisecond, when the temporary directory cannot be
    /// written, and when the server exits or is not ready within 30 s (with its log).
    pub fn start(
        targets: &[String],
        scrape_interval: Duration,
        extra_flags: &[&str],
    ) -> Result<Self, HarnessError> {
        Self::start_with_config(targets, scrape_interval, "", extra_flags)
    }

    /// Same as [`PrometheusServer::start`], with `extra_yaml` appended to the generated
    /// `prometheus.yml` (e.g. `rule_files`). The caller gives complete top-level sections,
    /// other than `global` and `scrape_configs` which the generated file already has.
    ///
    /// # Errors
    ///
    /// As [`PrometheusServer::start`]; an invalid `extra_yaml` makes the server exit, and the
    /// error quotes its log.
    pub fn start_with_config(
        targets: &[String],
        scrape_interval: Duration,
        extra_yaml: &str,
        extra_flags: &[&str],
    ) -> Result<Self, HarnessError> {
        launch(
            Path::new(PROMETHEUS_BIN),
            targets,
            scrape_interval,
            "",
            extra_yaml,
            extra_flags,
        )
    }

    /// Same as [`PrometheusServer::start`], with `job_yaml` added to the generated scrape job:
    /// its own settings at the job's level, unindented — for example credentials for a scrape
    /// endpoint that requires them:
    ///
    /// ```yaml
    /// basic_auth:
    ///   username: prometheus
    ///   password: s3cret
    /// ```
    ///
    /// # Errors
    ///
    /// As [`PrometheusServer::start`]; an invalid `job_yaml` makes the server exit, and the
    /// error quotes its log.
    pub fn start_with_job_options(
        targets: &[String],
        scrape_interval: Duration,
        job_yaml: &str,
        extra_flags: &[&str],
    ) -> Result<Self, HarnessError> {
        launch(
            Path::new(PROMETHEUS_BIN),
            targets,
            scrape_interval,
            job_yaml,
            "",
            extra_flags,
        )
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding `prometheus.yml`, the TSDB (`data/`) and the log; a
    /// test may write rule files here. Removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// Runs an instant query (`GET /api/v1/query?query=...`) and returns the `data.result`
    /// array.
    ///
    /// # Errors
    ///
    /// When the request fails, the response is not JSON, or its `status` is not `success`
    /// (e.g. `bad_data` for invalid PromQL); the error quotes the response.
    pub fn query(&self, promql: &str) -> Result<Value, HarnessError> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        take_field(self.api_get(&path)?, "result", &path)
    }

    /// Polls [`PrometheusServer::query`] every 200 ms until `predicate(result)` is true or
    /// `timeout` passes, and returns the result that satisfied it.
    ///
    /// # Errors
    ///
    /// When `timeout` passes first: the error describes the last result (or the last query
    /// error), the state of the scrape targets and the tail of the server log.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Result<Value, HarnessError> {
        let started = Instant::now();
        let mut queries = 0usize;
        loop {
            queries += 1;
            let last = match self.query(promql) {
                Ok(result) if predicate(&result) => return Ok(result),
                Ok(result) => format!("last result: {result}"),
                Err(e) => format!("last query failed: {e}"),
            };
            if started.elapsed() >= timeout {
                let targets = match self.targets() {
                    Ok(targets) => describe_targets(&targets),
                    Err(e) => format!("(could not list targets: {e})"),
                };
                return Err(HarnessError::new(format!(
                    "timed out after {:.1?} ({queries} queries) waiting for `{promql}` to \
                     satisfy the predicate at {}\n{last}\ntargets: {targets}\n{}",
                    started.elapsed(),
                    self.url(),
                    self.log_tail()
                )));
            }
            thread::sleep(QUERY_POLL);
        }
    }

    /// The scrape targets (`GET /api/v1/targets` → `data.activeTargets`): one object per
    /// target with `labels`, `scrapeUrl`, `health` (`up`, `down` or `unknown`), `lastError`,
    /// `lastScrape` and more.
    ///
    /// # Errors
    ///
    /// When the request fails or the response is not a successful API response.
    pub fn targets(&self) -> Result<Value, HarnessError> {
        let path = "/api/v1/targets";
        take_field(self.api_get(path)?, "activeTargets", path)
    }

    /// Queries exemplars (`GET /api/v1/query_exemplars?query=..&start=..&end=..`, times in
    /// unix seconds) and returns `data`: an array of `{seriesLabels, exemplars}` objects.
    /// Prometheus stores exemplars only when started with
    /// `--enable-feature=exemplar-storage`, and scrapes them only from an OpenMetrics
    /// exposition.
    ///
    /// # Errors
    ///
    /// When the request fails or the response is not a successful API response.
    pub fn query_exemplars(
        &self,
        promql: &str,
        start: f64,
        end: f64,
    ) -> Result<Value, HarnessError> {
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={start}&end={end}",
            percent_encode(promql)
        );
        self.api_get(&path)
    }

    /// The server's stderr and stdout so far (for failure messages).
    pub fn log(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }

    fn log_tail(&self) -> String {
        tail("prometheus log", &self.log())
    }

    /// GETs an API path and returns `data` of a successful response.
    fn api_get(&self, path: &str) -> Result<Value, HarnessError> {
        let url = format!("{}{path}", self.url());
        let response = http_get(self.port, path, HTTP_TIMEOUT)
            .map_err(|e| HarnessError::new(format!("GET {url} failed: {e}")))?;
        let json: Value = serde_json::from_str(&response.body).map_err(|e| {
            HarnessError::new(format!(
                "GET {url} answered HTTP {} with a body that is not JSON ({e}): {}",
                response.status,
                quote(&response.body)
            ))
        })?;
        if json["status"] != "success" {
            return Err(HarnessError::new(format!(
                "GET {url} answered HTTP {} with status {}: {}: {}",
                response.status,
                json["status"],
                json["errorType"].as_str().unwrap_or("(no errorType)"),
                json["error"].as_str().unwrap_or("(no error)"),
            )));
        }
        match json {
            Value::Object(mut map) if map.contains_key("data") => {
                Ok(map.remove("data").unwrap_or(Value::Null))
            }
            other => Err(HarnessError::new(format!(
                "GET {url}: response has no `data`: {}",
                quote(&other.to_string())
            ))),
        }
    }

    /// Polls `/-/ready` until 200; errors if the process exits or the timeout passes.
    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let started = Instant::now();
        loop {
            // An error of `try_wait` itself is ignored: the probe below still tells.
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                return Err(StartFailure {
                    port_taken: log.contains("address already in use"),
                    error: HarnessError::new(format!(
                        "prometheus exited during startup ({status}) on port {}\n{}",
                        self.port,
                        tail("prometheus log", &log)
                    )),
                });
            }
            let last = match http_get(self.port, "/-/ready", READY_PROBE_TIMEOUT) {
                // The body tells Prometheus from another process that took the port.
                Ok(response) if response.status == 200 && response.body.contains("Prometheus") => {
                    return Ok(());
                }
                Ok(response) => format!("HTTP {}: {}", response.status, response.body.trim()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= READY_TIMEOUT {
                return Err(StartFailure {
                    port_taken: false,
                    error: HarnessError::new(format!(
                        "prometheus at {} not ready after {READY_TIMEOUT:?} (last probe of \
                         /-/ready: {last})\n{}",
                        self.url(),
                        self.log_tail()
                    )),
                });
            }
            thread::sleep(READY_POLL);
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        // SIGKILL: nothing of the TSDB is kept, so a clean shutdown buys nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `self.dir` is removed when the fields drop, after this.
    }
}

/// Why one start attempt failed.
struct StartFailure {
    port_taken: bool,
    error: HarnessError,
}

fn launch(
    bin: &Path,
    targets: &[String],
    scrape_interval: Duration,
    job_yaml: &str,
    extra_yaml: &str,
    extra_flags: &[&str],
) -> Result<PrometheusServer, HarnessError> {
    if !bin.is_file() {
        return Err(HarnessError::missing_binary(
            "prometheus",
            &bin.display().to_string(),
        ));
    }
    let config = generate_config(targets, scrape_interval, job_yaml, extra_yaml)?;
    let mut attempt = 1;
    loop {
        match try_launch(bin, &config, extra_flags, free_port()) {
            Ok(server) => return Ok(server),
            Err(StartFailure {
                port_taken: true, ..
            }) if attempt < START_ATTEMPTS => attempt += 1,
            Err(failure) => return Err(failure.error),
        }
    }
}

fn try_launch(
    bin: &Path,
    config: &str,
    extra_flags: &[&str],
    port: u16,
) -> Result<PrometheusServer, StartFailure> {
    let fail = |error| StartFailure {
        port_taken: false,
        error,
    };
    let dir = TempDir::create("prometheus").map_err(fail)?;
    let config_path = dir.path.join("prometheus.yml");
    let data_path = dir.path.join("data");
    let log_path = dir.path.join("prometheus.log");
    fs::write(&config_path, config).map_err(|e| {
        fail(HarnessError::new(format!(
            "cannot write {}: {e}",
            config_path.display()
        )))
    })?;
    let log = File::create(&log_path).map_err(|e| {
        fail(HarnessError::new(format!(
            "cannot create {}: {e}",
            log_path.display()
        )))
    })?;
    let log_for_stdout = log.try_clone().map_err(|e| {
        fail(HarnessError::new(format!(
            "cannot clone the handle of {}: {e}",
            log_path.display()
        )))
    })?;
    let mut command = Command::new(bin);
    command
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", data_path.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra_flags)
        .current_dir(&dir.path)
        .stdin(Stdio::null())
        .stdout(log_for_stdout)
        .stderr(log);
    let child = command.spawn().map_err(|e| {
        fail(if e.kind() == io::ErrorKind::NotFound {
            HarnessError::missing_binary("prometheus", &bin.display().to_string())
        } else {
            HarnessError::new(format!("cannot start {command:?}: {e}"))
        })
    })?;
    let mut server = PrometheusServer {
        child,
        port,
        log_path,
        dir,
    };
    server.wait_ready()?;
    Ok(server)
}

fn generate_config(
    targets: &[String],
    scrape_interval: Duration,
    job_yaml: &str,
    extra_yaml: &str,
) -> Result<String, HarnessError> {
    let interval = prometheus_duration(scrape_interval)?;
    // A JSON array of strings is a valid YAML flow sequence, quoting included.
    let targets = Value::from(targets.to_vec()).to_string();
    let mut config = format!(
        "# Generated by stockbot-telemetry-testing.\n\
         global:\n  \
           scrape_interval: {interval}\n  \
           evaluation_interval: {interval}\n\
         scrape_configs:\n  \
           - job_name: {JOB_NAME}\n    \
             metrics_path: /metrics\n    \
             static_configs:\n      \
               - targets: {targets}\n"
    );
    for line in job_yaml.lines() {
        config.push_str("    ");
        config.push_str(line);
        config.push('\n');
    }
    if !extra_yaml.is_empty() {
        config.push_str(extra_yaml);
        if !extra_yaml.ends_with('\n') {
            config.push('\n');
        }
    }
    Ok(config)
}

/// A Prometheus duration (`1s`, `250ms`): millisecond resolution, at least 1 ms.
fn prometheus_duration(duration: Duration) -> Result<String, HarnessError> {
    let millis = duration.as_millis();
    if millis == 0 || !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(HarnessError::new(format!(
            "scrape interval {duration:?} is not a whole, positive number of milliseconds \
             (Prometheus durations have millisecond resolution)"
        )));
    }
    Ok(if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    })
}

/// One line per target: scrape URL, health and last error.
fn describe_targets(targets: &Value) -> String {
    let Some(targets) = targets.as_array() else {
        return targets.to_string();
    };
    if targets.is_empty() {
        return "none".to_owned();
    }
    targets
        .iter()
        .map(|t| {
            format!(
                "\n  {} health={} lastScrape={} lastError={:?}",
                t["scrapeUrl"].as_str().unwrap_or("?"),
                t["health"].as_str().unwrap_or("?"),
                t["lastScrape"].as_str().unwrap_or("?"),
                t["lastError"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

fn take_field(data: Value, field: &str, path: &str) -> Result<Value, HarnessError> {
    match data {
        Value::Object(mut map) if map.contains_key(field) => {
            Ok(map.remove(field).unwrap_or(Value::Null))
        }
        other => Err(HarnessError::new(format!(
            "GET {path}: `data` has no `{field}`: {}",
            quote(&other.to_string())
        ))),
    }
}

/// A directory under [`std::env::temp_dir`], named with the process id and a counter,
/// removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

impl TempDir {
    pub(crate) fn create(prefix: &str) -> Result<Self, HarnessError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "stockbot-telemetry-{prefix}-{}-{n}",
            std::process::id()
        ));
        // Left over by an earlier process with the same pid: ours now.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .map_err(|e| HarnessError::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs `promtool check metrics` with `exposition` on stdin.
///
/// promtool 2.42 lints the text format: it exits 3 and prints one line per problem (e.g.
/// `foo counter metrics should have "_total" suffix`, `foo no help text`) for lint problems,
/// and exits 1 with `error while linting: text format parsing error in line N: ...` when the
/// text does not parse. It does not understand OpenMetrics (`# EOF`, exemplars).
///
/// # Errors
///
/// When promtool exits non-zero or prints anything: the error quotes its output and the
/// exposition. When promtool is missing: `promtool binary not found at /usr/bin/promtool ...`.
pub fn promtool_check_metrics(exposition: &str) -> Result<(), HarnessError> {
    let args = ["check", "metrics"];
    let output = run_promtool(&args, Some(exposition))?;
    if output.success && output.text.trim().is_empty() {
        return Ok(());
    }
    Err(HarnessError::new(format!(
        "`{PROMTOOL_BIN} check metrics` rejected the exposition ({}):\n{}\n--- exposition ---\n{}",
        output.status,
        output.text.trim_end(),
        quote(exposition)
    )))
}

/// Runs `promtool` with `args`, e.g. `["check", "rules", file]`, `["test", "rules", file]` or
/// `["check", "config", file]`, and returns its stdout followed by its stderr.
///
/// # Errors
///
/// When promtool exits non-zero (the error quotes the command, exit status and output) or is
/// missing.
pub fn promtool(args: &[&str]) -> Result<String, HarnessError> {
    checked(PROMTOOL_BIN, "promtool", args)
}

/// Runs a tool; its output if it succeeded, else an error quoting the command and output.
fn checked(bin: &str, name: &str, args: &[&str]) -> Result<String, HarnessError> {
    let output = run_tool(bin, name, args, None)?;
    if output.success {
        Ok(output.text)
    } else {
        Err(HarnessError::new(format!(
            "`{bin} {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            output.text.trim_end()
        )))
    }
}

struct ToolOutput {
    success: bool,
    status: String,
    /// Stdout, then stderr.
    text: String,
}

fn run_tool(
    bin: &str,
    name: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<ToolOutput, HarnessError> {
    if !Path::new(bin).is_file() {
        return Err(HarnessError::missing_binary(name, bin));
    }
    let describe = || format!("`{bin} {}`", args.join(" "));
    let mut child = Command::new(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                HarnessError::missing_binary(name, bin)
            } else {
                HarnessError::new(format!("cannot start {}: {e}", describe()))
            }
        })?;
    // Write stdin on its own thread so a large input cannot deadlock against full pipes.
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_owned();
            Some(thread::spawn(move || pipe.write_all(input.as_bytes())))
        }
        _ => None,
    };
    let output = child
        .wait_with_output()
        .map_err(|e| HarnessError::new(format!("cannot wait for {}: {e}", describe())))?;
    if let Some(writer) = writer {
        match writer.join() {
            Ok(Ok(())) => {}
            // promtool may stop reading early, e.g. after a parse error; its output says why.
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Ok(Err(e)) => {
                return Err(HarnessError::new(format!(
                    "cannot write stdin of {}: {e}",
                    describe()
                )));
            }
            Err(_) => {
                return Err(HarnessError::new(format!(
                    "the stdin writer of {} panicked",
                    describe()
                )));
            }
        }
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(ToolOutput {
        success: output.status.success(),
        status: output.status.to_string(),
        text,
    })
}

fn run_promtool(args: &[&str], stdin: Option<&str>) -> Result<ToolOutput, HarnessError> {
    run_tool(PROMTOOL_BIN, "promtool", args, stdin)
}

/// Where Debian's `prometheus-alertmanager` package puts `amtool`.
pub const AMTOOL_BIN: &str = "/usr/bin/amtool";

/// Runs `amtool` with `args`, e.g. `["check-config", file]` or `["config", "routes", "test",
/// "--config.file=…", "team=execution"]`, and returns its stdout followed by its stderr.
///
/// # Errors
///
/// When amtool exits non-zero (the error quotes the command, exit status and output) or is
/// missing.
pub fn amtool(args: &[&str]) -> Result<String, HarnessError> {
    checked(AMTOOL_BIN, "amtool", args)
}

/// Serves `body` (with the given content type) on `127.0.0.1:<free port>` at every path until
/// dropped; for testing the harness itself and for fixtures. Runs on a std thread, answers one
/// connection at a time with `Connection: close`, and counts requests.
pub struct StaticExposition {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for StaticExposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticExposition")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl StaticExposition {
    /// Binds a free loopback port and starts serving `body` with `Content-Type:
    /// content_type` (e.g. `text/plain; version=0.0.4; charset=utf-8`, or
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`).
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the thread cannot be started.
    pub fn serve(body: String, content_type: &str) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body.as_bytes());
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::Builder::new()
            .name(format!("static-exposition-{}", addr.port()))
            .spawn({
                let requests = Arc::clone(&requests);
                let stop = Arc::clone(&stop);
                move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        // Counted before the answer goes out, so a client that got its
                        // answer always sees it counted; taken back if answering failed.
                        if let Ok(stream) = stream {
                            requests.fetch_add(1, Ordering::SeqCst);
                            if !answer(stream, &response) {
                                requests.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })?;
        Ok(Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT`, as a scrape target for [`PrometheusServer::start`].
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// How many requests have been answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for StaticExposition {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; join only if that worked, or the join could hang.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// Reads one request head and writes `response`; true when a request was answered.
fn answer(mut stream: TcpStream, response: &[u8]) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answered = stream
        .write_all(response)
        .and_then(|()| stream.flush())
        .is_ok();
    let _ = stream.shutdown(Shutdown::Both);
    answered
}

/// A response of [`http_get`].
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// `GET path` on `127.0.0.1:port` (10 s timeout): the status and the (de-chunked) body. For
/// tests that read a scrape endpoint, a Pushgateway or any other loopback HTTP service.
///
/// # Errors
/// Connection, timeout or malformed-response errors.
pub fn get(port: u16, path: &str) -> io::Result<(u16, String)> {
    http_get(port, path, Duration::from_secs(10)).map(|r| (r.status, r.body))
}

/// `GET path_and_query` on `127.0.0.1:port` over HTTP/1.1 with `Connection: close`.
pub(crate) fn http_get(
    port: u16,
    path_and_query: &str,
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         User-Agent: stockbot-telemetry-testing\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            invalid(format!(
                "incomplete HTTP response: {}",
                quote(&String::from_utf8_lossy(raw))
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad HTTP status line: {status_line:?}")))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        decode_chunked(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn decode_chunked(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunked body".to_owned()))?;
        let size_line = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            return Err(invalid("truncated chunk".to_owned()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The last [`LOG_TAIL_LINES`] lines of `text`, headed by `what`.
pub(crate) fn tail(what: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = if skip > 0 {
        format!(
            "--- {what} (last {LOG_TAIL_LINES} of {} lines) ---\n",
            lines.len()
        )
    } else {
        format!("--- {what} ---\n")
    };
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `text`, cut to [`QUOTE_LIMIT`] characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}... ({} bytes in all)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
    const VALID: &str = "# HELP stockbot_test_total A counter for the harness test.\n\
                         # TYPE stockbot_test_total counter\n\
                         stockbot_test_total{venue=\"XNAS\"} 3\n";

    fn ok<T>(result: Result<T, HarnessError>) -> T {
        result.unwrap_or_else(|e| panic!("{e}"))
    }

    /// True when `result` holds one sample of value `expected` (the API gives it as a string).
    fn single_value(result: &Value, expected: &str) -> bool {
        result.as_array().is_some_and(|samples| {
            samples.len() == 1 && samples[0]["value"][1].as_str() == Some(expected)
        })
    }

    #[test]
    fn prometheus_scrapes_a_static_exposition() {
        let exposition = StaticExposition::serve(VALID.to_owned(), CONTENT_TYPE).unwrap();
        let started = Instant::now();
        let server = ok(PrometheusServer::start(
            &[exposition.addr()],
            Duration::from_secs(1),
            &[],
        ));
        let ready = started.elapsed();
        assert!(server.url().starts_with("http://127.0.0.1:"));

        ok(server.wait_for("up", Duration::from_secs(30), |r| single_value(r, "1")));
        let scraped = started.elapsed();
        let result = ok(
            server.wait_for("stockbot_test_total", Duration::from_secs(30), |r| {
                single_value(r, "3")
            }),
        );
        let metric = &result[0]["metric"];
        assert_eq!(metric["venue"], "XNAS", "{result}");
        assert_eq!(metric["job"], JOB_NAME, "{result}");
        assert_eq!(metric["instance"], exposition.addr().as_str(), "{result}");
        assert!(exposition.requests() >= 1);

        let targets = ok(server.targets());
        assert_eq!(targets.as_array().map(Vec::len), Some(1), "{targets}");
        assert_eq!(targets[0]["health"], "up", "{targets}");
        assert_eq!(targets[0]["scrapePool"], JOB_NAME, "{targets}");
        assert_eq!(targets[0]["scrapeInterval"], "1s", "{targets}");

        let error = server.query("sum(").unwrap_err().to_string();
        assert!(error.contains("bad_data"), "{error}");

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let exemplars = ok(server.query_exemplars("stockbot_test_total", now - 60.0, now));
        assert!(exemplars.is_array(), "{exemplars}");

        assert!(
            server
                .log()
                .contains("Server is ready to receive web requests.")
        );
        let dir = server.dir().to_owned();
        assert!(dir.join("prometheus.yml").is_file());
        drop(server);
        assert!(!dir.exists(), "{} not removed", dir.display());
        eprintln!(
            "prometheus ready after {ready:.2?}, first successful scrape seen after {scraped:.2?}"
        );
    }

    #[test]
    fn wait_for_times_out_with_the_last_result_and_the_targets() {
        // Nothing listens on the target: the scrape fails and `up` is 0.
        let target = format!("127.0.0.1:{}", free_port());
        let server = ok(PrometheusServer::start(
            &[target],
            Duration::from_millis(500),
            &[],
        ));
        ok(server.wait_for("up", Duration::from_secs(30), |r| single_value(r, "0")));
        let error = server
            .wait_for("up", Duration::from_millis(300), |r| single_value(r, "1"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("timed out after"), "{error}");
        assert!(error.contains("last result: [{"), "{error}");
        assert!(error.contains("health=down"), "{error}");
        assert!(error.contains("connection refused"), "{error}");
        assert!(error.contains("--- prometheus log"), "{error}");
    }

    #[test]
    fn extra_yaml_loads_recording_rules() {
        let exposition = StaticExposition::serve(VALID.to_owned(), CONTENT_TYPE).unwrap();
        let rules_dir = TempDir::create("rules").unwrap();
        let rules = rules_dir.path.join("rules.yml");
        fs::write(
            &rules,
            "groups:\n  - name: stockbot\n    rules:\n      - record: venue:stockbot_test:sum\n        \
             expr: sum by (venue) (stockbot_test_total)\n",
        )
        .unwrap();
        let rules_text = rules.display().to_string();
        let checked = ok(promtool(&["check", "rules", &rules_text]));
        assert!(checked.contains("SUCCESS: 1 rules found"), "{checked}");

        let server = ok(PrometheusServer::start_with_config(
            &[exposition.addr()],
            Duration::from_secs(1),
            &format!("rule_files:\n  - {rules_text}\n"),
            &["--enable-feature=exemplar-storage"],
        ));
        let config = fs::read_to_string(server.dir().join("prometheus.yml")).unwrap();
        ok(promtool(&[
            "check",
            "config",
            &server.dir().join("prometheus.yml").display().to_string(),
        ]));
        assert!(config.contains("evaluation_interval: 1s"), "{config}");
        let result = ok(
            server.wait_for("venue:stockbot_test:sum", Duration::from_secs(30), |r| {
                single_value(r, "3")
            }),
        );
        assert_eq!(result[0]["metric"]["venue"], "XNAS", "{result}");
    }

    #[test]
    fn a_config_prometheus_rejects_fails_the_start_with_its_log() {
        let error = PrometheusServer::start_with_config(
            &[],
            Duration::from_secs(1),
            "not_a_section: true\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("prometheus exited during startup"),
            "{error}"
        );
        assert!(error.contains("not_a_section"), "{error}");
    }

    #[test]
    fn a_taken_port_is_detected_for_a_retry() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let config = generate_config(&[], Duration::from_secs(1), "", "").unwrap();
        let failure = try_launch(Path::new(PROMETHEUS_BIN), &config, &[], port).unwrap_err();
        assert!(failure.port_taken, "{}", failure.error);
        assert!(
            failure.error.message().contains("exited during startup"),
            "{}",
            failure.error
        );
    }

    #[test]
    fn promtool_check_metrics_accepts_a_valid_exposition() {
        ok(promtool_check_metrics(VALID));
    }

    #[test]
    fn promtool_check_metrics_names_the_problem() {
        let error = promtool_check_metrics("# TYPE foo counter\nfoo 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(r#"foo counter metrics should have "_total" suffix"#),
            "{error}"
        );
        assert!(error.contains("foo no help text"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");

        let error = promtool_check_metrics("garbage{\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("text format parsing error in line 1"),
            "{error}"
        );
        assert!(error.contains("exit status: 1"), "{error}");
    }

    #[test]
    fn promtool_returns_output_or_the_failure() {
        let version = ok(promtool(&["--version"]));
        assert!(version.starts_with("promtool, version 2."), "{version}");
        let error = promtool(&["check", "rules", "/nonexistent/rules.yml"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/rules.yml"), "{error}");
        assert!(error.contains("exit status: 1"), "{error}");
    }

    #[test]
    fn a_missing_binary_is_an_error_that_says_how_to_install_it() {
        let error = launch(
            Path::new("/nonexistent/prometheus"),
            &[],
            Duration::from_secs(1),
            "",
            "",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "prometheus binary not found at /nonexistent/prometheus (install the Debian \
             packages `prometheus` and `prometheus-alertmanager`; scripts/test.sh does)"
        );
    }

    #[test]
    fn static_exposition_serves_every_path_and_counts() {
        let exposition = StaticExposition::serve("a 1\n".to_owned(), CONTENT_TYPE).unwrap();
        let port: u16 = exposition
            .addr()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for path in ["/metrics", "/anything?x=1"] {
            let response = http_get(port, path, HTTP_TIMEOUT).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body, "a 1\n");
        }
        assert_eq!(exposition.requests(), 2);
        drop(exposition);
        assert!(http_get(port, "/", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn generated_config_quotes_targets_and_keeps_the_interval() {
        let config = generate_config(
            &["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()],
            Duration::from_millis(250),
            "basic_auth:\n  username: prometheus",
            "rule_files: []",
        )
        .unwrap();
        assert!(config.contains("  scrape_interval: 250ms\n  evaluation_interval: 250ms\n"));
        assert!(config.contains(
            "- targets: [\"127.0.0.1:1\",\"127.0.0.1:2\"]\n    basic_auth:\n      username: prometheus\n"
        ));
        assert!(config.ends_with("rule_files: []\n"));
        assert_eq!(prometheus_duration(Duration::from_secs(15)).unwrap(), "15s");
        assert!(prometheus_duration(Duration::from_micros(1500)).is_err());
        assert!(prometheus_duration(Duration::ZERO).is_err());
    }

    #[test]
    fn http_helpers() {
        assert_eq!(
            percent_encode("up{job=\"a b\"}"),
            "up%7Bjob%3D%22a%20b%22%7D"
        );
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap();
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "hello world")
        );
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy";
        let response = parse_response(raw).unwrap();
        assert_eq!((response.status, response.body.as_str()), (503, "busy"));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }
}
