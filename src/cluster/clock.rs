//! Clock faults through libfaketime: the node is started with libfaketime preloaded and a
//! per-node offset file that the nemesis rewrites live. Whether that can work depends on the
//! binary: Go programs and static binaries read the clock without libc, so libfaketime cannot
//! touch them; we detect that instead of pretending.

use std::path::{Path, PathBuf};

use super::descriptor::ClockMode;
use super::error::ClusterError;

pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Whether clock faults can be injected into a system's nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockSupport {
    Faketime,
    /// Why not, in words for the user.
    Unsupported(String),
}

impl ClockSupport {
    pub fn is_supported(&self) -> bool {
        matches!(self, ClockSupport::Faketime)
    }
}

/// What the ELF file says about how the program reads the clock.
#[derive(Debug, PartialEq, Eq)]
pub enum BinaryKind {
    DynamicLibc,
    Static,
    Go,
    NotElf,
}

/// Inspects an executable: Go build info marks a Go program; no PT_INTERP marks a static one.
pub fn classify(bytes: &[u8]) -> BinaryKind {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return BinaryKind::NotElf;
    }
    if contains(bytes, b"\xff Go buildinf:") {
        return BinaryKind::Go;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > bytes.len() {
            break;
        }
        if u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) == 3 {
            return BinaryKind::DynamicLibc; // PT_INTERP
        }
    }
    BinaryKind::Static
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Decides clock support for a descriptor's mode and binary.
pub fn support_for(mode: ClockMode, binary: &Path) -> ClockSupport {
    if mode == ClockMode::Unsupported {
        return ClockSupport::Unsupported(
            "the system descriptor says `clock = \"unsupported\"`".into(),
        );
    }
    if !Path::new(LIBFAKETIME).is_file() {
        return ClockSupport::Unsupported(format!(
            "{LIBFAKETIME} is missing; apt-get install libfaketime"
        ));
    }
    if mode == ClockMode::Faketime {
        return ClockSupport::Faketime;
    }
    let bytes = match std::fs::read(binary) {
        Ok(b) => b,
        Err(e) => {
            return ClockSupport::Unsupported(format!("cannot read {}: {e}", binary.display()));
        }
    };
    match classify(&bytes) {
        BinaryKind::DynamicLibc => ClockSupport::Faketime,
        BinaryKind::Go => ClockSupport::Unsupported(format!(
            "{} is a Go program, which reads the clock without libc, so libfaketime cannot move it",
            binary.display()
        )),
        BinaryKind::Static => ClockSupport::Unsupported(format!(
            "{} is statically linked, so libfaketime cannot be preloaded into it",
            binary.display()
        )),
        BinaryKind::NotElf => ClockSupport::Unsupported(format!(
            "{} is not an ELF executable (a script?); set `clock = \"faketime\"` in the \
             descriptor if its interpreter honours LD_PRELOAD",
            binary.display()
        )),
    }
}

/// libfaketime's relative-offset syntax: seconds with a sign, e.g. `+1.500` or `-0.250`.
pub fn offset_text(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let a = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}\n", a / 1000, a % 1000)
}

/// The per-node offset file.
pub fn offset_file(node_dir: &Path) -> PathBuf {
    node_dir.join("faketime")
}

/// Rewrites the offset atomically (the node re-reads it on every wall-clock read).
pub fn write_offset(path: &Path, offset_ms: i64) -> Result<(), ClusterError> {
    write_atomically(path, &offset_text(offset_ms))
}

/// Writes `text` to a temporary file and renames it over `path`, so a node re-reading the
/// file never sees half of it.
fn write_atomically(path: &Path, text: &str) -> Result<(), ClusterError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| ClusterError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ClusterError::io(path, e))
}

/// The per-node protocol-clock file (read by nodes whose descriptor names `clock_file_env`).
pub fn protocol_file(node_dir: &Path) -> PathBuf {
    node_dir.join("protocol-clock")
}

/// The protocol-clock file's line: `OFFSET_MS RATE` (the node kit's `clock::parse_setting`).
pub fn protocol_text(offset_ms: i64, rate: f64) -> String {
    format!("{offset_ms} {rate}\n")
}

/// Rewrites the protocol clock atomically (the node re-reads the file every few ms).
pub fn write_protocol(path: &Path, offset_ms: i64, rate: f64) -> Result<(), ClusterError> {
    write_atomically(path, &protocol_text(offset_ms, rate))
}

/// Environment that preloads libfaketime reading `file` live.
pub fn env(file: &Path, fake_monotonic: bool) -> Vec<(String, String)> {
    let mut v = vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
        // Re-read the file on every call so a rewrite takes effect at once.
        ("FAKETIME_NO_CACHE".into(), "1".into()),
    ];
    if !fake_monotonic {
        // Like Jepsen's clock nemesis: move the wall clock, not the monotonic one.
        v.push(("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_text_format() {
        assert_eq!(offset_text(0), "+0.000\n");
        assert_eq!(offset_text(1500), "+1.500\n");
        assert_eq!(offset_text(-250), "-0.250\n");
        assert_eq!(offset_text(-86_400_001), "-86400.001\n");
    }

    #[test]
    fn protocol_text_is_what_the_kit_parses() {
        for (off, rate) in [(0, 1.0), (-1500, 0.8), (250, 1.25)] {
            let s = faultline_node::clock::parse_setting(&protocol_text(off, rate)).unwrap();
            assert_eq!((s.offset_ms, s.rate), (off, rate));
        }
    }

    #[test]
    fn classifies_real_binaries() {
        // /bin/sh is a dynamically linked C program on every Debian.
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(classify(&sh), BinaryKind::DynamicLibc);
        assert_eq!(classify(b"#!/bin/sh\necho hi\n"), BinaryKind::NotElf);
        // A minimal static ELF header: 64-bit LE, no program headers.
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        assert_eq!(classify(&elf), BinaryKind::Static);
        let mut go = elf.clone();
        go.extend_from_slice(b"\xff Go buildinf:\x08\x02");
        assert_eq!(classify(&go), BinaryKind::Go);
    }
}
