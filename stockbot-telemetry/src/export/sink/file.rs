//! Local rolling log file: the embedded default sink.
//!
//! JSON-lines log records land here when no backend is configured. The
//! active file is `<directory>/<prefix>.log`; it is rotated (renamed to
//! `<prefix>.<YYYYMMDDTHHMMSS.ffffffZ>.log`, UTC instant of the rotation,
//! with `-N` inserted before `.log` when that name is already taken) when the
//! next batch would push it past `max_file_bytes` or when it was opened longer
//! ago than `max_file_age`. Rotated files are deleted when there are more than
//! `max_files` of them (oldest first) or when the timestamp in their name is
//! older than `max_age`.
//!
//! Everything here is std-only and never panics: every failure is reported as
//! an [`io::Error`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Capacity of the internal write buffer (64 KiB).
const BUFFER_CAPACITY: usize = 64 * 1024;
/// Suffix of every log file name.
const LOG_SUFFIX: &str = ".log";
/// Length in bytes of a formatted timestamp `YYYYMMDDTHHMMSS.ffffffZ`.
const TIMESTAMP_LEN: usize = 23;
/// Microseconds per second.
const MICROS_PER_SEC: u64 = 1_000_000;
/// Seconds per day (UTC has no leap seconds in the unix time scale).
const SECS_PER_DAY: u64 = 86_400;
/// Last second representable with a four-digit year: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECS: u64 = 253_402_300_799;
/// Last microsecond representable with a four-digit year.
const MAX_UNIX_MICROS: u64 = MAX_UNIX_SECS * MICROS_PER_SEC + (MICROS_PER_SEC - 1);

/// Settings of the rolling file.
#[derive(Debug, Clone)]
pub(crate) struct RollingFileSettings {
    /// Directory holding the active and the rotated files (created if missing).
    pub(crate) directory: PathBuf,
    /// File stem, e.g. `"order-router"` gives the active file `order-router.log`.
    pub(crate) prefix: String,
    /// Rotate before a write would push the active file past this many bytes.
    /// A single batch larger than this still goes into a fresh file, alone.
    pub(crate) max_file_bytes: u64,
    /// Rotate when the active file was opened longer ago than this.
    pub(crate) max_file_age: Duration,
    /// Keep at most this many rotated files (the active one is not counted);
    /// the oldest are deleted first.
    pub(crate) max_files: usize,
    /// Delete rotated files older than this, judged by the timestamp in their name.
    pub(crate) max_age: Duration,
}

/// A size- and age-rotated log file with retention of rotated files.
///
/// Writes go through a 64 KiB [`BufWriter`]; call [`RollingFile::flush`] to
/// hand buffered bytes to the OS. Dropping the value flushes on a best-effort
/// basis.
#[derive(Debug)]
pub(crate) struct RollingFile {
    /// The settings this file was opened with.
    settings: RollingFileSettings,
    /// `<directory>/<prefix>.log`.
    active_path: PathBuf,
    /// Buffered handle on the active file; `None` after a failed (re)open or
    /// during a rotation, in which case the next write reopens it.
    writer: Option<BufWriter<File>>,
    /// Identity of the file `writer` points to, to notice that the active
    /// path was deleted, renamed away or replaced by someone else.
    identity: Option<FileIdentity>,
    /// Bytes in the active file, including bytes still buffered.
    size: u64,
    /// Start of the age window of the active file (see [`RollingFile::open_at`]).
    opened_at: SystemTime,
    /// The active file ends with an incomplete line (a crash or a failed
    /// write cut a record short); a `'\n'` is written before the next batch so
    /// that the next record starts on a line of its own.
    pending_newline: bool,
}

impl RollingFile {
    /// Creates the directory if needed and opens (append) the active file
    /// `<prefix>.log`, then applies retention to existing rotated files once.
    ///
    /// Errors if the prefix is empty or contains a path separator or NUL
    /// (`InvalidInput`), if the directory cannot be created, or if the active
    /// file cannot be opened for writing, so that a non-writable directory is
    /// a clear init error. Retention failures are not errors (best effort).
    pub(crate) fn open(settings: RollingFileSettings) -> io::Result<Self> {
        Self::open_at(settings, SystemTime::now())
    }

    /// Same as [`RollingFile::open`], with an explicit "now".
    ///
    /// The age window of an already existing active file starts at `now`
    /// (the time of `open`), not at its creation or modification time: file
    /// creation time is not available everywhere, and the modification time
    /// says when the file was last written, not when it was started.
    pub(crate) fn open_at(mut settings: RollingFileSettings, now: SystemTime) -> io::Result<Self> {
        validate_prefix(&settings.prefix)?;
        if settings.directory.as_os_str().is_empty() {
            settings.directory = PathBuf::from(".");
        }
        let active_path = settings.directory.join(active_file_name(&settings.prefix));
        let mut sink = Self {
            settings,
            active_path,
            writer: None,
            identity: None,
            size: 0,
            opened_at: now,
            pending_newline: false,
        };
        sink.reopen(now)?;
        // Best effort: failing to delete old files must not prevent logging.
        let _ = sink.apply_retention(now);
        Ok(sink)
    }

