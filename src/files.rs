//! Writing files so that nothing already there is lost: the new bytes go to a file in the
//! same folder that is synced and then renamed over the target. A write that fails part-way
//! (disk full, file size limit) or a process killed mid-write leaves the old file as it was.
//!
//! On Linux the bytes first go to an unnamed file (`O_TMPFILE`), so a process killed while
//! writing leaves nothing behind; it gets a name only for the instant before the rename.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content streamed by `fill`.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let said = |e: io::Error| format!("{}: {e}", path.display());
    let (mut file, named) = open_temp(&dir, name).map_err(said)?;
    let written = fill(&mut file).and_then(|_| file.sync_all());
    let tmp = match (written, named) {
        (Ok(()), Some(tmp)) => tmp,
        (Ok(()), None) => match link_unnamed(&file, &dir, name) {
            Ok(tmp) => tmp,
            Err(e) => return Err(said(e)),
        },
        (Err(e), named) => {
            if let Some(tmp) = named {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(said(e));
        }
    };
    drop(file);
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(said(e));
    }
    // The rename is durable once the folder's entry is (best effort: not every system can
    // open a folder for syncing).
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A fresh name beside the target, unique within this process and across processes.
fn temp_name(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut t = std::ffi::OsString::from(".");
    t.push(name);
    t.push(format!(".{}-{n}.tmp", std::process::id()));
    dir.join(t)
}

/// The file to write into: unnamed where the system allows it (then `None`), else a named
/// temp file created exclusively (never an existing file).
fn open_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(File, Option<PathBuf>)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let unnamed = std::fs::OpenOptions::new().write(true).mode(0o644).custom_flags(libc::O_TMPFILE).open(dir);
        if let Ok(f) = unnamed {
            return Ok((f, None));
        }
    }
    let tmp = temp_name(dir, name);
    let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((f, Some(tmp)))
}

/// Gives an unnamed (`O_TMPFILE`) file a temp name in `dir`, ready to be renamed.
#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, dir: &Path, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let tmp = temp_name(dir, name);
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io::Error::other)?;
    let to = std::ffi::CString::new(tmp.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tmp)
}

#[cfg(not(target_os = "linux"))]
fn link_unnamed(_: &File, _: &Path, _: &std::ffi::OsStr) -> io::Result<PathBuf> {
    Err(io::Error::other("unnamed temp files exist only on Linux"))
}

/// The bytes of a queued write, made on the writer's thread (e.g. a PNG encoding).
type Produce = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

/// Writes files on its own thread, so a UI thread hands over bytes (or the work that makes
/// them) and never waits on the disk. Outcomes come back through
/// [`BackgroundWriter::finished`]; dropping the writer waits for the writes still queued (so a
/// save at exit completes).
pub struct BackgroundWriter {
    tx: Option<crossbeam_channel::Sender<(PathBuf, Produce)>>,
    done: crossbeam_channel::Receiver<(PathBuf, Result<(), String>)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundWriter {
    pub fn new(name: &str) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<(PathBuf, Produce)>();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for (path, produce) in rx {
                    let result = produce().and_then(|bytes| write_atomic(&path, &bytes));
                    let _ = done_tx.send((path, result));
                }
            })
            .ok();
        Self { tx: Some(tx), done, thread }
    }

    /// Queues a write; false when the thread is gone (then nothing is written).
    pub fn write(&self, path: &Path, bytes: Vec<u8>) -> bool {
        self.write_with(path, move || Ok(bytes))
    }

    /// Queues a write whose bytes `produce` makes on the writer's thread.
    pub fn write_with(&self, path: &Path, produce: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static) -> bool {
        self.thread.is_some()
            && self.tx.as_ref().is_some_and(|tx| tx.send((path.to_path_buf(), Box::new(produce))).is_ok())
    }

    /// Writes finished since the last call, with how each ended.
    pub fn finished(&self) -> Vec<(PathBuf, Result<(), String>)> {
        self.done.try_iter().collect()
    }

    /// Errors of finished writes, one line each (successes are dropped).
    pub fn errors(&self) -> Vec<String> {
        self.finished().into_iter().filter_map(|(_, r)| r.err()).collect()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("unclip-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_replaces_the_file_and_leaves_nothing_else() {
        let d = scratch("replace");
        let p = d.join("out.png");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new bytes").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new bytes");
        assert_eq!(listing(&d), vec!["out.png"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_write_that_fails_part_way_keeps_the_old_file_byte_for_byte() {
        let d = scratch("fail");
        let p = d.join("out.png");
        write_atomic(&p, b"the previous picture").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half of a new pic")?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"))
        })
        .unwrap_err();
        assert!(err.contains("no space left"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"the previous picture");
        assert_eq!(listing(&d), vec!["out.png"], "no temp file is left behind");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_target_that_is_a_folder_gets_an_error_and_no_temp_file() {
        let d = scratch("folder");
        let p = d.join("settings.json");
        std::fs::create_dir_all(&p).unwrap();
        let err = write_atomic(&p, b"{}").unwrap_err();
        assert!(err.contains("settings.json"), "{err}");
        assert!(p.is_dir(), "the folder is untouched");
        assert_eq!(listing(&d), vec!["settings.json"], "no temp file is left behind");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_save_made_on_the_writer_thread_reports_how_it_ended_and_a_failed_one_keeps_the_old_file() {
        let d = scratch("write-with");
        let path = d.join("picture.png");
        std::fs::write(&path, b"old").unwrap();
        let w = BackgroundWriter::new("test-writer");
        assert!(w.write_with(&path, || Err("encoding failed".into())));
        assert!(w.write_with(&d.join("other.png"), || Ok(b"new".to_vec())));
        let mut done = Vec::new();
        while done.len() < 2 {
            done.extend(w.finished());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(done[0], (path.clone(), Err("encoding failed".to_string())));
        assert_eq!(done[1], (d.join("other.png"), Ok(())));
        assert_eq!(std::fs::read(&path).unwrap(), b"old", "a failed save leaves the old file");
        assert_eq!(listing(&d), vec!["other.png".to_string(), "picture.png".to_string()], "no temp file left");
        std::fs::remove_dir_all(&d).ok();
    }
}
