//! The disk spool of a network sink: an append-only, checksummed, bounded log of parcels
//! (encoded records with their ids) that the sink could not ship yet, replayed in order after
//! the backend recovers and after a restart.
//!
//! Layout: one directory per sink holding numbered segment files (`00000000000000000001.seg`,
//! …), a `cursor` file (the position up to which the backend accepted everything) and a `lock`
//! file (one process per spool). A frame is `"SBS1" | payload length (u32 LE) | CRC-32 of the
//! payload (u32 LE) | payload`; the payload is `nonce (u64) | count (u32)` then per record
//! `sequence (u64) | flags (u8, bit 0 = audit) | length (u32) | the JSON line`.
//!
//! Recovery rules: on open, the last segment is scanned and a torn tail (a frame cut by a crash
//! or a failed write) is truncated and counted; while replaying, a frame with a bad magic,
//! length or checksum is counted and skipped (the reader resynchronises on the next valid
//! frame); segments entirely before the cursor are deleted. Appends are written straight to
//! the file (no user-space buffer), so a SIGKILL loses nothing that was appended; `fsync`
//! runs every `fsync_interval` and on every flush, so a power loss loses at most one interval.
//! A failed write truncates the partial frame and makes the spool refuse appends for a second
//! (the caller falls back to memory and counts what it cannot hold).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::shipper::Parcel;

const MAGIC: [u8; 4] = *b"SBS1";
const HEADER: u64 = 12;
/// Largest payload accepted when reading (a frame holds one batch).
const MAX_PAYLOAD: u32 = 256 << 20;
/// How long appends are refused after a write error.
const WRITE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Settings of one sink's spool (validated configuration).
#[derive(Debug, Clone)]
pub(crate) struct SpoolSettings {
    pub(crate) directory: PathBuf,
    /// Largest total size of the segment files.
    pub(crate) max_bytes: u64,
    /// Of `max_bytes`, the part only audit-class records may fill.
    pub(crate) audit_reserve_bytes: u64,
    pub(crate) fsync_interval: Duration,
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    segment: u64,
    offset: u64,
}

/// Why an append was refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The size bound (or, for non-audit records, the bound less the audit reserve).
    Full,
    /// A recent write error; appends resume after a pause.
    Failing,
    /// This append's write failed (disk full, I/O error); the partial frame was removed.
    Error,
}

pub(crate) struct Spool {
    settings: SpoolSettings,
    segment_bytes: u64,
    _lock: File,
    /// Segment ids and lengths, oldest first; the last one takes appends.
    segments: VecDeque<(u64, u64)>,
    writer: Option<File>,
    reader: Option<(u64, File)>,
    /// Next frame to read.
    read: Pos,
    /// Everything before this was accepted by the backend.
    acked: Pos,
    cursor_dirty: bool,
    unsynced: bool,
    last_sync: Instant,
    failing_until: Option<Instant>,
    /// Frames skipped as corrupt (bad magic, length, checksum or content), torn tails
    /// included.
    pub(crate) corrupt_frames: u64,
    /// Torn tails truncated on open.
    pub(crate) torn_tails: u64,
    /// Appends that failed (disk full, I/O errors).
    pub(crate) write_errors: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("directory", &self.settings.directory)
            .field("bytes", &self.bytes())
            .field("read", &self.read)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The frame starting at `at` in `bytes`, if it is a valid one: (payload range, end).
fn frame_at(bytes: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let header = bytes.get(at..at + HEADER as usize)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let start = at + HEADER as usize;
    let end = start.checked_add(len as usize)?;
    let payload = bytes.get(start..end)?;
    (crc32fast::hash(payload) == crc && decode(payload).is_some()).then_some((start..end, end))
}

/// The first valid frame at or after `from`.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + HEADER as usize <= bytes.len() {
        let next = bytes[at..].windows(4).position(|w| w == MAGIC)? + at;
        if frame_at(bytes, next).is_some() {
            return Some(next);
        }
        at = next + 1;
    }
    None
}