    /// Writes a batch of complete JSON lines (`bytes` should end with `'\n'`).
    ///
    /// Rotates first when needed (size or age), then writes the whole batch
    /// with one `write_all`. On error the error is returned and the caller
    /// should count the batch's records as dropped; the sink stays usable:
    /// the next call tries again, reopening the active file if it was rotated
    /// away, deleted or replaced (and recreating the directory if needed).
    pub(crate) fn write_batch(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_batch_at(bytes, SystemTime::now())
    }

    /// Same as [`RollingFile::write_batch`], with an explicit "now".
    pub(crate) fn write_batch_at(&mut self, bytes: &[u8], now: SystemTime) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        // Tests fill the disk here (`ENOSPC`).
        #[cfg(feature = "fail-points")]
        fail::fail_point!("stockbot-file-write", |_| Err(
            io::Error::from_raw_os_error(28)
        ));
        self.ensure_active_file(now)?;
        let incoming = len_u64(bytes.len()).saturating_add(u64::from(self.pending_newline));
        if self.rotation_due(incoming, now) {
            self.rotate(now)?;
        }
        self.append(bytes)
    }

    /// Flushes buffered bytes to the OS (no `fsync`).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().map_or(Ok(()), Write::flush)
    }

    /// Path of the active file.
    pub(crate) fn active_path(&self) -> &Path {
        &self.active_path
    }

    /// Rotated files of this sink, oldest first.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the log search command (shipping issue)")
    )]
    pub(crate) fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        let entries = rotated_entries(&self.settings.directory, &self.settings.prefix)?;
        Ok(entries.into_iter().map(|(_, path)| path).collect())
    }

    /// Test-only constructor over an arbitrary active path (e.g. `/dev/full`).
    ///
    /// Rotation and retention are disabled so that the path is never renamed
    /// and its directory never cleaned.
    #[cfg(test)]
    pub(crate) fn open_path_for_test(path: &Path, now: SystemTime) -> io::Result<Self> {
        let directory = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let settings = RollingFileSettings {
            directory,
            prefix: String::from("test"),
            max_file_bytes: u64::MAX,
            max_file_age: Duration::MAX,
            max_files: usize::MAX,
            max_age: Duration::MAX,
        };
        let mut sink = Self {
            settings,
            active_path: path.to_path_buf(),
            writer: None,
            identity: None,
            size: 0,
            opened_at: now,
            pending_newline: false,
        };
        sink.reopen(now)?;
        Ok(sink)
    }

    /// Makes sure `writer` is open on the file currently named by the active
    /// path, reopening it when it is missing, deleted, renamed or replaced.
    fn ensure_active_file(&mut self, now: SystemTime) -> io::Result<()> {
        if self.writer.is_some() {
            if self.active_file_is_current() {
                return Ok(());
            }
            // Another file (or none) now: its age window starts afresh.
            self.retire_writer();
            self.identity = None;
        }
        self.reopen(now)
    }

    /// Whether the active path still names the file `writer` writes to.
    ///
    /// Unknown (e.g. permission errors on the directory) counts as current.
    fn active_file_is_current(&self) -> bool {
        match fs::metadata(&self.active_path) {
            Ok(meta) => self.identity.is_none_or(|id| id == FileIdentity::of(&meta)),
            Err(err) => err.kind() != io::ErrorKind::NotFound,
        }
    }

    /// Drops the current writer after a best-effort flush into the file it
    /// points to (a file renamed away still receives its buffered bytes; a
    /// deleted one takes them with it). Bytes that cannot be flushed are
    /// discarded without a second attempt.
    fn retire_writer(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.flush();
            let (_file, _unflushed) = writer.into_parts();
        }
    }

    /// (Re)creates the directory and opens the active file for appending.
    ///
    /// The age window restarts at `now` unless this is the very same file as
    /// before (e.g. after a failed rename during rotation).
    fn reopen(&mut self, now: SystemTime) -> io::Result<()> {
        self.writer = None;
        fs::create_dir_all(&self.settings.directory)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.active_path)?;
        let meta = file.metadata()?;
        let identity = FileIdentity::of(&meta);
        if self.identity != Some(identity) {
            self.opened_at = now;
        }
        self.identity = Some(identity);
        self.size = meta.len();
        self.pending_newline = ends_without_newline(&self.active_path, self.size);
        self.writer = Some(BufWriter::with_capacity(BUFFER_CAPACITY, file));
        Ok(())
    }

    /// Whether the active file must be rotated before `incoming` more bytes.
    ///
    /// An empty active file is never rotated; if its age expired, its age
    /// window restarts at `now` instead. A clock that went backwards counts
    /// as age zero.
    fn rotation_due(&mut self, incoming: u64, now: SystemTime) -> bool {
        let age_expired = now
            .duration_since(self.opened_at)
            .is_ok_and(|age| age > self.settings.max_file_age);
        if self.size == 0 {
            if age_expired {
                self.opened_at = now;
            }
            return false;
        }
        age_expired || self.size.saturating_add(incoming) > self.settings.max_file_bytes
    }

    /// Flushes and closes the active file, renames it to its rotated name,
    /// applies retention and opens a fresh active file.
    ///
    /// On a flush or rename error nothing is lost: the next call reopens the
    /// same active file and tries to rotate again.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        if let Some(writer) = self.writer.as_mut() {
            writer.flush()?;
        }
        // Close before renaming (required on some platforms); the buffer is empty.
        self.writer = None;
        let target = self.next_rotated_path(now);
        match fs::rename(&self.active_path, &target) {
            Ok(()) => {}
            // Vanished meanwhile: nothing to rotate, just start a fresh file.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        self.identity = None;
        self.size = 0;
        self.pending_newline = false;
        // Best effort: the batch must not be dropped because of retention.
        let _ = self.apply_retention(now);
        self.reopen(now)
    }

    /// Rotated name for a rotation at `now`: the UTC timestamp of `now`, with
    /// a `-N` suffix when taken. If rotated files with a later timestamp exist
    /// (the clock went backwards), the newest one's timestamp is reused with
    /// the next `-N`, so the new file always sorts last.
    fn next_rotated_path(&self, now: SystemTime) -> PathBuf {
        let directory = &self.settings.directory;
        let prefix = &self.settings.prefix;
        let mut key = RotationKey {
            micros: unix_micros(now),
            seq: 0,
        };
        if let Ok(existing) = rotated_entries(directory, prefix)
            && let Some((last, _)) = existing.last()
            && *last >= key
        {
            key = RotationKey {
                micros: last.micros,
                seq: last.seq.saturating_add(1),
            };
        }
        let mut path = directory.join(rotated_file_name(prefix, key));
        while fs::symlink_metadata(&path).is_ok() && key.seq < u64::MAX {
            key.seq += 1;
            path = directory.join(rotated_file_name(prefix, key));
        }
        path
    }

    /// Deletes rotated files older than `max_age` (by their name) and the
    /// oldest ones beyond `max_files`. Only files matching
    /// `<prefix>.<timestamp>[-N].log` exactly are considered.
    ///
    /// Tries every deletion and returns the first error, if any.
    fn apply_retention(&self, now: SystemTime) -> io::Result<()> {
        let entries = rotated_entries(&self.settings.directory, &self.settings.prefix)?;
        let cutoff = unix_micros(now).saturating_sub(duration_micros(self.settings.max_age));
        let excess = entries.len().saturating_sub(self.settings.max_files);
        let mut result = Ok(());
        for (index, (key, path)) in entries.iter().enumerate() {
            if index >= excess && key.micros >= cutoff {
                continue;
            }
            if let Err(err) = fs::remove_file(path)
                && err.kind() != io::ErrorKind::NotFound
                && result.is_ok()
            {
                result = Err(err);
            }
        }
        result
    }

    /// Writes `bytes` (preceded by a repair `'\n'` if needed) to the writer.
    ///
    /// A batch that fits the buffer is either fully buffered or, when making
    /// room fails, not written at all. A batch of at least the buffer size is
    /// written straight to the file; if that fails part-way, the size is
    /// re-read from the file and a torn last line is remembered so that the
    /// next batch starts on a fresh line.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "rolling log file is not open",
            ));
        };
        if self.pending_newline {
            writer.write_all(b"\n")?;
            self.size = self.size.saturating_add(1);
            self.pending_newline = false;
        }
        let len = len_u64(bytes.len());
        let spare = writer.capacity().saturating_sub(writer.buffer().len());
        if bytes.len() > spare {
            // On failure the unwritten rest stays buffered, in order.
            writer.flush()?;
        }
        if bytes.len() < writer.capacity() {
            writer.write_all(bytes)?;
            self.size = self.size.saturating_add(len);
            return Ok(());
        }
        // The buffer is empty here, so this keeps the byte order.
        let before = writer.get_ref().metadata().map(|meta| meta.len());
        match writer.get_mut().write_all(bytes) {
            Ok(()) => {
                self.size = self.size.saturating_add(len);
                Ok(())
            }
            Err(err) => {
                let after = writer.get_ref().metadata().map(|meta| meta.len());
                if let (Ok(before), Ok(after)) = (before, after) {
                    self.size = after;
                    let written = after.saturating_sub(before);
                    let last_written = written
                        .checked_sub(1)
                        .and_then(|index| usize::try_from(index).ok())
                        .and_then(|index| bytes.get(index));
                    self.pending_newline = written > 0 && last_written != Some(&b'\n');
                } else {
                    self.pending_newline = true;
                }
                Err(err)
            }
        }
    }
}

