//! Host and process system metrics, collected on an interval by a background thread and emitted
//! through the `metrics` facade, so whatever recorder is installed (the Prometheus exporter, an
//! OTLP bridge, a test recorder) receives them.
//!
//! Names follow Prometheus conventions: base units (bytes, seconds), counters end in `_total`,
//! and every name starts with the configured namespace (`stockbot_process_threads`).
//!
//! | name after `{ns}_`                       | kind    | label        | notes                    |
//! |------------------------------------------|---------|--------------|--------------------------|
//! | `process_cpu_seconds_total`              | counter |              | user + system, whole sec |
//! | `process_resident_memory_bytes`          | gauge   |              |                          |
//! | `process_virtual_memory_bytes`           | gauge   |              |                          |
//! | `process_open_fds`                       | gauge   |              | `/proc/self/fd`          |
//! | `process_max_fds`                        | gauge   |              | soft limit, if limited   |
//! | `process_threads`                        | gauge   |              | `/proc/self/status`      |
//! | `process_start_time_seconds`             | gauge   |              | unix seconds             |
//! | `process_disk_read_bytes_total`          | counter |              | storage layer            |
//! | `process_disk_written_bytes_total`       | counter |              | storage layer            |
//! | `host_cpu_usage_ratio`                   | gauge   |              | 0..1, see below          |
//! | `host_cpu_cores`                         | gauge   |              | logical CPUs             |
//! | `host_memory_total_bytes`                | gauge   |              |                          |
//! | `host_memory_available_bytes`            | gauge   |              |                          |
//! | `host_swap_used_bytes`                   | gauge   |              |                          |
//! | `host_load1`, `host_load5`, `host_load15`| gauge   |              | runnable tasks           |
//! | `host_disk_total_bytes`                  | gauge   | `mountpoint` | real filesystems, max 32 |
//! | `host_disk_available_bytes`              | gauge   | `mountpoint` | real filesystems, max 32 |
//! | `host_network_received_bytes_total`      | counter | `interface`  | all but `lo`, max 32     |
//! | `host_network_transmitted_bytes_total`   | counter | `interface`  | all but `lo`, max 32     |
//! | `host_uptime_seconds`                    | gauge   |              |                          |
//!
//! The `/proc/self` sources are Linux only; elsewhere those three metrics are left out.
//!
//! Counters are recorded with `Counter::absolute` from the kernel's own cumulative values, so a
//! restart of the collector never double counts. Because `metrics` counters are integers,
//! `process_cpu_seconds_total` moves in whole seconds: `rate()` over 5 minutes is then off by at
//! most 1/300 of a core.
//!
//! `host_cpu_usage_ratio` is a difference between two samples of the kernel's CPU times taken at
//! least [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux) apart. The sample that
//! [`CollectorState::new`] takes is the first one, so a collection made sooner than that after
//! `new` (which includes the immediate first collection of [`SystemMetrics::start`]) has no valid
//! value yet and leaves the series out rather than report a false 0; it appears from the second
//! collection on.
//!
//! Cost is bounded: only our own PID is refreshed (never the process list), CPU and memory are
//! refreshed with the narrowest `sysinfo` refresh kinds, disks refresh their storage figures only,
//! and the labelled families are capped. Anything that cannot be read (a missing `/proc` entry,
//! an unsupported platform) just leaves its metric out; nothing here panics.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::{Recorder, Unit};

use super::periodic::Periodic;
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

/// Name of the collector thread.
const THREAD_NAME: &str = "stockbot-telemetry-sys";
/// At most this many `mountpoint` series per disk metric.
const MAX_MOUNTPOINTS: usize = 32;
/// At most this many `interface` series per network metric.
const MAX_INTERFACES: usize = 32;

const LABEL_MOUNTPOINT: &str = "mountpoint";
const LABEL_INTERFACE: &str = "interface";

