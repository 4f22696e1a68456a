//! Confined reads of the files a spec names (`certificates[].file`).
//!
//! The spec may come from someone who must not read the machine that renders it (an Argo CD
//! Application's repository, a merge request rendered in CI). So a file is read only when it is a
//! regular file *inside the file root*, and only up to a size a certificate bundle can have:
//!
//! - The **file root** is the spec file's directory, or the working directory where the spec is
//!   not a file the user wrote in place (kustomize's temporary copy, a KRM `functionConfig`). Only
//!   the operator widens it (`--file-root`, `RUNNER_PATCH_FILE_ROOT`); nothing in the spec can.
//! - Paths are resolved beneath the root by [`cap_std`]: `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS)` on Linux ≥ 5.6, and cap-std's component-by-component walk elsewhere.
//!   `..` and symbolic links may move around inside the root but never out of it, at any
//!   component, and an escape is detected before anything outside is looked up: the refusal is
//!   the same whether or not an outside file exists.
//! - Before opening, the file is `stat`ed beneath the root (an `O_PATH` open: no side effects on
//!   a FIFO or a device): anything but a regular file, or more than [`MAX_FILE_BYTES`], or more
//!   than [`MAX_TOTAL_BYTES`] for all files together, is refused unread. The open itself is
//!   non-blocking, and the opened descriptor is checked again (same file, still regular, not on
//!   procfs/sysfs) before at most its stated size is read: a file that is longer or shorter than
//!   it said (`/proc` entries say 0) is refused.
//! - Messages name the path as written in the spec, never what it resolved to, and never quote
//!   content.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};

/// Largest certificate file read: a CA bundle is tens of kilobytes (Mozilla's whole set is
/// ~220 KB), so 1 MiB leaves room without letting a spec make us hold anything large.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Largest sum of all (distinct) certificate files of one run, and of the certificates all
/// references produce together (`spec::resolve_certificate_files`: a file named for several
/// hosts counts once per host).
pub const MAX_TOTAL_BYTES: u64 = 4 << 20;

/// The environment variable that sets the file root (operator only, like the flag).
pub const FILE_ROOT_ENV: &str = "RUNNER_PATCH_FILE_ROOT";

/// Where the files a spec names may be read from, and what has been read so far.
#[derive(Debug)]
pub struct FileRoot {
    /// The root as the operator (or the default) gave it; named in operator-level errors only.
    root: PathBuf,
    /// The directory the spec's relative paths start from (the spec file's directory).
    base: PathBuf,
    /// Opened on first use: a run without certificate files never touches the root.
    opened: OnceCell<Result<Opened, String>>,
    /// Files read so far by identity (device, inode), so that a file named twice is read once.
    read: RefCell<BTreeMap<(u64, u64), Vec<u8>>>,
}

#[derive(Debug)]
struct Opened {
    dir: Dir,
    /// `base` relative to `root` (`""` when they are the same directory).
    base_in_root: PathBuf,
}

