//! Write-ahead log: records as `u32 len | u32 crc32 | JSON`, and snapshot files.
//!
//! Records are buffered in memory and reach the file on `sync` (write + fdatasync), which the
//! node loop runs before anything that depends on them leaves the node. Opening replays the
//! valid prefix and truncates a torn or corrupt tail; what the records mean (e.g. an entry
//! at an index already held replaces it) is the replica's business.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

const MAX_RECORD: usize = 256 << 20;

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

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What opening found on disk.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovered<R> {
    pub records: Vec<R>,
    /// `(offset, bytes dropped)` when a torn or corrupt tail was cut off.
    pub truncated: Option<(u64, u64)>,
}

pub struct Wal<R> {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    size: u64,
    _records: PhantomData<fn(R)>,
}

pub fn encode<R: Serialize>(record: &R, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(record).expect("records serialize");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes framed records, returning them and the length of the valid prefix.
pub fn decode<R: DeserializeOwned>(bytes: &[u8]) -> (Vec<R>, usize) {
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
        let Ok(record) = serde_json::from_slice::<R>(payload) else {
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

impl<R: Serialize + DeserializeOwned> Wal<R> {
    /// Opens (creating) `dir/wal.log`, decodes it and cuts off a torn tail.
    pub fn open(dir: &Path) -> Result<(Wal<R>, Recovered<R>), StorageError> {
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
        let mut truncated = None;
        if valid < bytes.len() {
            truncated = Some((valid as u64, (bytes.len() - valid) as u64));
            file.set_len(valid as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let size = file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        let wal = Wal {
            path,
            file,
            buf: Vec::new(),
            size,
            _records: PhantomData,
        };
        Ok((wal, Recovered { records, truncated }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, record: &R) {
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

    /// Replaces the WAL with exactly these records (after a snapshot): temp file, fsync,
    /// rename, directory fsync. Anything buffered is dropped (the records must cover it).
    pub fn rewrite(&mut self, records: &[R]) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        for r in records {
            encode(r, &mut bytes);
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

/// A snapshot on disk: the replica's metadata (an object with `"index"`) and the state
/// machine's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub meta: Value,
    pub data: Value,
}

/// Writes a snapshot to a synced temporary file (the slow part; may run off the node thread).
pub fn write_snapshot_tmp(dir: &Path, snap: &Snapshot) -> Result<PathBuf, StorageError> {
    let index = crate::replica::snapshot_index(&snap.meta);
    let tmp = dir.join(format!("snapshot-{index}.tmp"));
    let body = serde_json::to_vec(&serde_json::json!({"meta": snap.meta, "data": snap.data}))
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
pub fn save_snapshot(dir: &Path, snap: &Snapshot) -> Result<(), StorageError> {
    let tmp = write_snapshot_tmp(dir, snap)?;
    publish_snapshot(dir, &tmp)
}

pub fn load_snapshot(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let path = dir.join("snapshot.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let corrupt = |detail: String| StorageError::Corrupt {
        path: path.clone(),
        detail,
    };
    let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    match (
        v.get_mut("meta").map(Value::take),
        v.get_mut("data").map(Value::take),
    ) {
        (Some(meta), Some(data)) if meta.is_object() => Ok(Some(Snapshot { meta, data })),
        _ => Err(corrupt("expected {\"meta\":{..},\"data\":..}".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Rec(u64, String);

    fn r(i: u64) -> Rec {
        Rec(i, format!("r{i}"))
    }

    #[test]
    fn torn_tail_is_truncated_and_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, rec) = Wal::<Rec>::open(dir.path()).unwrap();
            assert_eq!(
                rec,
                Recovered {
                    records: vec![],
                    truncated: None
                }
            );
            for i in 1..=3 {
                wal.append(&r(i));
            }
            assert!(wal.buffered() > 0 && wal.size() == 0);
            wal.sync().unwrap();
        }
        // a torn record: header promising more bytes than were written
        let path = dir.path().join("wal.log");
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
        drop(f);
        let (_, rec) = Wal::<Rec>::open(dir.path()).unwrap();
        assert_eq!(rec.records, vec![r(1), r(2), r(3)]);
        assert_eq!(rec.truncated, Some((good_len, 9)));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    }

    #[test]
    fn flipped_bit_fails_the_crc_and_rewrite_replaces_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::<Rec>::open(dir.path()).unwrap();
        wal.append(&r(1));
        wal.append(&r(2));
        wal.sync().unwrap();
        let path = dir.path().join("wal.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (mut wal, rec) = Wal::<Rec>::open(dir.path()).unwrap();
        assert_eq!(rec.records, vec![r(1)]);
        assert!(rec.truncated.is_some());
        wal.rewrite(&[r(5), r(6)]).unwrap();
        wal.append(&r(7));
        wal.sync().unwrap();
        let (_, rec) = Wal::<Rec>::open(dir.path()).unwrap();
        assert_eq!(rec.records, vec![r(5), r(6), r(7)]);
    }

    #[test]
    fn snapshots_round_trip_and_garbage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_snapshot(dir.path()).unwrap(), None);
        let snap = Snapshot {
            meta: serde_json::json!({"index": 7, "term": 2}),
            data: serde_json::json!({"k": 1}),
        };
        save_snapshot(dir.path(), &snap).unwrap();
        assert_eq!(load_snapshot(dir.path()).unwrap(), Some(snap));
        std::fs::write(dir.path().join("snapshot.json"), b"[1]").unwrap();
        let err = load_snapshot(dir.path()).unwrap_err().to_string();
        assert!(err.contains("snapshot.json"), "{err}");
    }
}