/// Frame bytes of a parcel.
pub(crate) fn encode(parcel: &Parcel) -> Vec<u8> {
    let mut payload = Vec::with_capacity(parcel.data_len() + 13 * parcel.len() + 12);
    payload.extend_from_slice(&parcel.nonce.to_le_bytes());
    payload.extend_from_slice(&(parcel.len() as u32).to_le_bytes());
    for i in 0..parcel.len() {
        let line = parcel.line(i);
        payload.extend_from_slice(&parcel.seqs[i].to_le_bytes());
        payload.push(u8::from(parcel.audit[i]));
        payload.extend_from_slice(&(line.len() as u32).to_le_bytes());
        payload.extend_from_slice(line);
    }
    let mut frame = Vec::with_capacity(payload.len() + HEADER as usize);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// The parcel in a payload; `None` if its structure is inconsistent.
fn decode(payload: &[u8]) -> Option<Parcel> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = payload.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let mut at = 0;
    let nonce = u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
    let count = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
    // Each record needs at least 13 bytes: a count larger than that is corrupt.
    if count > payload.len() / 13 {
        return None;
    }
    let mut parcel = Parcel::new(nonce);
    for _ in 0..count {
        let seq = u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
        let flags = take(&mut at, 1)?[0];
        let len = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
        parcel.push(seq, flags & 1 == 1, take(&mut at, len)?);
    }
    (at == payload.len()).then_some(parcel)
}

impl Spool {
    /// Opens (or creates) the spool: takes its lock, reads the cursor, deletes consumed
    /// segments and truncates a torn tail.
    pub(crate) fn open(settings: SpoolSettings) -> io::Result<Spool> {
        let dir = settings.directory.clone();
        fs::create_dir_all(&dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        if lock.try_lock().is_err() {
            return Err(io::Error::other(
                "the spool directory is in use by another process",
            ));
        }
        let mut ids: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut spool = Spool {
            segment_bytes: (settings.max_bytes / 8).clamp(64 << 10, 64 << 20),
            settings,
            _lock: lock,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            read: Pos {
                segment: 0,
                offset: 0,
            },
            acked: Pos {
                segment: 0,
                offset: 0,
            },
            cursor_dirty: false,
            unsynced: false,
            last_sync: Instant::now(),
            failing_until: None,
            corrupt_frames: 0,
            torn_tails: 0,
            write_errors: 0,
        };
        let cursor = spool.read_cursor(ids.first().copied().unwrap_or(0));
        for id in ids {
            let path = segment_path(&dir, id);
            if id < cursor.segment {
                fs::remove_file(&path)?;
                continue;
            }
            spool.segments.push_back((id, fs::metadata(&path)?.len()));
        }
        spool.acked = match spool.segments.front() {
            Some(&(first, _)) if first > cursor.segment => Pos {
                segment: first,
                offset: 0,
            },
            _ => cursor,
        };
        spool.read = spool.acked;
        if let Some(&(last, len)) = spool.segments.back() {
            let path = segment_path(&dir, last);
            let bytes = fs::read(&path)?;
            let mut at = if last == spool.acked.segment {
                usize::try_from(spool.acked.offset).unwrap_or(usize::MAX)
            } else {
                0
            };
            let mut good = at.min(bytes.len());
            while at < bytes.len() {
                match frame_at(&bytes, at) {
                    Some((_, end)) => {
                        good = end;
                        at = end;
                    }
                    None => match resync(&bytes, at + 1) {
                        Some(next) => at = next,
                        None => break,
                    },
                }
            }
            if (good as u64) < len {
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(good as u64)?;
                spool.torn_tails += 1;
                spool.corrupt_frames += 1;
                if let Some(back) = spool.segments.back_mut() {
                    back.1 = good as u64;
                }
            }
            spool.writer = Some(OpenOptions::new().append(true).open(&path)?);
        }
        Ok(spool)
    }

    /// The cursor file's position; the start of the first segment if it is missing or
    /// corrupt (a corrupt cursor is counted: its frames will be replayed again).
    fn read_cursor(&mut self, first: u64) -> Pos {
        let start = Pos {
            segment: first,
            offset: 0,
        };
        let Ok(bytes) = fs::read(self.settings.directory.join("cursor")) else {
            return start;
        };
        if bytes.len() != 20 || crc32fast::hash(&bytes[..16]).to_le_bytes() != bytes[16..] {
            self.corrupt_frames += 1;
            return start;
        }
        Pos {
            segment: u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
            offset: u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()),
        }
    }