// Metric name suffixes; the full name is `{namespace}_{suffix}`.
const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
const PROCESS_OPEN_FDS: &str = "process_open_fds";
const PROCESS_MAX_FDS: &str = "process_max_fds";
const PROCESS_THREADS: &str = "process_threads";
const PROCESS_START_TIME: &str = "process_start_time_seconds";
const PROCESS_DISK_READ: &str = "process_disk_read_bytes_total";
const PROCESS_DISK_WRITTEN: &str = "process_disk_written_bytes_total";
const HOST_CPU_USAGE: &str = "host_cpu_usage_ratio";
const HOST_CPU_CORES: &str = "host_cpu_cores";
const HOST_MEMORY_TOTAL: &str = "host_memory_total_bytes";
const HOST_MEMORY_AVAILABLE: &str = "host_memory_available_bytes";
const HOST_SWAP_USED: &str = "host_swap_used_bytes";
const HOST_LOAD1: &str = "host_load1";
const HOST_LOAD5: &str = "host_load5";
const HOST_LOAD15: &str = "host_load15";
const HOST_DISK_TOTAL: &str = "host_disk_total_bytes";
const HOST_DISK_AVAILABLE: &str = "host_disk_available_bytes";
const HOST_NETWORK_RECEIVED: &str = "host_network_received_bytes_total";
const HOST_NETWORK_TRANSMITTED: &str = "host_network_transmitted_bytes_total";
const HOST_UPTIME: &str = "host_uptime_seconds";

/// Kind of a metric in [`METRICS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric this module emits: name suffix, kind, unit and help text.
#[derive(Debug, Clone, Copy)]
struct MetricDef {
    suffix: &'static str,
    kind: Kind,
    unit: Unit,
    help: &'static str,
}

const fn counter(suffix: &'static str, unit: Unit, help: &'static str) -> MetricDef {
    MetricDef {
        suffix,
        kind: Kind::Counter,
        unit,
        help,
    }
}

const fn gauge(suffix: &'static str, unit: Unit, help: &'static str) -> MetricDef {
    MetricDef {
        suffix,
        kind: Kind::Gauge,
        unit,
        help,
    }
}

/// Every metric this module emits, described on each collection.
///
/// `Unit::Percent` marks the `_ratio` gauge (a 0..1 fraction), as the SDK's recorder expects;
/// load averages are counts of runnable tasks.
#[rustfmt::skip]
const METRICS: &[MetricDef] = &[
    counter(PROCESS_CPU_SECONDS, Unit::Seconds, "User plus system CPU time of this process."),
    gauge(PROCESS_RESIDENT_MEMORY, Unit::Bytes, "Resident memory size of this process."),
    gauge(PROCESS_VIRTUAL_MEMORY, Unit::Bytes, "Virtual memory size of this process."),
    gauge(PROCESS_OPEN_FDS, Unit::Count, "Open file descriptors of this process."),
    gauge(PROCESS_MAX_FDS, Unit::Count, "Soft limit on open file descriptors of this process."),
    gauge(PROCESS_THREADS, Unit::Count, "OS threads of this process."),
    gauge(PROCESS_START_TIME, Unit::Seconds, "Start time of this process, unix seconds."),
    counter(PROCESS_DISK_READ, Unit::Bytes, "Bytes this process read from storage."),
    counter(PROCESS_DISK_WRITTEN, Unit::Bytes, "Bytes this process wrote to storage."),
    gauge(HOST_CPU_USAGE, Unit::Percent, "Busy fraction (0..1) of all host CPUs since last collection."),
    gauge(HOST_CPU_CORES, Unit::Count, "Logical CPUs of the host."),
    gauge(HOST_MEMORY_TOTAL, Unit::Bytes, "Physical memory of the host."),
    gauge(HOST_MEMORY_AVAILABLE, Unit::Bytes, "Host memory available without swapping."),
    gauge(HOST_SWAP_USED, Unit::Bytes, "Swap space in use on the host."),
    gauge(HOST_LOAD1, Unit::Count, "Host load average over 1 minute."),
    gauge(HOST_LOAD5, Unit::Count, "Host load average over 5 minutes."),
    gauge(HOST_LOAD15, Unit::Count, "Host load average over 15 minutes."),
    gauge(HOST_DISK_TOTAL, Unit::Bytes, "Size of a mounted filesystem."),
    gauge(HOST_DISK_AVAILABLE, Unit::Bytes, "Space available to non-root on a filesystem."),
    counter(HOST_NETWORK_RECEIVED, Unit::Bytes, "Bytes received on a network interface."),
    counter(HOST_NETWORK_TRANSMITTED, Unit::Bytes, "Bytes sent on a network interface."),
    gauge(HOST_UPTIME, Unit::Seconds, "Time since the host booted."),
];

/// Filesystem types that are never real storage (in addition to those `sysinfo` already drops).
#[rustfmt::skip]
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "erofs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fusectl",
    "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore", "ramfs",
    "rootfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
];

/// Mountpoints (and everything below them) that are never reported.
#[rustfmt::skip]
const IGNORED_MOUNT_ROOTS: &[&str] = &[
    "/proc", "/sys", "/dev", "/run", "/snap", "/var/lib/docker", "/var/lib/containers",
    "/var/lib/kubelet",
];

