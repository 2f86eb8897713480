//! Write-ahead log: term/vote and entries as length + CRC32 framed JSON records.
//!
//! Records are buffered in memory and reach the file on `sync` (write + fdatasync), which the
//! shell runs before anything that depends on them leaves the node. Recovery replays records in
//! order (an entry at an index the log already holds replaces it and everything after) and
//! truncates a torn or corrupt tail.

use crate::core::{Entry, HardState, Index, Term};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAX_RECORD: usize = 256 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    HardState(HardState),
    Entry(Entry),
    /// The log starts after this snapshot position (written first by a rewrite).
    Base {
        index: Index,
        term: Term,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found on disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    pub hard_state: HardState,
    pub base: Index,
    pub entries: Vec<Entry>,
    pub records: usize,
    /// `(offset, bytes dropped)` when a torn or corrupt tail was cut off.
    pub truncated: Option<(u64, u64)>,
}

pub struct Wal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    size: u64,
}

pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(record).expect("records serialize");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Replays framed records, returning them and the length of the valid prefix.
pub fn decode(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || bytes.len() - pos - 8 < len {
            break;
        }
        let payload = &bytes[pos + 8..pos + 8 + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<Record>(payload) else {
            break;
        };
        records.push(record);
        pos += 8 + len;
    }
    (records, pos)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Wal {
    /// Opens (creating) `dir/wal.log`, replays it and cuts off a torn tail.
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), StorageError> {
        let path = dir.join("wal.log");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let (records, valid) = decode(&bytes);
        let mut rec = Recovered {
            records: records.len(),
            ..Recovered::default()
        };
        if valid < bytes.len() {
            rec.truncated = Some((valid as u64, (bytes.len() - valid) as u64));
            file.set_len(valid as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        for r in records {
            match r {
                Record::HardState(hs) => rec.hard_state = hs,
                Record::Base { index, .. } => {
                    rec.base = index;
                    rec.entries.retain(|e| e.index > index);
                }
                Record::Entry(e) => {
                    if e.index <= rec.base {
                        continue;
                    }
                    let expected = rec.entries.last().map_or(rec.base + 1, |l| l.index + 1);
                    if e.index > expected {
                        return Err(StorageError::Corrupt {
                            path,
                            detail: format!("entry {} follows entry {}", e.index, expected - 1),
                        });
                    }
                    rec.entries.retain(|x| x.index < e.index);
                    rec.entries.push(e);
                }
            }
        }
        let size = file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        Ok((
            Wal {
                path,
                file,
                buf: Vec::new(),
                size,
            },
            rec,
        ))
    }

    pub fn append(&mut self, record: &Record) {
        encode(record, &mut self.buf);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes in the file (written out so far).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hands buffered records to the OS without syncing.
    pub fn write_out(&mut self) -> Result<(), StorageError> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
            self.size += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes buffered records and waits until they are on stable storage.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.write_out()?;
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Replaces the WAL with exactly this state (after a snapshot): temp file, fsync, rename.
    pub fn rewrite(
        &mut self,
        hs: &HardState,
        base: (Index, Term),
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        encode(&Record::HardState(hs.clone()), &mut bytes);
        encode(
            &Record::Base {
                index: base.0,
                term: base.1,
            },
            &mut bytes,
        );
        for e in entries {
            encode(&Record::Entry(e.clone()), &mut bytes);
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(&self.path))?;
        self.file = file;
        self.buf.clear();
        self.size = bytes.len() as u64;
        Ok(())
    }
}

/// Writes a snapshot to a synced temporary file (slow part, may run off the node thread).
pub fn write_snapshot_tmp(
    dir: &Path,
    meta: &crate::core::SnapshotMeta,
    data: &serde_json::Value,
) -> Result<PathBuf, StorageError> {
    let tmp = dir.join(format!("snapshot-{}.tmp", meta.index));
    let body = serde_json::to_vec(&serde_json::json!({"meta": meta, "data": data}))
        .expect("snapshot serializes");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&body).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    Ok(tmp)
}

/// Makes a written snapshot the latest one, `dir/snapshot.json` (atomic rename).
pub fn publish_snapshot(dir: &Path, tmp: &Path) -> Result<(), StorageError> {
    let path = dir.join("snapshot.json");
    std::fs::rename(tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

/// Writes and publishes a snapshot in one go.
pub fn save_snapshot(
    dir: &Path,
    meta: &crate::core::SnapshotMeta,
    data: &serde_json::Value,
) -> Result<(), StorageError> {
    let tmp = write_snapshot_tmp(dir, meta, data)?;
    publish_snapshot(dir, &tmp)
}

pub fn load_snapshot(
    dir: &Path,
) -> Result<Option<(crate::core::SnapshotMeta, serde_json::Value)>, StorageError> {
    let path = dir.join("snapshot.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    #[derive(Deserialize)]
    struct File {
        meta: crate::core::SnapshotMeta,
        data: serde_json::Value,
    }
    let f: File = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(Some((f.meta, f.data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: Index, term: Term) -> Entry {
        Entry::noop(index, term)
    }

    #[test]
    fn replay_overwrites_and_torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, rec) = Wal::open(dir.path()).unwrap();
            assert_eq!(rec, Recovered::default());
            wal.append(&Record::HardState(HardState {
                term: 2,
                vote: Some("n1".into()),
            }));
            for r in [e(1, 1), e(2, 1), e(3, 1), e(2, 2)] {
                wal.append(&Record::Entry(r));
            }
            wal.sync().unwrap();
        }
        // a torn record: header promising more bytes than were written
        let path = dir.path().join("wal.log");
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
        drop(f);
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.hard_state.term, 2);
        assert_eq!(rec.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(rec.truncated, Some((good_len, 9)));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    }

    #[test]
    fn flipped_bit_fails_the_crc_and_rewrite_sets_a_base() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        for r in [e(1, 1), e(2, 1)] {
            wal.append(&Record::Entry(r));
        }
        wal.sync().unwrap();
        let path = dir.path().join("wal.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (mut wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![e(1, 1)]);
        assert!(rec.truncated.is_some());
        wal.rewrite(&HardState::default(), (5, 1), &[e(6, 1)])
            .unwrap();
        wal.append(&Record::Entry(e(7, 2)));
        wal.sync().unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.base, 5);
        assert_eq!(rec.entries, vec![e(6, 1), e(7, 2)]);
    }
}
