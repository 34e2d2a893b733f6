//! `smf dev` picks up an edited source, reloads it, and a global counter keeps counting.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const V1: &str =
    "#include <stdio.h>\nlong ticks;\nvoid tick(void) { ticks++; printf(\"v1 %ld\\n\", ticks); }\n";
const V2: &str =
    "#include <stdio.h>\nlong ticks;\nvoid tick(void) { ticks++; printf(\"v2 %ld\\n\", ticks); }\n";
const BROKEN: &str =
    "#include <stdio.h>\nlong ticks;\nvoid tick(void) { ticks++ printf(\"v3\\n\"); }\n";

/// Saves `text` to `path` the way many editors do: a new file renamed over the old one.
fn save(path: &std::path::Path, text: &str) {
    let partial = path.with_extension("c.swp");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a stream, delivered through a channel so reads can time out.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line matching `wanted`, returning the lines seen up to it.
fn wait_for(rx: &mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = wanted(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("timed out waiting for {what}; saw:\n{}", seen.join("\n"));
}

#[test]
fn dev_reloads_an_edited_source_and_the_counter_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("counter.c");
    std::fs::write(&source, V1).unwrap();
    let mut child = smf()
        .args([
            "dev",
            "--call",
            "tick",
            "--every",
            "20",
            "--stop-after",
            "60000",
        ])
        .arg(&source)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (
        lines(child.stdout.take().unwrap()),
        lines(child.stderr.take().unwrap()),
    );
    let _guard = Killed(child);

    wait_for(&out, |l| l == "v1 3", "version 1 to tick three times");

    save(&source, V2);
    let reported = wait_for(
        &err,
        |l| l.contains("new code running in"),
        "the reload report",
    );
    assert!(
        reported.iter().any(|l| l.contains("now version 2")),
        "{reported:?}"
    );
    assert!(
        reported.iter().any(|l| l.contains("kept: ticks")),
        "{reported:?}"
    );
    let seen = wait_for(&out, |l| l.starts_with("v2 "), "version 2 output");
    // The last line of version 1: in what followed "v1 3", or "v1 3" itself when the reload
    // came before the next tick.
    let last_v1: i64 = seen
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("v1 "))
        .unwrap_or("3")
        .parse()
        .unwrap();
    let first_v2: i64 = seen
        .last()
        .unwrap()
        .strip_prefix("v2 ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        first_v2,
        last_v1 + 1,
        "the counter continues across the reload"
    );

    save(&source, BROKEN);
    wait_for(
        &err,
        |l| l.contains("keeps running"),
        "the compile error report",
    );
    let before: i64 = wait_for(&out, |l| l.starts_with("v2 "), "version 2 still running")
        .last()
        .unwrap()[3..]
        .parse()
        .unwrap();
    let after: i64 = wait_for(&out, |l| l.starts_with("v2 "), "version 2 still running")
        .last()
        .unwrap()[3..]
        .parse()
        .unwrap();
    assert!(
        after > before,
        "the old code keeps running after a failed build"
    );

    // Two saves reached the loader: nothing else may be rebuilt (events that change no
    // content, such as the compiler opening the source, are ignored).
    std::thread::sleep(Duration::from_millis(300));
    let rest: Vec<String> = err.try_iter().collect();
    assert!(
        !rest
            .iter()
            .any(|l| l.contains("unchanged") || l.contains("now version")),
        "spurious rebuilds: {rest:?}"
    );
}