/// Settings (the core maps its config onto this).
#[derive(Debug, Clone)]
pub(crate) struct SystemMetricsSettings {
    /// Time between two collections (e.g. 15 s); values under 10 ms are raised to 10 ms.
    pub(crate) interval: Duration,
    /// Metric name prefix: `"stockbot"` gives `stockbot_process_cpu_seconds_total`. An empty
    /// namespace gives the bare names.
    pub(crate) namespace: String,
}

/// The running collector; stops (and joins its thread, bounded wait) on `stop` or drop.
#[derive(Debug)]
pub(crate) struct SystemMetrics(Periodic);

impl SystemMetrics {
    /// Starts a named thread ("stockbot-telemetry-sys") that collects once immediately, then
    /// every `interval`, recording into `recorder` (installed as the thread-local recorder of the
    /// collector thread, so it works with or without a global install).
    ///
    /// # Errors
    ///
    /// The error of spawning the thread.
    pub(crate) fn start(
        settings: SystemMetricsSettings,
        recorder: Arc<dyn Recorder + Send + Sync>,
    ) -> io::Result<Self> {
        let namespace = settings.namespace;
        let mut state = None;
        let periodic = Periodic::start(THREAD_NAME, settings.interval, move || {
            let state = state.get_or_insert_with(CollectorState::new);
            metrics::with_local_recorder(&*recorder, || {
                SystemMetrics::collect_once(state, &namespace)
            });
        })?;
        Ok(SystemMetrics(periodic))
    }

    /// Collects once, synchronously, into the current (thread-local or global) recorder. Used by
    /// the collector thread and by tests.
    pub(crate) fn collect_once(state: &mut CollectorState, namespace: &str) {
        describe_all(namespace);
        state.collect_process(namespace);
        state.collect_host(namespace);
        state.collections = state.collections.wrapping_add(1);
    }

    /// Stops the collector: wakes the thread, waits up to one second for it to finish and joins
    /// it; a thread still busy after that (e.g. stuck on a hung filesystem) is detached.
    pub(crate) fn stop(self) {
        self.0.stop();
    }
}

/// What the collector keeps between collections: the `sysinfo` handles and when the CPU times
/// were first sampled.
pub(crate) struct CollectorState {
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
    pid: Option<Pid>,
    /// When the first CPU-times sample was taken; the usage ratio is valid once
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] has passed since.
    cpu_sampled_at: Option<Instant>,
    /// Whether the per-process I/O accounting file can be read (Linux: `/proc/self/io`);
    /// without it `sysinfo` would report 0 forever.
    process_io_readable: bool,
    collections: u64,
}

impl CollectorState {
    /// Creates the `sysinfo` handles (nothing loaded except a first sample of CPU times, which
    /// the next collection's CPU usage ratio is measured against).
    pub(crate) fn new() -> Self {
        let mut system = System::new().ok();
        let mut cpu_sampled_at = None;
        if let Some(system) = system.as_mut() {
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            cpu_sampled_at = Some(Instant::now());
        }
        Self {
            system,
            disks: Disks::new().ok(),
            networks: Networks::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
            cpu_sampled_at,
            process_io_readable: process_io_readable(),
            collections: 0,
        }
    }

    fn collect_process(&mut self, ns: &str) {
        if let (Some(system), Some(pid)) = (self.system.as_mut(), self.pid) {
            let mut kind = ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory();
            if self.process_io_readable {
                kind = kind.with_disk_usage();
            }
            system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
            if let Some(process) = system.process(pid) {
                set_counter(
                    ns,
                    PROCESS_CPU_SECONDS,
                    process.accumulated_cpu_time() / 1_000,
                );
                if process.memory() > 0 {
                    set_gauge(ns, PROCESS_RESIDENT_MEMORY, process.memory() as f64);
                }
                if process.virtual_memory() > 0 {
                    set_gauge(ns, PROCESS_VIRTUAL_MEMORY, process.virtual_memory() as f64);
                }
                if process.start_time() > 0 {
                    set_gauge(ns, PROCESS_START_TIME, process.start_time() as f64);
                }
                if self.process_io_readable {
                    let io = process.disk_usage();
                    set_counter(ns, PROCESS_DISK_READ, io.total_read_bytes);
                    set_counter(ns, PROCESS_DISK_WRITTEN, io.total_written_bytes);
                }
            }
        }
        if let Some(fds) = open_fds() {
            set_gauge(ns, PROCESS_OPEN_FDS, fds as f64);
        }
        if let Some(max) = max_fds() {
            set_gauge(ns, PROCESS_MAX_FDS, max as f64);
        }
        if let Some(threads) = threads() {
            set_gauge(ns, PROCESS_THREADS, threads as f64);
        }
    }

