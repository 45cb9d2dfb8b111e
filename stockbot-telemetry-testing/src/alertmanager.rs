//! An evaluator of Alertmanager configurations: which receivers an alert with given labels
//! notifies at a given instant — the routing tree (matchers, `continue`) and the routes'
//! `active_time_intervals` / `mute_time_intervals` with their time zones. `amtool config
//! routes test` ignores time intervals; this answers "who is on call at T" for the
//! configurations `stockbot_telemetry::alerting::Notifications` generates (their JSON form,
//! `alertmanager_json()`).
//!
//! ```
//! use serde_json::json;
//! use stockbot_telemetry_testing::alertmanager::notified_at;
//!
//! let config = json!({
//!     "route": {"receiver": "default", "routes": [
//!         {"matchers": ["team=\"execution\""], "receiver": "alice",
//!          "active_time_intervals": ["office"]},
//!     ]},
//!     "time_intervals": [{"name": "office", "time_intervals": [
//!         {"times": [{"start_time": "09:00", "end_time": "17:00"}],
//!          "weekdays": ["monday:friday"], "location": "Europe/London"}
//!     ]}],
//! });
//! // Tuesday 2026-12-01 10:30 in London (UTC+0 in winter).
//! let at = jiff::Timestamp::from_second(1_796_121_000).unwrap();
//! assert_eq!(notified_at(&config, &[("team", "execution")], at).unwrap(), ["alice"]);
//! // Saturday: the route matches but is not active: nobody is notified.
//! let saturday = jiff::Timestamp::from_second(1_796_121_000 + 4 * 86_400).unwrap();
//! assert!(notified_at(&config, &[("team", "execution")], saturday).unwrap().is_empty());
//! ```

use serde_json::Value;

pub use jiff;

