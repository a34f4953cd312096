//! Opening a key of the filesystem store without leaving its root: the
//! kernel resolves the path beneath the root's directory and refuses every
//! symbolic link on the way (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`), so a link planted among the originals never hands
//! out a file elsewhere (docs/security.md, "Sources are only originals").

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Opens `root/key` for reading. A symbolic link anywhere on the way, or a
/// path that would resolve outside `root`, is `NotFound`: for the store
/// there is no such object.
pub(super) fn open(root: &Path, key: &str) -> std::io::Result<File> {
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    // NONBLOCK: opening a FIFO planted among the files must not wait for a
    // writer (a blocked thread per read); callers refuse what is not a
    // regular file. Reads of regular files ignore the flag.
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    match rustix::fs::openat2(&dir, key, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(File::from(fd)),
        // ELOOP: a symbolic link; EXDEV: a path that leaves the root.
        Err(Errno::LOOP | Errno::XDEV) => Err(Error::new(
            ErrorKind::NotFound,
            format!("{key} leaves the store's directory or passes a symbolic link"),
        )),
        // A kernel older than 5.6 (or a seccomp profile that hides
        // openat2): refuse symbolic links component by component instead.
        Err(Errno::NOSYS) => open_without_openat2(root, key),
        Err(e) => Err(e.into()),
    }
}

/// The same refusal without `openat2`: no component may be a symbolic link
/// (checked with `lstat` before the open, and the file itself opened with
/// `O_NOFOLLOW`).
fn open_without_openat2(root: &Path, key: &str) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        path.push(part);
        if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(Error::new(ErrorKind::NotFound, format!("{key} passes a symbolic link")));
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("inner")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("canary"), b"secret").unwrap();
        std::fs::write(root.join("inner/real.jpg"), b"jpeg").unwrap();
        std::os::unix::fs::symlink(outside.join("canary"), root.join("file-link.jpg")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dir-link")).unwrap();
        std::os::unix::fs::symlink("inner/real.jpg", root.join("inside-link.jpg")).unwrap();
        assert!(open(&root, "inner/real.jpg").is_ok());
        for key in ["file-link.jpg", "dir-link/canary", "inside-link.jpg"] {
            for opened in [open(&root, key), open_without_openat2(&root, key)] {
                let e = opened.expect_err(key);
                assert_eq!(e.kind(), ErrorKind::NotFound, "{key}: {e}");
            }
        }
    }

    #[test]
    fn a_fifo_is_opened_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Without O_NONBLOCK both opens block forever (no writer ever comes).
        for opened in [
            open(dir.path(), "pipe.yaml"),
            open_without_openat2(dir.path(), "pipe.yaml"),
        ] {
            let file = opened.unwrap();
            assert!(
                !file.metadata().unwrap().is_file(),
                "callers see it is not a regular file"
            );
        }
    }
}