    fn collect_host(&mut self, ns: &str) {
        if let Some(system) = self.system.as_mut() {
            // sysinfo ignores a refresh of CPU times sooner than MINIMUM_CPU_UPDATE_INTERVAL after
            // the previous one (the process refresh above may just have made it).
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            let cores = system.cpus().len();
            if cores > 0 {
                set_gauge(ns, HOST_CPU_CORES, cores as f64);
                let warmed_up = self
                    .cpu_sampled_at
                    .is_some_and(|at| at.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
                let usage = f64::from(system.global_cpu_usage()) / 100.0;
                if warmed_up && usage.is_finite() {
                    set_gauge(ns, HOST_CPU_USAGE, usage.clamp(0.0, 1.0));
                }
            }

            system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
            // A zero total means the memory table could not be read.
            if system.total_memory() > 0 {
                set_gauge(ns, HOST_MEMORY_TOTAL, system.total_memory() as f64);
                set_gauge(ns, HOST_MEMORY_AVAILABLE, system.available_memory() as f64);
                let swap_used = system.total_swap().saturating_sub(system.free_swap());
                set_gauge(ns, HOST_SWAP_USED, swap_used as f64);
            }
        }

        if let Ok(load) = System::load_average() {
            for (suffix, value) in [
                (HOST_LOAD1, load.one),
                (HOST_LOAD5, load.five),
                (HOST_LOAD15, load.fifteen),
            ] {
                if value.is_finite() && value >= 0.0 {
                    set_gauge(ns, suffix, value);
                }
            }
        }
        if let Ok(uptime) = System::uptime() {
            set_gauge(ns, HOST_UPTIME, uptime as f64);
        }

        if let Some(disks) = self.disks.as_mut() {
            disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
            let mut filesystems: Vec<(String, u64, u64)> = disks
                .iter()
                .filter(|disk| disk.total_space() > 0)
                .filter(|disk| {
                    is_real_filesystem(&disk.file_system().to_string_lossy(), disk.mount_point())
                })
                .map(|disk| {
                    let mountpoint = disk.mount_point().to_string_lossy().into_owned();
                    (mountpoint, disk.total_space(), disk.available_space())
                })
                .collect();
            // Stable choice under the cap; a mountpoint listed twice (stacked mounts) counts once.
            filesystems.sort_by(|a, b| a.0.cmp(&b.0));
            filesystems.dedup_by(|a, b| a.0 == b.0);
            filesystems.truncate(MAX_MOUNTPOINTS);
            let total_name = metric_name(ns, HOST_DISK_TOTAL);
            let available_name = metric_name(ns, HOST_DISK_AVAILABLE);
            for (mountpoint, total, available) in filesystems {
                metrics::gauge!(total_name.clone(), LABEL_MOUNTPOINT => mountpoint.clone())
                    .set(total as f64);
                metrics::gauge!(available_name.clone(), LABEL_MOUNTPOINT => mountpoint)
                    .set(available as f64);
            }
        }

        if let Some(networks) = self.networks.as_mut() {
            networks.refresh(true);
            let mut interfaces: Vec<(String, u64, u64)> = networks
                .iter()
                .filter(|(name, _)| name.as_os_str() != "lo")
                .map(|(name, data)| {
                    (
                        name.to_string_lossy().into_owned(),
                        data.total_received(),
                        data.total_transmitted(),
                    )
                })
                .collect();
            interfaces.sort_by(|a, b| a.0.cmp(&b.0));
            interfaces.truncate(MAX_INTERFACES);
            let received_name = metric_name(ns, HOST_NETWORK_RECEIVED);
            let transmitted_name = metric_name(ns, HOST_NETWORK_TRANSMITTED);
            for (interface, received, transmitted) in interfaces {
                metrics::counter!(received_name.clone(), LABEL_INTERFACE => interface.clone())
                    .absolute(received);
                metrics::counter!(transmitted_name.clone(), LABEL_INTERFACE => interface)
                    .absolute(transmitted);
            }
        }
    }
}

impl Default for CollectorState {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CollectorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorState")
            .field("pid", &self.pid.map(Pid::as_u32))
            .field("system", &self.system.is_some())
            .field("disks", &self.disks.as_ref().map(|disks| disks.len()))
            .field(
                "networks",
                &self.networks.as_ref().map(|networks| networks.len()),
            )
            .field("process_io_readable", &self.process_io_readable)
            .field("collections", &self.collections)
            .finish_non_exhaustive()
    }
}

