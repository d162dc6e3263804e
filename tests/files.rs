//! Saving never destroys what is there: a process killed in the middle of a save leaves the
//! previous file byte for byte, and no temp file beside it. (A write that fails part-way is
//! tested in `src/files.rs`; this one needs a second process to kill.)

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "UNCLIP_TEST_SLOW_SAVE";

#[test]
fn a_save_killed_with_sigkill_leaves_the_old_file_and_no_temp_file() {
    // In the child: start a save that never ends, say so, and wait to be killed.
    if let Ok(path) = std::env::var(CHILD) {
        let _ = unclip::files::write_atomic_with(Path::new(&path), |w| {
            w.write_all(&[1u8; 1 << 16])?;
            println!("writing");
            std::io::stdout().flush()?;
            loop {
                w.write_all(&[2u8; 1 << 16])?;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        return;
    }
    let dir = std::env::temp_dir().join(format!("unclip-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("result.png");
    let old = b"the picture saved before".to_vec();
    std::fs::write(&target, &old).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_save_killed_with_sigkill_leaves_the_old_file_and_no_temp_file", "--nocapture", "--test-threads", "1"])
        .env(CHILD, &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.any(|l| l.map(|l| l.contains("writing")).unwrap_or(false));
    assert!(started, "the child never started writing");
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    assert_eq!(std::fs::read(&target).unwrap(), old, "the old file changed");
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["result.png".to_string()], "files left beside the target");
    std::fs::remove_dir_all(&dir).unwrap();
}