    /// Total size of the segment files.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.1).sum()
    }

    fn end(&self) -> Pos {
        self.segments
            .back()
            .map_or(self.acked, |&(segment, offset)| Pos { segment, offset })
    }

    /// Whether some appended record is not yet accepted by the backend.
    pub(crate) fn pending(&self) -> bool {
        self.acked < self.end()
    }

    /// Whether a frame is waiting to be read.
    pub(crate) fn readable(&self) -> bool {
        self.read < self.end()
    }

    /// Appends a parcel, within the bound (less the audit reserve unless `audit`).
    pub(crate) fn append(&mut self, parcel: &Parcel, audit: bool) -> Result<(), Refusal> {
        let now = Instant::now();
        if self.failing_until.is_some_and(|t| now < t) {
            return Err(Refusal::Failing);
        }
        let frame = encode(parcel);
        let limit = if audit {
            self.settings.max_bytes
        } else {
            self.settings
                .max_bytes
                .saturating_sub(self.settings.audit_reserve_bytes)
        };
        if self.bytes() + frame.len() as u64 > limit {
            return Err(Refusal::Full);
        }
        let tail = self.segments.back().copied();
        let rotate = match tail {
            None => true,
            Some((_, len)) => len > 0 && len + frame.len() as u64 > self.segment_bytes,
        };
        // A new segment numbers after the last one (or after the cursor's, so the next open
        // does not take it for consumed).
        let next = tail.map_or(self.acked.segment + 1, |t| t.0 + 1);
        if rotate && let Err(_) = self.rotate(next) {
            return Err(self.write_failed(now, None));
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.write_failed(now, None));
        };
        let before = self.segments.back().map_or(0, |s| s.1);
        // Tests tear the write here: half the frame reaches the file, then the disk is full.
        #[cfg(feature = "fail-points")]
        let torn = fail::eval("stockbot-spool-write", |_| ()).is_some();
        #[cfg(not(feature = "fail-points"))]
        let torn = false;
        let written = if torn {
            writer
                .write_all(&frame[..frame.len() / 2])
                .and(Err(std::io::Error::from_raw_os_error(28)))
        } else {
            writer.write_all(&frame)
        };
        if written.is_err() {
            return Err(self.write_failed(now, Some(before)));
        }
        if let Some(back) = self.segments.back_mut() {
            back.1 += frame.len() as u64;
        }
        self.unsynced = true;
        Ok(())
    }

    fn rotate(&mut self, id: u64) -> io::Result<()> {
        if let Some(old) = &self.writer {
            old.sync_data()?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.settings.directory, id))?;
        self.writer = Some(file);
        self.segments.push_back((id, 0));
        if self.segments.len() == 1 {
            self.acked = Pos {
                segment: id,
                offset: 0,
            };
            self.read = self.acked;
        }
        Ok(())
    }

    /// Counts a failed write, removes a partial frame, and pauses appends.
    fn write_failed(&mut self, now: Instant, truncate_to: Option<u64>) -> Refusal {
        self.write_errors += 1;
        self.failing_until = Some(now + WRITE_ERROR_PAUSE);
        if let (Some(len), Some(w)) = (truncate_to, &self.writer) {
            let _ = w.set_len(len);
        }
        Refusal::Error
    }

    /// The next frame's parcel and the position after it; corrupt frames are counted and
    /// skipped.
    pub(crate) fn read_next(&mut self) -> Option<(Parcel, Pos)> {
        loop {
            if !self.readable() {
                return None;
            }
            let seg_len = self
                .segments
                .iter()
                .find(|s| s.0 == self.read.segment)
                .map(|s| s.1);
            let Some(seg_len) = seg_len.filter(|&l| self.read.offset < l) else {
                // At the end of a segment (or in one that is gone): go to the next one.
                let next = self
                    .segments
                    .iter()
                    .find(|s| s.0 > self.read.segment)
                    .map(|s| s.0)?;
                self.read = Pos {
                    segment: next,
                    offset: 0,
                };
                continue;
            };
            match self.read_frame(self.read, seg_len) {
                Ok(Some((parcel, end))) => {
                    self.read = end;
                    return Some((parcel, end));
                }
                Ok(None) => {
                    self.corrupt_frames += 1;
                    let next = self.resync_from(self.read, seg_len).unwrap_or(seg_len);
                    self.read.offset = next;
                }
                // An unreadable segment: skip it whole.
                Err(_) => {
                    self.corrupt_frames += 1;
                    self.read.offset = seg_len;
                }
            }
        }
    }

    fn segment_file(&mut self, segment: u64) -> io::Result<&File> {
        if self.reader.as_ref().is_none_or(|r| r.0 != segment) {
            let file = File::open(segment_path(&self.settings.directory, segment))?;
            self.reader = Some((segment, file));
        }
        match &self.reader {
            Some((_, f)) => Ok(f),
            None => Err(io::Error::other("no reader")),
        }
    }

    fn read_frame(&mut self, at: Pos, seg_len: u64) -> io::Result<Option<(Parcel, Pos)>> {
        let file = self.segment_file(at.segment)?;
        let mut header = [0u8; HEADER as usize];
        if at.offset + HEADER > seg_len {
            return Ok(None);
        }
        file.read_exact_at(&mut header, at.offset)?;
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if header[..4] != MAGIC
            || len > MAX_PAYLOAD
            || at.offset + HEADER + u64::from(len) > seg_len
        {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        file.read_exact_at(&mut payload, at.offset + HEADER)?;
        let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        Ok(decode(&payload).map(|p| {
            (
                p,
                Pos {
                    segment: at.segment,
                    offset: at.offset + HEADER + u64::from(len),
                },
            )
        }))
    }

    /// Offset of the next valid frame after a corrupt one at `at`.
    fn resync_from(&mut self, at: Pos, seg_len: u64) -> Option<u64> {
        let file = self.segment_file(at.segment).ok()?;
        let mut rest = vec![0u8; usize::try_from(seg_len - at.offset).ok()?];
        file.read_exact_at(&mut rest, at.offset).ok()?;
        resync(&rest, 1).map(|i| at.offset + i as u64)
    }

    /// Everything before `end` was accepted: move the cursor, delete consumed segments.
    pub(crate) fn ack(&mut self, end: Pos) {
        self.acked = self.acked.max(end);
        self.cursor_dirty = true;
        while self.segments.len() > 1 {
            let (id, len) = self.segments[0];
            if self.acked.segment > id || (self.acked.segment == id && self.acked.offset >= len) {
                let _ = fs::remove_file(segment_path(&self.settings.directory, id));
                self.segments.pop_front();
                if self.reader.as_ref().is_some_and(|r| r.0 == id) {
                    self.reader = None;
                }
                let next = self.segments[0].0;
                if self.acked.segment <= id {
                    self.acked = Pos {
                        segment: next,
                        offset: 0,
                    };
                }
                if self.read.segment <= id {
                    self.read = Pos {
                        segment: next,
                        offset: 0,
                    };
                }
            } else {
                break;
            }
        }
        // Fully drained: empty the last segment too, so the spool does not grow forever.
        if let Some(&(id, len)) = self.segments.back()
            && self.segments.len() == 1
            && len > 0
            && self.acked.segment == id
            && self.acked.offset >= len
            && self.writer.as_ref().is_some_and(|w| w.set_len(0).is_ok())
        {
            self.segments[0].1 = 0;
            self.acked = Pos {
                segment: id,
                offset: 0,
            };
            self.read = self.acked;
        }
    }

    /// Whether the fsync interval has passed since the last sync.
    pub(crate) fn sync_due(&self, now: Instant) -> bool {
        (self.unsynced || self.cursor_dirty)
            && now.duration_since(self.last_sync) >= self.settings.fsync_interval
    }

    pub(crate) fn fsync_interval(&self) -> Duration {
        self.settings.fsync_interval
    }

    /// fsyncs appended frames and persists the cursor.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.last_sync = Instant::now();
        if self.unsynced
            && let Some(w) = &self.writer
        {
            w.sync_data()?;
            self.unsynced = false;
        }
        if self.cursor_dirty {
            let mut bytes = Vec::with_capacity(20);
            bytes.extend_from_slice(&self.acked.segment.to_le_bytes());
            bytes.extend_from_slice(&self.acked.offset.to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            let dir = &self.settings.directory;
            let tmp = dir.join("cursor.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            fs::rename(&tmp, dir.join("cursor"))?;
            self.cursor_dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, max_bytes: u64) -> SpoolSettings {
        SpoolSettings {
            directory: dir.to_path_buf(),
            max_bytes,
            audit_reserve_bytes: max_bytes / 4,
            fsync_interval: Duration::from_millis(10),
        }
    }

    fn parcel(nonce: u64, from: u64, n: u64) -> Parcel {
        let mut p = Parcel::new(nonce);
        for seq in from..from + n {
            p.push(seq, seq % 2 == 0, format!("{{\"n\":{seq}}}").as_bytes());
        }
        p
    }

    fn drain(spool: &mut Spool) -> Vec<u64> {
        let mut seen = Vec::new();
        while let Some((p, end)) = spool.read_next() {
            seen.extend(&p.seqs);
            spool.ack(end);
        }
        seen
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stockbot-spool-{name}-{}-{}",
            std::process::id(),
            crate::collect::random_u64()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn frames_round_trip_in_order_across_segments_and_restarts() {
        let dir = tmp("order");
        {
            let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
            for i in 0..1000 {
                spool.append(&parcel(7, i * 10, 10), false).unwrap();
            }
            assert!(spool.segments.len() > 1, "128 KiB segments: several");
            let (p, end) = spool.read_next().unwrap();
            assert_eq!(p.seqs, (0..10).collect::<Vec<_>>());
            assert_eq!(p.line(3), b"{\"n\":3}");
            assert!(!p.audit[3] && p.audit[4]);
            spool.ack(end);
            spool.sync().unwrap();
        }
        // A restart replays from the cursor: the first parcel is not seen again.
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        let seen = drain(&mut spool);
        assert_eq!(seen, (10..10_000).collect::<Vec<_>>());
        assert!(!spool.pending());
        assert_eq!(spool.bytes(), 0, "drained segments are deleted or emptied");
        assert_eq!((spool.corrupt_frames, spool.torn_tails), (0, 0));
        drop(spool);
        // Unacknowledged frames are replayed after a restart (at-least-once).
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        spool.append(&parcel(8, 0, 3), false).unwrap();
        let _ = spool.read_next().unwrap();
        drop(spool);
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        assert_eq!(drain(&mut spool), [0, 1, 2]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_truncated_and_counted_and_appends_continue() {
        let dir = tmp("torn");
        {
            let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
            spool.append(&parcel(1, 0, 5), false).unwrap();
            spool.append(&parcel(1, 5, 5), false).unwrap();
        }
        let seg = segment_path(&dir, 1);
        let len = fs::metadata(&seg).unwrap().len();
        // A crash in the middle of the second frame.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        assert_eq!((spool.torn_tails, spool.corrupt_frames), (1, 1));
        spool.append(&parcel(1, 100, 2), false).unwrap();
        assert_eq!(drain(&mut spool), [0, 1, 2, 3, 4, 100, 101]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_frame_is_counted_and_skipped_and_the_rest_replayed() {
        let dir = tmp("corrupt");
        {
            let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
            for i in 0..3 {
                spool.append(&parcel(1, i * 10, 3), false).unwrap();
            }
            // A fourth segment file, so the damaged one is not the tail scanned on open.
            spool.rotate(2).unwrap();
            spool.append(&parcel(1, 30, 3), false).unwrap();
        }
        let seg = segment_path(&dir, 1);
        let mut bytes = fs::read(&seg).unwrap();
        // Flip a byte inside the second frame's payload (bad checksum).
        let first = frame_at(&bytes, 0).unwrap().1;
        bytes[first + HEADER as usize + 20] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        assert_eq!(drain(&mut spool), [0, 1, 2, 20, 21, 22, 30, 31, 32]);
        assert_eq!(spool.corrupt_frames, 1);
        // Garbage between frames (a bad magic) is skipped too.
        drop(spool);
        fs::remove_dir_all(&dir).unwrap();
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        spool.append(&parcel(1, 0, 1), false).unwrap();
        spool.rotate(2).unwrap();
        drop(spool);
        let mut bytes = fs::read(&seg).unwrap();
        let good = bytes.clone();
        bytes.splice(0..0, *b"garbage!");
        bytes.extend_from_slice(&good);
        fs::write(&seg, &bytes).unwrap();
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        assert_eq!(drain(&mut spool), [0, 0]);
        assert_eq!(spool.corrupt_frames, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_bound_holds_with_a_reserve_for_audit_records_and_a_second_process_is_refused() {
        let dir = tmp("bound");
        let mut spool = Spool::open(settings(&dir, 4096)).unwrap();
        let mut normal = 0;
        while spool.append(&parcel(1, normal, 1), false).is_ok() {
            normal += 1;
        }
        assert!(matches!(
            spool.append(&parcel(1, 0, 1), false),
            Err(Refusal::Full)
        ));
        assert!(spool.bytes() <= 4096 - 1024);
        let mut audit = 0;
        while spool.append(&parcel(1, 0, 1), true).is_ok() {
            audit += 1;
        }
        assert!(audit > 0, "the audit reserve takes more");
        assert!(spool.bytes() <= 4096);
        let err = Spool::open(settings(&dir, 4096)).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        drop(spool);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_cursor_replays_from_the_start_and_is_counted() {
        let dir = tmp("cursor");
        {
            let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
            spool.append(&parcel(1, 0, 2), false).unwrap();
            spool.append(&parcel(1, 2, 2), false).unwrap();
            let (_, end) = spool.read_next().unwrap();
            spool.ack(end);
            spool.sync().unwrap();
        }
        fs::write(dir.join("cursor"), b"not a cursor").unwrap();
        let mut spool = Spool::open(settings(&dir, 1 << 20)).unwrap();
        assert_eq!(spool.corrupt_frames, 1);
        assert_eq!(drain(&mut spool), [0, 1, 2, 3]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