/// `{namespace}_{suffix}`, or the bare suffix for an empty namespace.
fn metric_name(namespace: &str, suffix: &str) -> String {
    if namespace.is_empty() {
        suffix.to_owned()
    } else {
        format!("{namespace}_{suffix}")
    }
}

fn set_gauge(ns: &str, suffix: &str, value: f64) {
    metrics::gauge!(metric_name(ns, suffix)).set(value);
}

fn set_counter(ns: &str, suffix: &str, value: u64) {
    metrics::counter!(metric_name(ns, suffix)).absolute(value);
}

/// Describes every metric (unit and help text) to the current recorder.
fn describe_all(ns: &str) {
    for metric in METRICS {
        let name = metric_name(ns, metric.suffix);
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(name, metric.unit, metric.help),
            Kind::Gauge => metrics::describe_gauge!(name, metric.unit, metric.help),
        }
    }
}

/// Whether a mounted filesystem is real storage worth reporting.
fn is_real_filesystem(fs_type: &str, mountpoint: &Path) -> bool {
    if PSEUDO_FILESYSTEMS.contains(&fs_type) {
        return false;
    }
    // `Path::starts_with` compares whole components: `/devices` is not under `/dev`.
    if IGNORED_MOUNT_ROOTS
        .iter()
        .any(|root| mountpoint.starts_with(root))
        && !mountpoint.starts_with("/run/media")
    {
        return false;
    }
    // Files bind-mounted into containers (/etc/hosts, /etc/resolv.conf) are not filesystems.
    std::fs::metadata(mountpoint).is_ok_and(|meta| meta.is_dir())
}

#[cfg(target_os = "linux")]
fn process_io_readable() -> bool {
    std::fs::File::open("/proc/self/io").is_ok()
}

#[cfg(not(target_os = "linux"))]
fn process_io_readable() -> bool {
    true
}

/// Open file descriptors: the entries of `/proc/self/fd`, less the one used to list them.
#[cfg(target_os = "linux")]
fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    let listed = entries.filter(Result::is_ok).count() as u64;
    Some(listed.saturating_sub(1))
}

#[cfg(not(target_os = "linux"))]
fn open_fds() -> Option<u64> {
    None
}