/// All log files of `prefix` in `directory`: rotated files oldest first, then
/// the active file (if it exists). A missing directory gives an empty list.
///
/// Only regular files named `<prefix>.log` or `<prefix>.<timestamp>[-N].log`
/// are listed, so prefix `"a"` never lists files of prefix `"a.b"`.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "read by the log search command (shipping issue)")
)]
pub(crate) fn log_files(directory: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    validate_prefix(prefix)?;
    let mut files: Vec<PathBuf> = match rotated_entries(directory, prefix) {
        Ok(entries) => entries.into_iter().map(|(_, path)| path).collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let active = directory.join(active_file_name(prefix));
    if fs::metadata(&active).is_ok_and(|meta| meta.is_file()) {
        files.push(active);
    }
    Ok(files)
}

/// Sort key of a rotated file: its timestamp, then its `-N` suffix (0 if none).
///
/// Names alone do not sort correctly once suffixes appear (`Z-1.log` sorts
/// before `Z.log`, and `-10` before `-2`), so listings sort by this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RotationKey {
    /// Microseconds since the unix epoch of the timestamp in the name.
    micros: u64,
    /// The `N` of a `-N` suffix, 0 without suffix.
    seq: u64,
}

/// Identity of a file on disk, to notice that a path now names another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    /// Device number (Unix only; elsewhere only existence is checked).
    #[cfg(unix)]
    device: u64,
    /// Inode number (Unix only; elsewhere only existence is checked).
    #[cfg(unix)]
    inode: u64,
}