impl FileRoot {
    /// Files relative to `base`, confined to `root` (when `None`: `base` itself).
    pub fn new(root: Option<&Path>, base: &Path) -> Self {
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base.to_path_buf()
        };
        FileRoot {
            root: root.map_or_else(|| base.clone(), Path::to_path_buf),
            base,
            opened: OnceCell::new(),
            read: RefCell::new(BTreeMap::new()),
        }
    }

    fn opened(&self) -> Result<&Opened, String> {
        self.opened
            .get_or_init(|| {
                // The root and the base come from the operator (flags, environment, the path of
                // the spec file): following their symlinks is theirs to decide.
                let root = std::fs::canonicalize(&self.root).map_err(|e| {
                    format!(
                        "the file root {} cannot be opened: {e}",
                        self.root.display()
                    )
                })?;
                let base = std::fs::canonicalize(&self.base).map_err(|e| {
                    format!(
                        "the spec's directory {} cannot be opened: {e}",
                        self.base.display()
                    )
                })?;
                let base_in_root = base
                    .strip_prefix(&root)
                    .map_err(|_| {
                        format!(
                            "the spec's directory {} is not inside the file root {}",
                            self.base.display(),
                            self.root.display()
                        )
                    })?
                    .to_path_buf();
                let dir =
                    Dir::open_ambient_dir(&root, cap_std::ambient_authority()).map_err(|e| {
                        format!(
                            "the file root {} cannot be opened: {e}",
                            self.root.display()
                        )
                    })?;
                Ok(Opened { dir, base_in_root })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The bytes of the file the spec names as `written` (relative to the spec's directory), or
    /// why it is refused. Messages name `written` only.
    pub fn read(&self, written: &str) -> Result<Vec<u8>, String> {
        let shown = format!("{written:?}");
        if written.is_empty() {
            return Err("is empty: name a file relative to the spec file".into());
        }
        let path = Path::new(written);
        if path.has_root() || written.starts_with('/') {
            return Err(format!(
                "{shown} is an absolute path: certificate files are named relative to the spec file and must stay inside its directory (the file root)"
            ));
        }
        let opened = self.opened()?;
        let full = opened.base_in_root.join(path);
        if leaves_lexically(&full) {
            return Err(format!(
                "{shown} leads outside the file root (through `..`)"
            ));
        }
        let not_inside = || {
            format!(
                "{shown} is not a file inside the file root (it does not exist there, or `..` or a symbolic link on the way leads outside it)"
            )
        };
        let meta = opened.dir.metadata(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied if e.raw_os_error().is_some() => {
                format!("{shown} cannot be read: permission denied")
            }
            // Not found, an escape (cap-std's own error), a loop, a file used as a directory:
            // one message, so that nothing tells whether something exists outside the root.
            _ => not_inside(),
        })?;
        if !meta.is_file() {
            return Err(format!(
                "{shown} is {}, not a regular file",
                kind_of(&meta.file_type())
            ));
        }
        let identity = (meta.dev(), meta.ino());
        if let Some(bytes) = self.read.borrow().get(&identity) {
            return Ok(bytes.clone());
        }
        let size = meta.len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{shown} has {size} bytes, more than the {} MiB a certificate file may have",
                MAX_FILE_BYTES >> 20
            ));
        }
        let so_far: u64 = self.read.borrow().values().map(|b| b.len() as u64).sum();
        if so_far + size > MAX_TOTAL_BYTES {
            return Err(format!(
                "{shown}: the certificate files together have more than the {} MiB allowed",
                MAX_TOTAL_BYTES >> 20
            ));
        }
        let mut options = OpenOptions::new();
        options.read(true);
        options.custom_flags(open_flags());
        let file = opened
            .dir
            .open_with(&full, &options)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied if e.raw_os_error().is_some() => {
                    format!("{shown} cannot be read: permission denied")
                }
                _ => not_inside(),
            })?;
        let fmeta = file
            .metadata()
            .map_err(|e| format!("{shown} cannot be read: {}", e.kind()))?;
        if !fmeta.is_file() || (fmeta.dev(), fmeta.ino()) != identity || fmeta.len() != size {
            return Err(format!("{shown} changed while it was being opened"));
        }
        if on_pseudo_filesystem(&file) {
            return Err(format!(
                "{shown} is a /proc or /sys entry, not a regular file"
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{shown} cannot be read: {}", e.kind()))?;
        if bytes.len() as u64 != size {
            // Pseudo-files state a size (0, 4096) that is not their length.
            return Err(format!(
                "{shown} is not a regular file (its length differs from its stated size)"
            ));
        }
        self.read.borrow_mut().insert(identity, bytes.clone());
        Ok(bytes)
    }
}

/// True when `..` components take `path` above its start, counted on the text: such a path is
/// refused before anything is looked up. (Resolution beneath the root catches the rest,
/// symbolic links included.)
pub(crate) fn leaves_lexically(path: &Path) -> bool {
    let mut depth: usize = 0;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

fn kind_of(file_type: &cap_std::fs::FileType) -> &'static str {
    use cap_std::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Flags for opening a certificate file: non-blocking (a FIFO swapped in after the stat does not
/// wait for a writer) and never a controlling terminal.
fn open_flags() -> i32 {
    (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32
}

/// True for files on procfs or sysfs, whose entries claim to be regular files.
#[cfg(target_os = "linux")]
fn on_pseudo_filesystem(file: &cap_std::fs::File) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    rustix::fs::fstatfs(file).is_ok_and(|s| {
        // `f_type`'s integer type differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let kind = s.f_type as i64;
        kind == PROC_SUPER_MAGIC || kind == SYSFS_MAGIC
    })
}

#[cfg(not(target_os = "linux"))]
fn on_pseudo_filesystem(_file: &cap_std::fs::File) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_escapes() {
        assert!(leaves_lexically(Path::new("../a")));
        assert!(leaves_lexically(Path::new("a/../../b")));
        assert!(!leaves_lexically(Path::new("a/../b")));
        assert!(!leaves_lexically(Path::new("./a/./b/..")));
    }

    #[test]
    fn reads_inside_and_refuses_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("app/certs")).unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        std::fs::write(root.join("app/certs/a.crt"), "A").unwrap();
        std::fs::write(root.join("shared/b.crt"), "B").unwrap();
        std::fs::write(tmp.path().join("outside.crt"), "X").unwrap();
        // Spec in app/, root widened to root/: ../shared is fine, ../../outside is not.
        let files = FileRoot::new(Some(&root), &root.join("app"));
        assert_eq!(files.read("certs/a.crt").unwrap(), b"A");
        assert_eq!(files.read("../shared/b.crt").unwrap(), b"B");
        let err = files.read("../../outside.crt").unwrap_err();
        assert!(err.contains("leads outside the file root"), "{err}");
        // Without widening, the spec's directory is the root.
        let narrow = FileRoot::new(None, &root.join("app"));
        assert!(narrow.read("../shared/b.crt").is_err());
        assert_eq!(narrow.read("certs/a.crt").unwrap(), b"A");
    }

    #[test]
    fn a_base_outside_the_root_is_an_operator_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::fs::create_dir_all(tmp.path().join("b")).unwrap();
        std::fs::write(tmp.path().join("b/x.crt"), "x").unwrap();
        let files = FileRoot::new(Some(&tmp.path().join("a")), &tmp.path().join("b"));
        assert!(
            files
                .read("x.crt")
                .unwrap_err()
                .contains("is not inside the file root")
        );
    }
}