/// Soft limit on open files, from `/proc/self/limits`; `None` when unlimited or unreadable.
#[cfg(target_os = "linux")]
fn max_fds() -> Option<u64> {
    parse_max_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

#[cfg(not(target_os = "linux"))]
fn max_fds() -> Option<u64> {
    None
}

/// Thread count, from the `Threads:` line of `/proc/self/status`.
#[cfg(target_os = "linux")]
fn threads() -> Option<u64> {
    parse_status_threads(&std::fs::read_to_string("/proc/self/status").ok()?)
}

#[cfg(not(target_os = "linux"))]
fn threads() -> Option<u64> {
    None
}

/// The soft limit of the `Max open files` line of a `/proc/<pid>/limits` table.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The value of the `Threads:` line of a `/proc/<pid>/status` file.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_status_threads(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?;
    line.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString};
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use stockbot_telemetry_conventions as conventions;

    const NS: &str = "stockbot";
    const MIB: f64 = 1024.0 * 1024.0;

    /// One recorded series, flattened.
    #[derive(Debug)]
    struct Sample {
        kind: MetricKind,
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
        unit: Option<Unit>,
        described: bool,
    }

    fn samples(snapshotter: &Snapshotter) -> Vec<Sample> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, unit, description, value)| {
                let (kind, key) = key.into_parts();
                let labels = key
                    .labels()
                    .map(|label| (label.key().to_owned(), label.value().to_owned()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(value) => value as f64,
                    DebugValue::Gauge(value) => value.0,
                    DebugValue::Histogram(_) => f64::NAN,
                };
                Sample {
                    kind,
                    name: key.name().to_owned(),
                    labels,
                    value,
                    unit,
                    described: description.is_some(),
                }
            })
            .collect()
    }

    /// The value of the unlabelled series `{NS}_{suffix}`.
    fn value(samples: &[Sample], suffix: &str) -> Option<f64> {
        let name = metric_name(NS, suffix);
        samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map(|s| s.value)
    }

    fn collect_into_debugging(state: &mut CollectorState) -> Vec<Sample> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || SystemMetrics::collect_once(state, NS));
        samples(&snapshotter)
    }

    fn unix_now() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    #[test]
    fn collect_once_records_plausible_process_metrics() {
        let mut state = CollectorState::new();
        let samples = collect_into_debugging(&mut state);

        let cpu = value(&samples, PROCESS_CPU_SECONDS).expect("cpu seconds");
        assert!(cpu >= 0.0, "cpu seconds {cpu}");
        let rss = value(&samples, PROCESS_RESIDENT_MEMORY).expect("resident memory");
        assert!(rss > MIB, "resident memory {rss}");
        let vsz = value(&samples, PROCESS_VIRTUAL_MEMORY).expect("virtual memory");
        assert!(vsz >= rss, "virtual {vsz} < resident {rss}");
        let start = value(&samples, PROCESS_START_TIME).expect("start time");
        let now = unix_now();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "start time {start}, now {now}"
        );

        if cfg!(target_os = "linux") {
            let fds = value(&samples, PROCESS_OPEN_FDS).expect("open fds");
            assert!(fds >= 3.0, "open fds {fds}");
            let threads = value(&samples, PROCESS_THREADS).expect("threads");
            assert!(threads >= 1.0, "threads {threads}");
            let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
            match parse_max_open_files(&limits) {
                Some(limit) => {
                    let max = value(&samples, PROCESS_MAX_FDS).expect("max fds");
                    assert_eq!(max, limit as f64);
                    assert!(max >= fds, "max fds {max} < open fds {fds}");
                }
                None => assert!(value(&samples, PROCESS_MAX_FDS).is_none()),
            }
        }
        if state.process_io_readable {
            assert!(value(&samples, PROCESS_DISK_READ).is_some());
            assert!(value(&samples, PROCESS_DISK_WRITTEN).is_some());
        }
    }

    #[test]
    fn collect_once_records_host_metrics() {
        let mut state = CollectorState::new();
        let samples = collect_into_debugging(&mut state);

        let total = value(&samples, HOST_MEMORY_TOTAL).expect("memory total");
        assert!(total > 0.0);
        let available = value(&samples, HOST_MEMORY_AVAILABLE).expect("memory available");
        assert!(available <= total, "available {available} > total {total}");
        assert!(value(&samples, HOST_SWAP_USED).is_some_and(|v| v >= 0.0));
        let cores = value(&samples, HOST_CPU_CORES).expect("cpu cores");
        assert!(cores >= 1.0);
        assert!(value(&samples, HOST_UPTIME).is_some_and(|v| v > 0.0));
        if cfg!(target_os = "linux") {
            for load in [HOST_LOAD1, HOST_LOAD5, HOST_LOAD15] {
                assert!(value(&samples, load).is_some_and(|v| v >= 0.0), "{load}");
            }
        }

        // Labelled families: right label, capped, pseudo filesystems and loopback left out.
        let disks: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == metric_name(NS, HOST_DISK_TOTAL))
            .collect();
        assert!(disks.len() <= MAX_MOUNTPOINTS);
        for disk in &disks {
            assert_eq!(disk.labels.len(), 1);
            assert_eq!(disk.labels[0].0, LABEL_MOUNTPOINT);
            let mountpoint = Path::new(&disk.labels[0].1);
            assert!(
                !mountpoint.starts_with("/proc") && !mountpoint.starts_with("/sys"),
                "{disk:?}"
            );
            assert!(disk.value > 0.0);
        }
        let received = metric_name(NS, HOST_NETWORK_RECEIVED);
        let interfaces: Vec<&Sample> = samples.iter().filter(|s| s.name == received).collect();
        assert!(interfaces.len() <= MAX_INTERFACES);
        for interface in &interfaces {
            assert_eq!(interface.labels.len(), 1);
            assert_eq!(interface.labels[0].0, LABEL_INTERFACE);
            assert_ne!(interface.labels[0].1, "lo");
        }
    }

    #[test]
    fn cpu_usage_ratio_appears_once_warmed_up() {
        let mut state = CollectorState::new();
        // Collected at once: no second CPU sample yet, so no (false 0) value.
        let first = collect_into_debugging(&mut state);
        assert!(value(&first, HOST_CPU_USAGE).is_none());

        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(50));
        let second = collect_into_debugging(&mut state);
        let usage = value(&second, HOST_CPU_USAGE).expect("cpu usage after warm-up");
        assert!((0.0..=1.0).contains(&usage), "usage {usage}");
    }

    #[test]
    fn every_name_follows_the_conventions() {
        let mut state = CollectorState::new();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let samples = collect_into_debugging(&mut state);
        assert!(samples.len() >= 15, "only {} series", samples.len());

        let valid_chars = |name: &str| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        for sample in &samples {
            let name = &sample.name;
            assert!(name.starts_with("stockbot_"), "{name}");
            assert!(valid_chars(name), "{name}");
            match sample.kind {
                MetricKind::Counter => assert!(name.ends_with("_total"), "counter {name}"),
                MetricKind::Gauge => assert!(!name.ends_with("_total"), "gauge {name}"),
                MetricKind::Histogram => panic!("unexpected histogram {name}"),
            }
            assert!(sample.described, "{name} has no description");
            let def = METRICS
                .iter()
                .find(|d| metric_name(NS, d.suffix) == *name)
                .expect("in METRICS");
            assert_eq!(sample.unit, Some(def.unit), "{name}");
            // The workspace's own naming rules, as the SDK's recorder applies them.
            let kind = match sample.kind {
                MetricKind::Counter => conventions::MetricKind::Counter,
                _ => conventions::MetricKind::Gauge,
            };
            assert_eq!(conventions::validate_metric_name(name, kind, NS), Ok(()));
            for (label, _) in &sample.labels {
                assert_eq!(conventions::validate_label_name(label), Ok(()));
                let cardinality = conventions::label_cardinality(label);
                assert_ne!(cardinality, Some(conventions::Cardinality::High), "{label}");
            }
        }
        // The table itself: unique, same rules.
        for (i, def) in METRICS.iter().enumerate() {
            assert!(
                METRICS[..i].iter().all(|other| other.suffix != def.suffix),
                "{} twice",
                def.suffix
            );
            assert_eq!(
                def.kind == Kind::Counter,
                def.suffix.ends_with("_total"),
                "{}",
                def.suffix
            );
            assert!(valid_chars(def.suffix) && !def.help.is_empty());
            // A described unit must show in the name (the recorder rejects a mismatch).
            let stem = def.suffix.trim_end_matches("_total");
            let expected = match def.unit {
                Unit::Seconds => Some("_seconds"),
                Unit::Bytes => Some("_bytes"),
                Unit::Percent => Some("_ratio"),
                _ => None,
            };
            assert!(
                expected.is_none_or(|suffix| stem.ends_with(suffix)),
                "{}",
                def.suffix
            );
        }
        // Every unlabelled metric is there (on Linux, where all sources exist).
        if cfg!(target_os = "linux") {
            for def in METRICS {
                let labelled = [
                    HOST_DISK_TOTAL,
                    HOST_DISK_AVAILABLE,
                    HOST_NETWORK_RECEIVED,
                    HOST_NETWORK_TRANSMITTED,
                ];
                let optional = [PROCESS_DISK_READ, PROCESS_DISK_WRITTEN, PROCESS_MAX_FDS];
                if !labelled.contains(&def.suffix) && !optional.contains(&def.suffix) {
                    assert!(
                        value(&samples, def.suffix).is_some(),
                        "{} missing",
                        def.suffix
                    );
                }
            }
        }
    }

    #[test]
    fn empty_namespace_gives_bare_names() {
        assert_eq!(metric_name("", PROCESS_THREADS), "process_threads");
        assert_eq!(
            metric_name("stockbot", PROCESS_CPU_SECONDS),
            "stockbot_process_cpu_seconds_total"
        );
    }

    #[test]
    fn parses_proc_files() {
        let limits = "Limit                     Soft Limit   Hard Limit   Units\n\
                      Max cpu time              unlimited    unlimited    seconds\n\
                      Max open files            1024         1048576      files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_max_open_files(unlimited), None);
        assert_eq!(parse_max_open_files(""), None);

        let status = "Name:\tcargo\nUmask:\t0022\nThreads:\t17\nSigQ:\t0/63711\n";
        assert_eq!(parse_status_threads(status), Some(17));
        assert_eq!(parse_status_threads("Name:\tx\n"), None);
    }

    #[test]
    fn pseudo_filesystems_are_skipped() {
        assert!(!is_real_filesystem("overlay", Path::new("/")));
        assert!(!is_real_filesystem("tmpfs", Path::new("/tmp")));
        assert!(!is_real_filesystem(
            "ext4",
            Path::new("/proc/sys/fs/binfmt_misc")
        ));
        assert!(!is_real_filesystem(
            "ext4",
            Path::new("/var/lib/docker/overlay2/abc/merged")
        ));
        assert!(is_real_filesystem("ext4", Path::new("/")));
    }

    /// Delegates to a [`DebuggingRecorder`] and counts, per collection, the registrations of the
    /// resident-memory gauge and the thread they came from.
    #[derive(Debug, Default)]
    struct CountingRecorder {
        inner: DebuggingRecorder,
        collections: AtomicUsize,
        threads: Mutex<Vec<Option<String>>>,
    }

    impl Recorder for CountingRecorder {
        fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
            self.inner.describe_counter(key, unit, description);
        }
        fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
            self.inner.describe_gauge(key, unit, description);
        }
        fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
            self.inner.describe_histogram(key, unit, description);
        }
        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            self.inner.register_counter(key, metadata)
        }
        fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
            if key.name() == metric_name(NS, PROCESS_RESIDENT_MEMORY) {
                self.collections.fetch_add(1, Ordering::SeqCst);
                let name = std::thread::current().name().map(str::to_owned);
                if let Ok(mut threads) = self.threads.lock() {
                    threads.push(name);
                }
            }
            self.inner.register_gauge(key, metadata)
        }
        fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
            self.inner.register_histogram(key, metadata)
        }
    }

    fn settings(interval: Duration) -> SystemMetricsSettings {
        SystemMetricsSettings {
            interval,
            namespace: NS.to_owned(),
        }
    }

    #[test]
    fn start_collects_repeatedly_on_its_thread_and_stops_promptly() {
        let recorder = Arc::new(CountingRecorder::default());
        let snapshotter = recorder.inner.snapshotter();
        let shared: Arc<dyn Recorder + Send + Sync> = recorder.clone();
        let collector =
            SystemMetrics::start(settings(Duration::from_millis(50)), shared).expect("start");

        let deadline = Instant::now() + Duration::from_secs(10);
        while recorder.collections.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stopping = Instant::now();
        collector.stop();
        let took = stopping.elapsed();

        let collections = recorder.collections.load(Ordering::SeqCst);
        assert!(collections >= 2, "only {collections} collections");
        assert!(took < Duration::from_secs(2), "stop took {took:?}");
        let threads = recorder
            .threads
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        assert!(
            threads.iter().all(|t| t.as_deref() == Some(THREAD_NAME)),
            "{threads:?}"
        );
        // Recorded into the given recorder, not the global one.
        let samples = samples(&snapshotter);
        assert!(value(&samples, PROCESS_THREADS).is_some() || !cfg!(target_os = "linux"));
        assert!(value(&samples, HOST_MEMORY_TOTAL).is_some());

        // Stopped: no more collections.
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(recorder.collections.load(Ordering::SeqCst), collections);
    }

    #[test]
    fn stop_and_drop_wake_a_long_sleep() {
        for use_drop in [false, true] {
            let recorder = Arc::new(CountingRecorder::default());
            let shared: Arc<dyn Recorder + Send + Sync> = recorder.clone();
            let collector =
                SystemMetrics::start(settings(Duration::from_secs(3_600)), shared).expect("start");
            let deadline = Instant::now() + Duration::from_secs(10);
            while recorder.collections.load(Ordering::SeqCst) < 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let stopping = Instant::now();
            if use_drop {
                drop(collector);
            } else {
                collector.stop();
            }
            assert!(
                stopping.elapsed() < Duration::from_secs(2),
                "took {:?}",
                stopping.elapsed()
            );
            assert_eq!(recorder.collections.load(Ordering::SeqCst), 1);
            // The thread has been joined, so it released its handle on the recorder.
            assert_eq!(Arc::strong_count(&recorder), 1);
        }
    }

    #[test]
    fn zero_and_huge_intervals_do_not_misbehave() {
        let recorder = Arc::new(CountingRecorder::default());
        let shared: Arc<dyn Recorder + Send + Sync> = recorder.clone();
        let collector = SystemMetrics::start(settings(Duration::MAX), shared).expect("start");
        std::thread::sleep(Duration::from_millis(100));
        collector.stop();
        assert_eq!(recorder.collections.load(Ordering::SeqCst), 1);

        let recorder = Arc::new(CountingRecorder::default());
        let shared: Arc<dyn Recorder + Send + Sync> = recorder.clone();
        let collector = SystemMetrics::start(settings(Duration::ZERO), shared).expect("start");
        std::thread::sleep(Duration::from_millis(100));
        collector.stop();
        // Raised to MIN_INTERVAL: a handful of collections, not thousands.
        let collections = recorder.collections.load(Ordering::SeqCst);
        assert!((1..=20).contains(&collections), "{collections} collections");
    }

    #[test]
    fn collector_state_debug_is_short() {
        let state = CollectorState::new();
        let debug = format!("{state:?}");
        assert!(
            debug.starts_with("CollectorState") && debug.len() < 300,
            "{debug}"
        );
    }
}