impl FileIdentity {
    /// Identity of the file described by `meta`.
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                device: meta.dev(),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Self {}
        }
    }
}

/// Rejects prefixes that would not name a file directly inside the directory.
fn validate_prefix(prefix: &str) -> io::Result<()> {
    if prefix.is_empty() || prefix.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid log file prefix {prefix:?}: must be non-empty, without path separators or NUL"
            ),
        ));
    }
    Ok(())
}

/// File name of the active file: `<prefix>.log`.
fn active_file_name(prefix: &str) -> String {
    format!("{prefix}{LOG_SUFFIX}")
}

/// File name of a rotated file: `<prefix>.<timestamp>.log` or `<prefix>.<timestamp>-N.log`.
fn rotated_file_name(prefix: &str, key: RotationKey) -> String {
    let stamp = format_unix_micros(key.micros);
    if key.seq == 0 {
        format!("{prefix}.{stamp}{LOG_SUFFIX}")
    } else {
        format!("{prefix}.{stamp}-{}{LOG_SUFFIX}", key.seq)
    }
}

/// Whether `name` is a rotated file of `prefix` (`<prefix>.<timestamp>[-N].log`).
pub(crate) fn is_rotated_name(name: &str, prefix: &str) -> bool {
    parse_rotated_name(name, prefix).is_some()
}

/// Parses `name` as a rotated file name of `prefix`; `None` for any other name.
///
/// Accepts exactly the names [`rotated_file_name`] produces: a valid
/// timestamp and an optional `-N` with `N >= 1` without leading zeros.
fn parse_rotated_name(name: &str, prefix: &str) -> Option<RotationKey> {
    let rest = name
        .strip_prefix(prefix)?
        .strip_prefix('.')?
        .strip_suffix(LOG_SUFFIX)?;
    let (stamp, seq) = match rest.split_once('-') {
        Some((stamp, digits)) => {
            let well_formed = !digits.is_empty()
                && !digits.starts_with('0')
                && digits.bytes().all(|byte| byte.is_ascii_digit());
            if !well_formed {
                return None;
            }
            (stamp, digits.parse::<u64>().ok()?)
        }
        None => (rest, 0),
    };
    let micros = parse_timestamp(stamp)?;
    Some(RotationKey { micros, seq })
}

/// Rotated files of `prefix` in `directory` with their keys, oldest first.
///
/// Only regular files (not symlinks or directories) whose name parses are kept.
fn rotated_entries(directory: &Path, prefix: &str) -> io::Result<Vec<(RotationKey, PathBuf)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(key) = name
            .to_str()
            .and_then(|name| parse_rotated_name(name, prefix))
        else {
            continue;
        };
        if entry.file_type().is_ok_and(|kind| kind.is_file()) {
            entries.push((key, entry.path()));
        }
    }
    entries.sort_unstable_by_key(|(key, _)| *key);
    Ok(entries)
}

/// Whether the file at `path`, `len` bytes long, ends with a byte other than
/// `'\n'`. Any error reading it counts as "no".
fn ends_without_newline(path: &Path, len: u64) -> bool {
    let Some(last) = len.checked_sub(1) else {
        return false;
    };
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut byte = [0_u8; 1];
    file.seek(SeekFrom::Start(last)).is_ok()
        && file.read_exact(&mut byte).is_ok()
        && byte != [b'\n']
}

/// `usize` to `u64`, saturating (lossless on all supported platforms).
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Length of a duration in microseconds, saturating.
fn duration_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Microseconds since the unix epoch, clamped to the range of four-digit
/// years: times before 1970 count as the epoch, times after 9999 as its end.
fn unix_micros(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    duration_micros(since_epoch).min(MAX_UNIX_MICROS)
}

/// Formats `time` as UTC `YYYYMMDDTHHMMSS.ffffffZ` (clamped as [`unix_micros`]).
#[cfg(test)]
fn format_timestamp(time: SystemTime) -> String {
    format_unix_micros(unix_micros(time))
}

/// Formats microseconds since the unix epoch as UTC `YYYYMMDDTHHMMSS.ffffffZ`.
fn format_unix_micros(micros: u64) -> String {
    let micros = micros.min(MAX_UNIX_MICROS);
    let secs = micros / MICROS_PER_SEC;
    let fraction = micros % MICROS_PER_SEC;
    let (year, month, day) = civil_from_days(secs / SECS_PER_DAY);
    let second_of_day = secs % SECS_PER_DAY;
    let hour = second_of_day / 3600;
    let minute = second_of_day % 3600 / 60;
    let second = second_of_day % 60;
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}.{fraction:06}Z")
}

