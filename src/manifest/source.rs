//! Reads the input stream: the only I/O in the library, kept here so that `main` stays thin.
//!
//! The whole stream is held in memory because nothing may reach stdout before the run has
//! succeeded. A regular file (a path argument, or stdin redirected from a file) is memory-mapped
//! instead of read: copying 100 MB into fresh anonymous memory costs one page fault per 4 KiB,
//! which on a VM is most of the run time, while a mapping of cached file pages is faulted in
//! 64 KiB at a time and never copied. Pipes (how Helm calls a post-renderer) are read.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::AsFd;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

/// Streams at least this large are read by several threads, each over a run of documents; a
/// file that large is not populated up front, the reading threads fault its pages in.
pub const LARGE_STREAM_BYTES: usize = 8 << 20;

/// The largest input accepted, so that an endless or huge stdin cannot exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Files smaller than this are read: for them a mapping costs more than the copy it saves.
const MAP_THRESHOLD: u64 = 64 << 10;

/// Bytes reserved (not touched) for a piped stream: an umbrella render fits without regrowing,
/// which would copy the stream and fault in fresh pages at every doubling.
const PIPE_RESERVE: usize = 4 << 20;

/// The bytes of one input.
#[derive(Debug)]
pub enum Source {
    Mapped(Mmap),
    Read(Vec<u8>),
}

/// Why an input could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("input is larger than the limit of {} MiB", MAX_INPUT_BYTES >> 20)]
    TooLarge,
}

impl Source {
    /// Reads (or maps) the file at `path`.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        Self::from_file(File::open(path)?)
    }

    /// Reads standard input, mapping it when it is redirected from a regular file.
    pub fn stdin() -> Result<Self, SourceError> {
        let stdin = io::stdin();
        let is_file = stdin.as_fd().try_clone_to_owned().map(File::from);
        match is_file {
            Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => Self::from_file(file),
            _ => read_limited(stdin.lock(), PIPE_RESERVE).map(Source::Read),
        }
    }

    fn from_file(mut file: File) -> Result<Self, SourceError> {
        let meta = file.metadata()?;
        // Stdin may have been read partly by the shell before us: start where it stands.
        let start = file.stream_position()?;
        let len = meta.len().saturating_sub(start);
        if !meta.is_file() || len < MAP_THRESHOLD {
            // Sized from the metadata (plus one byte to see the end), so a spec file is one read
            // instead of a doubling series of them.
            let reserve = if meta.is_file() { len as usize + 1 } else { 0 };
            return read_limited(file, reserve).map(Source::Read);
        }
        if len > MAX_INPUT_BYTES {
            return Err(SourceError::TooLarge);
        }
        // SAFETY: the mapping is read-only and lives as long as `Source`. If another process
        // truncates the file while we run, reads fault (SIGBUS) rather than return wrong bytes;
        // this is the trade every mmap-reading tool (ripgrep, git) makes for regular files.
        let mut options = MmapOptions::new();
        options.offset(start).len(len as usize);
        // A stream read by one thread is populated: every page is read once anyway, and mapping
        // them all in one system call spares a page-fault exception per 64 KiB (≈ 2 µs each on
        // a VM). A stream large enough to be read by several threads is not: there the faults
        // are taken by the reading threads side by side instead of by one before they start
        // (measured on 88 MB: ~5 % faster).
        if len < LARGE_STREAM_BYTES as u64 {
            options.populate();
        }
        let map = unsafe { options.map(&file)? };
        Ok(Source::Mapped(map))
    }

    /// The input as bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Source::Mapped(map) => map,
            Source::Read(bytes) => bytes,
        }
    }
}

/// Reads everything from `reader`, refusing more than [`MAX_INPUT_BYTES`].
fn read_limited(reader: impl Read, reserve: usize) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::with_capacity(reserve);
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(SourceError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_large_files_and_reads_small_ones() {
        let mut small = tempfile::NamedTempFile::new().unwrap();
        small.write_all(b"a: 1\n").unwrap();
        let source = Source::open(small.path()).unwrap();
        assert!(matches!(source, Source::Read(_)));
        assert_eq!(source.bytes(), b"a: 1\n");

        let text = "k: v\n".repeat(40_000);
        let mut large = tempfile::NamedTempFile::new().unwrap();
        large.write_all(text.as_bytes()).unwrap();
        let source = Source::open(large.path()).unwrap();
        assert!(matches!(source, Source::Mapped(_)));
        assert_eq!(source.bytes(), text.as_bytes());
    }

    #[test]
    fn maps_from_the_current_offset() {
        let text = format!("skip\n{}", "k: v\n".repeat(40_000));
        let mut large = tempfile::NamedTempFile::new().unwrap();
        large.write_all(text.as_bytes()).unwrap();
        let mut file = File::open(large.path()).unwrap();
        file.seek(io::SeekFrom::Start(5)).unwrap();
        let source = Source::from_file(file).unwrap();
        assert_eq!(source.bytes(), &text.as_bytes()[5..]);
    }
}