/// The receivers notified for an alert with `labels` at `at` (in routing order; empty when
/// the matching routes are muted or inactive then).
///
/// # Errors
/// A matcher, time interval or time zone the evaluator does not understand, named.
pub fn notified_at(
    config: &Value,
    labels: &[(&str, &str)],
    at: jiff::Timestamp,
) -> Result<Vec<String>, String> {
    let root = &config["route"];
    let mut leaves = Vec::new();
    route(root, labels, &mut leaves)?;
    let mut out = Vec::new();
    for leaf in leaves {
        let active = leaf["active_time_intervals"].as_array();
        let muted = leaf["mute_time_intervals"].as_array();
        let is_on = |names: &Vec<Value>| -> Result<bool, String> {
            for n in names {
                let n = n.as_str().ok_or("an interval name is not a string")?;
                if interval_active(config, n, at)? {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        if let Some(names) = active
            && !is_on(names)?
        {
            continue;
        }
        if let Some(names) = muted
            && is_on(names)?
        {
            continue;
        }
        if let Some(r) = leaf["receiver"].as_str() {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

/// Alertmanager's routing: the first matching child (and further ones while `continue`),
/// recursively; a route with no matching child is itself the match.
fn route<'a>(
    node: &'a Value,
    labels: &[(&str, &str)],
    out: &mut Vec<&'a Value>,
) -> Result<(), String> {
    let mut matched = false;
    for child in node["routes"].as_array().into_iter().flatten() {
        if matches(child, labels)? {
            matched = true;
            route(child, labels, out)?;
            if !child["continue"].as_bool().unwrap_or(false) {
                break;
            }
        }
    }
    if !matched {
        out.push(node);
    }
    Ok(())
}

fn matches(route: &Value, labels: &[(&str, &str)]) -> Result<bool, String> {
    for m in route["matchers"].as_array().into_iter().flatten() {
        let m = m.as_str().ok_or("a matcher is not a string")?;
        let (name, negate, value) = if let Some((n, v)) = m.split_once("!=") {
            (n, true, v)
        } else if let Some((n, v)) = m.split_once('=') {
            (n, false, v)
        } else {
            return Err(format!("matcher {m:?} is neither k=\"v\" nor k!=\"v\""));
        };
        let value: String =
            serde_json::from_str(value).map_err(|e| format!("matcher {m:?}: {e}"))?;
        let actual = labels
            .iter()
            .find(|(k, _)| *k == name.trim())
            .map_or("", |(_, v)| *v);
        if (actual == value) == negate {
            return Ok(false);
        }
    }
    Ok(true)
}

fn interval_active(config: &Value, name: &str, at: jiff::Timestamp) -> Result<bool, String> {
    let interval = config["time_intervals"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == name)
        .ok_or_else(|| format!("no time interval named {name}"))?;
    for entry in interval["time_intervals"].as_array().into_iter().flatten() {
        if entry_active(entry, at)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `v` is in one of the `items` (`"5"` or `"1:5"`), by `parse`.
fn in_ranges(items: &Value, v: i64, parse: impl Fn(&str) -> Option<i64>) -> Result<bool, String> {
    let Some(list) = items.as_array() else {
        return Ok(true);
    };
    for item in list {
        let s = item.as_str().ok_or("a range is not a string")?;
        let (a, b) = s.split_once(':').unwrap_or((s, s));
        let (a, b) = (
            parse(a).ok_or_else(|| format!("bad range {s:?}"))?,
            parse(b).ok_or_else(|| format!("bad range {s:?}"))?,
        );
        if (a..=b).contains(&v) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn entry_active(entry: &Value, at: jiff::Timestamp) -> Result<bool, String> {
    let tz = entry["location"].as_str().unwrap_or("UTC");
    let local = at.in_tz(tz).map_err(|e| format!("time zone {tz:?}: {e}"))?;
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let number = |s: &str| s.trim().parse::<i64>().ok();
    let weekday = |s: &str| {
        [
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
        ]
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s.trim()))
        .map(|i| i as i64)
    };
    if !in_ranges(&entry["years"], i64::from(local.year()), number)?
        || !in_ranges(&entry["months"], i64::from(local.month()), number)?
        || !in_ranges(&entry["days_of_month"], i64::from(local.day()), number)?
        || !in_ranges(
            &entry["weekdays"],
            i64::from(local.weekday().to_sunday_zero_offset()),
            weekday,
        )?
    {
        return Ok(false);
    }
    let Some(times) = entry["times"].as_array() else {
        return Ok(true);
    };
    let hhmm = |v: &Value| -> Option<i64> {
        let (h, m) = v.as_str()?.split_once(':')?;
        Some(h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?)
    };
    for t in times {
        let (Some(start), Some(end)) = (hhmm(&t["start_time"]), hhmm(&t["end_time"])) else {
            return Err(format!("bad time range {t}"));
        };
        if (start..end).contains(&minute) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where Debian's `prometheus-alertmanager` package puts the server.
pub const ALERTMANAGER_BIN: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager for a test: own free loopback port, temporary config and data
/// directory, clustering off (`--cluster.listen-address=` empty: loopback only, parallel
/// instances never gossip), killed (and the directory removed) on drop.
#[derive(Debug)]
pub struct AlertmanagerServer {
    child: std::process::Child,
    port: u16,
    // Dropped after `Drop::drop` killed the child.
    dir: crate::prometheus::TempDir,
}

impl AlertmanagerServer {
    /// Starts `prometheus-alertmanager` with `config` (YAML) and waits until `/-/ready`
    /// answers 200 (30 s).
    ///
    /// # Errors
    /// When the binary is missing, the directory cannot be written, or the server exits or is
    /// not ready in time (the error quotes its log).
    pub fn start(config: &str) -> Result<Self, crate::prometheus::HarnessError> {
        use crate::prometheus::HarnessError;
        if !std::path::Path::new(ALERTMANAGER_BIN).is_file() {
            return Err(HarnessError::missing_binary(
                "prometheus-alertmanager",
                ALERTMANAGER_BIN,
            ));
        }
        let dir = crate::prometheus::TempDir::create("alertmanager")?;
        let config_path = dir.path.join("alertmanager.yml");
        let log_path = dir.path.join("alertmanager.log");
        let io = |what: &str, e: std::io::Error| HarnessError::new(format!("{what}: {e}"));
        std::fs::write(&config_path, config).map_err(|e| io("cannot write the config", e))?;
        let log = std::fs::File::create(&log_path).map_err(|e| io("cannot create the log", e))?;
        let log2 = log.try_clone().map_err(|e| io("cannot clone the log", e))?;
        let port = crate::prometheus::free_port();
        let child = std::process::Command::new(ALERTMANAGER_BIN)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(std::process::Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .map_err(|e| io("cannot start prometheus-alertmanager", e))?;
        let mut server = AlertmanagerServer { child, port, dir };
        let started = std::time::Instant::now();
        loop {
            let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(HarnessError::new(format!(
                    "alertmanager exited during startup ({status})\n{}",
                    crate::prometheus::tail("alertmanager log", &log())
                )));
            }
            let probe =
                crate::prometheus::http_get(port, "/-/ready", std::time::Duration::from_secs(1));
            if probe.is_ok_and(|r| r.status == 200) {
                return Ok(server);
            }
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return Err(HarnessError::new(format!(
                    "alertmanager on port {port} not ready after 30 s\n{}",
                    crate::prometheus::tail("alertmanager log", &log())
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:PORT`, for Prometheus' `alerting.alertmanagers` targets.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("alertmanager.log")).unwrap_or_default()
    }
}

impl Drop for AlertmanagerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