/// Parses a UTC `YYYYMMDDTHHMMSS.ffffffZ` timestamp into microseconds since
/// the unix epoch. Rejects anything [`format_unix_micros`] would not produce
/// (wrong shape, invalid dates such as February 30, times before 1970).
fn parse_timestamp(stamp: &str) -> Option<u64> {
    let bytes = stamp.as_bytes();
    let shaped = bytes.len() == TIMESTAMP_LEN
        && bytes.get(8) == Some(&b'T')
        && bytes.get(15) == Some(&b'.')
        && bytes.get(22) == Some(&b'Z');
    if !shaped {
        return None;
    }
    let number = |start: usize, end: usize| -> Option<u64> {
        bytes.get(start..end)?.iter().try_fold(0_u64, |acc, &byte| {
            byte.is_ascii_digit()
                .then(|| acc * 10 + u64::from(byte - b'0'))
        })
    };
    let year = number(0, 4)?;
    let month = number(4, 6)?;
    let day = number(6, 8)?;
    let hour = number(9, 11)?;
    let minute = number(11, 13)?;
    let second = number(13, 15)?;
    let fraction = number(16, 22)?;
    let in_range = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !in_range {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
    let micros = secs * MICROS_PER_SEC + fraction;
    // Round trip: rejects dates that do not exist (e.g. 20230229).
    (format_unix_micros(micros) == stamp).then_some(micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`); `None` for dates before 1970.
///
/// Expects `month` in 1..=12, `day` in 1..=31 and a four-digit year.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    // Shift to a year starting in March, counted from 0000-03-01, so that the
    // leap day is the last day of the year and everything stays non-negative.
    let year = year.checked_sub(u64::from(month <= 2))?;
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day.checked_sub(1)?;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`), for non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Clamp to 9999-12-31 so that the arithmetic below cannot overflow.
    let days = days.min(MAX_UNIX_SECS / SECS_PER_DAY);
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counter making temporary directory names unique within the process.
    static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

    /// A temporary directory, removed (with its contents) on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        /// Creates a fresh, empty directory under the system temp dir.
        fn new(tag: &str) -> io::Result<Self> {
            let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "rolling-file-test-{}-{n}-{tag}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path)?;
            Ok(Self(path))
        }

        /// Path of the directory.
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Generous default settings; tests tighten what they exercise.
    fn settings(directory: &Path, prefix: &str) -> RollingFileSettings {
        RollingFileSettings {
            directory: directory.to_path_buf(),
            prefix: prefix.to_owned(),
            max_file_bytes: 1 << 20,
            max_file_age: Duration::from_secs(86_400),
            max_files: 1000,
            max_age: Duration::from_secs(365 * 86_400),
        }
    }

    /// A fixed reference time (2024-11-23T22:13:20Z) plus `secs` seconds.
    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_732_400_000 + secs)
    }

    /// One JSON line with `pad` bytes of padding.
    fn line(i: usize, pad: usize) -> Vec<u8> {
        format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(pad)).into_bytes()
    }

    /// Concatenated contents of `files`, in order.
    fn read_all(files: &[PathBuf]) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        for file in files {
            all.extend(fs::read(file)?);
        }
        Ok(all)
    }

    /// File name of `path` as a string (empty if none).
    fn name_of(path: &Path) -> String {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Size rotation: files stay within the limit unless a batch alone is
    /// bigger, batches are never split, order and content are preserved, and
    /// same-instant rotations (`-N` suffixes beyond 10) still list in order.
    #[test]
    fn rotation_by_size() -> io::Result<()> {
        let dir = TempDir::new("size")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 200;
        let now = at(0);
        let mut sink = RollingFile::open_at(config, now)?;
        let mut batches: Vec<Vec<u8>> = Vec::new();
        let mut seed: usize = 7;
        for i in 0..60 {
            let mut batch = Vec::new();
            if i == 10 || i == 33 {
                for j in 0..5 {
                    batch.extend(line(i * 100 + j, 90));
                }
            } else {
                seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
                for j in 0..=(seed % 3) {
                    batch.extend(line(i * 100 + j, seed % 40));
                }
            }
            sink.write_batch_at(&batch, now)?;
            batches.push(batch);
        }
        sink.flush()?;

        let files = log_files(dir.path(), "app")?;
        let rotated = sink.rotated_files()?;
        assert!(
            rotated.len() > 11,
            "expected many rotations, got {}",
            rotated.len()
        );
        assert_eq!(files.last().map(PathBuf::as_path), Some(sink.active_path()));
        assert_eq!(&files[..files.len() - 1], rotated.as_slice());
        assert_eq!(name_of(&rotated[0]), "app.20241123T221320.000000Z.log");
        assert_eq!(name_of(&rotated[1]), "app.20241123T221320.000000Z-1.log");
        assert_eq!(name_of(&rotated[11]), "app.20241123T221320.000000Z-11.log");

        assert_eq!(read_all(&files)?, batches.concat());
        let mut next = 0;
        for file in &files {
            let content = fs::read(file)?;
            let mut expected = Vec::new();
            let mut count = 0;
            while expected.len() < content.len() && next < batches.len() {
                expected.extend_from_slice(&batches[next]);
                next += 1;
                count += 1;
            }
            assert_eq!(
                content,
                expected,
                "{} is not made of whole batches",
                file.display()
            );
            assert!(
                content.len() <= 200 || count == 1,
                "{} has {} bytes in {count} batches",
                file.display(),
                content.len()
            );
        }
        assert_eq!(next, batches.len());
        Ok(())
    }

    /// With the real clock, rotated files still list oldest first.
    #[test]
    fn rotation_with_real_clock_keeps_order() -> io::Result<()> {
        let dir = TempDir::new("clock")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 1;
        let mut sink = RollingFile::open(config)?;
        let mut written = Vec::new();
        for i in 0..25 {
            let batch = line(i, 3);
            sink.write_batch(&batch)?;
            written.extend(batch);
        }
        sink.flush()?;
        assert_eq!(sink.rotated_files()?.len(), 24);
        assert_eq!(read_all(&log_files(dir.path(), "app")?)?, written);
        Ok(())
    }

    /// A batch bigger than the limit goes alone into a fresh file.
    #[test]
    fn oversized_batch_goes_alone() -> io::Result<()> {
        let dir = TempDir::new("oversized")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 50;
        let mut sink = RollingFile::open_at(config, at(0))?;
        let small = line(1, 1);
        let big = [line(2, 100), line(3, 100)].concat();
        sink.write_batch_at(&small, at(1))?;
        sink.write_batch_at(&big, at(2))?;
        sink.write_batch_at(&small, at(3))?;
        sink.flush()?;
        let files = log_files(dir.path(), "app")?;
        assert_eq!(files.len(), 3);
        assert_eq!(fs::read(&files[0])?, small);
        assert_eq!(fs::read(&files[1])?, big);
        assert_eq!(fs::read(&files[2])?, small);
        Ok(())
    }

    /// A batch larger than the 64 KiB buffer is written intact and in order.
    #[test]
    fn batch_larger_than_buffer() -> io::Result<()> {
        let dir = TempDir::new("large")?;
        let mut sink = RollingFile::open_at(settings(dir.path(), "app"), at(0))?;
        let mut big = Vec::new();
        let mut i = 0;
        while big.len() < 3 * BUFFER_CAPACITY {
            big.extend(line(i, 50));
            i += 1;
        }
        let small = line(999_999, 2);
        sink.write_batch_at(&small, at(1))?;
        sink.write_batch_at(&big, at(2))?;
        sink.write_batch_at(&small, at(3))?;
        sink.flush()?;
        assert_eq!(
            fs::read(sink.active_path())?,
            [small.clone(), big, small].concat()
        );
        Ok(())
    }

    /// Age rotation happens once the active file is older than `max_file_age`,
    /// and rotated names carry the rotation instant.
    #[test]
    fn rotation_by_age() -> io::Result<()> {
        let dir = TempDir::new("age")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_age = Duration::from_secs(60);
        let mut sink = RollingFile::open_at(config, at(0))?;
        let batches: Vec<Vec<u8>> = (0..5).map(|i| line(i, 5)).collect();
        sink.write_batch_at(&batches[0], at(0))?;
        sink.write_batch_at(&batches[1], at(30))?;
        sink.write_batch_at(&batches[2], at(61))?; // rotates
        sink.write_batch_at(&batches[3], at(100))?;
        sink.write_batch_at(&batches[4], at(122))?; // rotates
        sink.flush()?;
        let rotated = sink.rotated_files()?;
        assert_eq!(rotated.len(), 2);
        assert_eq!(
            name_of(&rotated[0]),
            format!("app.{}.log", format_timestamp(at(61)))
        );
        assert_eq!(
            name_of(&rotated[1]),
            format!("app.{}.log", format_timestamp(at(122)))
        );
        assert_eq!(
            fs::read(&rotated[0])?,
            [batches[0].clone(), batches[1].clone()].concat()
        );
        assert_eq!(
            fs::read(&rotated[1])?,
            [batches[2].clone(), batches[3].clone()].concat()
        );
        assert_eq!(fs::read(sink.active_path())?, batches[4]);
        Ok(())
    }

    /// An empty active file is not rotated by age; its window restarts.
    #[test]
    fn empty_file_is_not_rotated_by_age() -> io::Result<()> {
        let dir = TempDir::new("empty-age")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_age = Duration::from_secs(60);
        let mut sink = RollingFile::open_at(config, at(0))?;
        sink.write_batch_at(&line(0, 1), at(1000))?;
        sink.write_batch_at(&line(1, 1), at(1030))?;
        assert!(sink.rotated_files()?.is_empty());
        sink.write_batch_at(&line(2, 1), at(1061))?;
        assert_eq!(sink.rotated_files()?.len(), 1);
        Ok(())
    }

    /// Count retention keeps the newest `max_files` rotated files.
    #[test]
    fn retention_by_count() -> io::Result<()> {
        let dir = TempDir::new("count")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 10;
        config.max_files = 2;
        let mut sink = RollingFile::open_at(config, at(0))?;
        let batches: Vec<Vec<u8>> = (0..6).map(|i| line(i, 10)).collect();
        for (i, batch) in batches.iter().enumerate() {
            sink.write_batch_at(batch, at(u64::try_from(i).unwrap_or(0)))?;
        }
        sink.flush()?;
        let rotated = sink.rotated_files()?;
        assert_eq!(rotated.len(), 2);
        assert_eq!(fs::read(&rotated[0])?, batches[3]);
        assert_eq!(fs::read(&rotated[1])?, batches[4]);
        assert_eq!(fs::read(sink.active_path())?, batches[5]);
        Ok(())
    }

    /// Age retention deletes rotated files whose name is older than `max_age`.
    #[test]
    fn retention_by_age() -> io::Result<()> {
        let dir = TempDir::new("max-age")?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 10;
        config.max_age = Duration::from_secs(3600);
        let mut sink = RollingFile::open_at(config, at(0))?;
        let batches: Vec<Vec<u8>> = (0..4).map(|i| line(i, 10)).collect();
        sink.write_batch_at(&batches[0], at(0))?;
        sink.write_batch_at(&batches[1], at(3000))?; // rotated @3000: batch 0
        sink.write_batch_at(&batches[2], at(6000))?; // rotated @6000: batch 1; 3000 kept
        assert_eq!(sink.rotated_files()?.len(), 2);
        sink.write_batch_at(&batches[3], at(7000))?; // rotated @7000; 3000 deleted
        let rotated = sink.rotated_files()?;
        assert_eq!(rotated.len(), 2);
        assert_eq!(
            name_of(&rotated[0]),
            format!("app.{}.log", format_timestamp(at(6000)))
        );
        assert_eq!(fs::read(&rotated[0])?, batches[1]);
        assert_eq!(fs::read(&rotated[1])?, batches[2]);
        Ok(())
    }

    /// Retention at open only touches `<prefix>.<timestamp>[-N].log` files.
    #[test]
    fn retention_leaves_unrelated_files_alone() -> io::Result<()> {
        let dir = TempDir::new("unrelated")?;
        let old = format_timestamp(at(0));
        let day = 86_400;
        let recent = format_timestamp(at(10 * day - 100));
        let doomed = [format!("a.{old}.log"), format!("a.{old}-2.log")];
        let kept = format!("a.{recent}.log");
        let unrelated = [
            "notes.txt".to_owned(),
            format!("a.b.{old}.log"),
            "a.b.log".to_owned(),
            format!("b.{old}.log"),
            format!("a.{old}.log.gz"),
            "a.garbage.log".to_owned(),
            format!("a.{old}-0.log"),
            format!("a.{old}-01.log"),
            format!("a.{old}-x.log"),
            format!("a.{old}-.log"),
            "a.20000230T000000.000000Z.log".to_owned(),
            "a.19700101T000000.000000.log".to_owned(),
            "a..log".to_owned(),
            format!("xa.{old}.log"),
        ];
        for name in doomed.iter().chain(&unrelated).chain([&kept]) {
            fs::write(dir.path().join(name), b"{}\n")?;
        }
        let lookalike_dir = dir
            .path()
            .join(format!("a.{}.log", format_timestamp(at(5))));
        fs::create_dir(&lookalike_dir)?;

        let mut config = settings(dir.path(), "a");
        config.max_age = Duration::from_secs(day);
        let sink = RollingFile::open_at(config.clone(), at(10 * day))?;
        for name in &doomed {
            assert!(!dir.path().join(name).exists(), "{name} should be deleted");
        }
        assert!(dir.path().join(&kept).exists());
        assert_eq!(sink.rotated_files()?, vec![dir.path().join(&kept)]);
        assert_eq!(
            log_files(dir.path(), "a")?,
            vec![dir.path().join(&kept), dir.path().join("a.log")]
        );
        assert_eq!(
            log_files(dir.path(), "a.b")?,
            vec![
                dir.path().join(format!("a.b.{old}.log")),
                dir.path().join("a.b.log")
            ]
        );
        drop(sink);

        config.max_files = 0;
        let _sink = RollingFile::open_at(config, at(10 * day))?;
        assert!(!dir.path().join(&kept).exists());
        for name in &unrelated {
            assert!(dir.path().join(name).exists(), "{name} must be untouched");
        }
        assert!(lookalike_dir.is_dir());
        assert!(dir.path().join("a.log").exists());
        Ok(())
    }

    /// The sink reopens the active file after it was deleted, renamed away,
    /// or its whole directory removed.
    #[test]
    fn reopens_after_external_changes() -> io::Result<()> {
        let dir = TempDir::new("reopen")?;
        let logs = dir.path().join("logs");
        let mut sink = RollingFile::open_at(settings(&logs, "app"), at(0))?;
        let active = sink.active_path().to_path_buf();
        let b: Vec<Vec<u8>> = (0..8).map(|i| line(i, 3)).collect();

        sink.write_batch_at(&b[0], at(1))?;
        sink.flush()?;
        fs::remove_file(&active)?;
        sink.write_batch_at(&b[1], at(2))?;
        sink.flush()?;
        assert_eq!(fs::read(&active)?, b[1]);

        sink.write_batch_at(&b[2], at(3))?; // still buffered
        fs::remove_file(&active)?;
        sink.write_batch_at(&b[3], at(4))?;
        sink.flush()?;
        assert_eq!(fs::read(&active)?, b[3]);

        sink.write_batch_at(&b[4], at(5))?; // still buffered
        let moved = logs.join("moved.txt");
        fs::rename(&active, &moved)?;
        sink.write_batch_at(&b[5], at(6))?;
        sink.flush()?;
        assert_eq!(fs::read(&moved)?, [b[3].clone(), b[4].clone()].concat());
        assert_eq!(fs::read(&active)?, b[5]);

        fs::remove_dir_all(&logs)?;
        sink.write_batch_at(&b[6], at(7))?;
        sink.flush()?;
        assert_eq!(fs::read(&active)?, b[6]);
        Ok(())
    }

    /// Opening fails cleanly when the directory cannot be created, the
    /// active path is a directory, or the prefix is not a plain file stem.
    #[test]
    fn open_errors() -> io::Result<()> {
        let dir = TempDir::new("unwritable")?;
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"not a directory")?;
        assert!(RollingFile::open(settings(&blocker.join("sub"), "app")).is_err());

        fs::create_dir(dir.path().join("x.log"))?;
        assert!(RollingFile::open(settings(dir.path(), "x")).is_err());

        for prefix in ["", "a/b", "a\\b", "a\0b"] {
            let result = RollingFile::open(settings(dir.path(), prefix));
            assert_eq!(
                result.err().map(|err| err.kind()),
                Some(io::ErrorKind::InvalidInput),
                "{prefix:?}"
            );
        }
        assert!(log_files(&dir.path().join("missing"), "app")?.is_empty());
        Ok(())
    }

    /// Write errors (full device) are returned, never panic, and the sink
    /// keeps answering with results.
    #[cfg(target_os = "linux")]
    #[test]
    fn write_errors_propagate() -> io::Result<()> {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return Ok(());
        }
        let mut sink = RollingFile::open_path_for_test(full, at(0))?;
        sink.write_batch_at(&line(0, 3), at(1))?; // buffered
        assert!(sink.flush().is_err());
        let big = line(1, 2 * BUFFER_CAPACITY);
        assert!(sink.write_batch_at(&big, at(2)).is_err());
        assert!(sink.flush().is_err());
        let _ = sink.write_batch_at(&line(2, 3), at(3));
        let _ = sink.write_batch_at(&big, at(4));
        let _ = sink.flush();
        Ok(())
    }

    /// A torn last line in an existing active file is terminated before the
    /// next batch.
    #[test]
    fn repairs_torn_tail_on_open() -> io::Result<()> {
        let dir = TempDir::new("torn")?;
        fs::write(dir.path().join("app.log"), b"{\"partial\"")?;
        let mut sink = RollingFile::open_at(settings(dir.path(), "app"), at(0))?;
        sink.write_batch_at(&line(1, 1), at(1))?;
        sink.flush()?;
        assert_eq!(
            fs::read(sink.active_path())?,
            [b"{\"partial\"\n".to_vec(), line(1, 1)].concat()
        );
        Ok(())
    }

    /// The size of an existing active file counts towards `max_file_bytes`.
    #[test]
    fn existing_active_file_size_counts() -> io::Result<()> {
        let dir = TempDir::new("existing")?;
        let existing = line(0, 70);
        fs::write(dir.path().join("app.log"), &existing)?;
        let mut config = settings(dir.path(), "app");
        config.max_file_bytes = 100;
        let mut sink = RollingFile::open_at(config, at(0))?;
        let batch = line(1, 10);
        assert!(existing.len() + batch.len() > 100);
        sink.write_batch_at(&batch, at(1))?;
        sink.flush()?;
        let rotated = sink.rotated_files()?;
        assert_eq!(rotated.len(), 1);
        assert_eq!(fs::read(&rotated[0])?, existing);
        assert_eq!(fs::read(sink.active_path())?, batch);
        Ok(())
    }

    /// UTC formatting against known values, clamping, and parsing round trips.
    #[test]
    fn utc_timestamps() {
        let cases = [
            (0, "19700101T000000.000000Z"),
            (951_782_400, "20000229T000000.000000Z"),
            (1_732_400_000, "20241123T221320.000000Z"),
            (4_107_542_400, "21000301T000000.000000Z"),
            (MAX_UNIX_SECS, "99991231T235959.000000Z"),
        ];
        for (secs, expected) in cases {
            let time = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(format_timestamp(time), expected);
            assert_eq!(parse_timestamp(expected), Some(secs * MICROS_PER_SEC));
        }
        let fraction = UNIX_EPOCH + Duration::from_micros(1_500_001);
        assert_eq!(format_timestamp(fraction), "19700101T000001.500001Z");
        let before = UNIX_EPOCH
            .checked_sub(Duration::from_secs(10))
            .unwrap_or(UNIX_EPOCH);
        assert_eq!(format_timestamp(before), "19700101T000000.000000Z");
        let far = UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECS * 2);
        assert_eq!(format_timestamp(far), "99991231T235959.999999Z");

        for bad in [
            "20230229T000000.000000Z",
            "20241301T000000.000000Z",
            "20241100T000000.000000Z",
            "20241123T240000.000000Z",
            "20241123T226000.000000Z",
            "20241123T221360.000000Z",
            "20241123t221320.000000Z",
            "20241123T221320.000000",
            "2024112 T221320.000000Z",
            "+0241123T221320.000000Z",
            "19691231T235959.999999Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }

        let mut day = 0;
        while day <= MAX_UNIX_SECS / SECS_PER_DAY {
            let (year, month, civil_day) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, civil_day), Some(day));
            day += 13;
        }
    }

    /// Rotated names parse only for their own prefix.
    #[test]
    fn rotated_name_parsing() {
        let stamp = "20241123T221320.000000Z";
        let micros = 1_732_400_000 * MICROS_PER_SEC;
        assert_eq!(
            parse_rotated_name(&format!("a.{stamp}.log"), "a"),
            Some(RotationKey { micros, seq: 0 })
        );
        assert_eq!(
            parse_rotated_name(&format!("a.{stamp}-12.log"), "a"),
            Some(RotationKey { micros, seq: 12 })
        );
        assert_eq!(parse_rotated_name(&format!("a.b.{stamp}.log"), "a"), None);
        assert!(parse_rotated_name(&format!("a.b.{stamp}.log"), "a.b").is_some());
        assert_eq!(parse_rotated_name("a.log", "a"), None);
        let key = RotationKey { micros, seq: 3 };
        assert_eq!(
            parse_rotated_name(&rotated_file_name("p", key), "p"),
            Some(key)
        );
    }
}
