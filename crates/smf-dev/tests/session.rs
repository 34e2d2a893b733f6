//! The watch–rebuild–reload loop as a host program drives it through the library: a C++
//! source compiled with `CXX`, a first build, a handle, and `Session::poll` picking up an
//! edit.
//!
//! Not built for Windows: under Wine (where the Windows build is tested) the system C++
//! compiler is a Linux program, whose exit status a Windows process cannot get, so the
//! session cannot compile. The Windows build's watch–rebuild–reload loop is tested in
//! `crates/smf/tests/windows_runtime.rs` with a build command instead.
#![cfg(not(windows))]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smf_dev::{Project, Session};

const V1: &str = "#include <string>\nlong calls;\nextern \"C\" long value() { calls++; return std::string(\"abc\").size() * 10 + calls; }\n";

#[test]
fn a_host_polls_rebuilds_and_calls_the_new_code() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("value.cpp");
    std::fs::write(&source, V1).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut session = Session::new(Project::sources(vec![source.clone()]), work, move |l| {
        sink.lock().unwrap().push(l.to_owned())
    });
    assert!(session.build().unwrap().is_none(), "the first build loads");
    assert!(session.is_loaded());
    // SAFETY: `value` is `long value(void)` in every version this test writes.
    let value = unsafe {
        session
            .registry()
            .current::<extern "C" fn() -> i64>(session.module_path(), "value")
    }
    .unwrap();
    assert_eq!((*value.pin())(), 31);
    assert_eq!((*value.pin())(), 32);
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("compiling ") && l.ends_with("value.cpp [1/1]")),
        "{lines:?}"
    );

    // Nothing changed: polling returns nothing.
    assert!(session.poll(Duration::from_millis(100)).unwrap().is_none());

    let edited = V1.replace("\"abc\"", "\"abcdefg\"");
    let partial: PathBuf = source.with_extension("tmp");
    std::fs::write(&partial, edited).unwrap();
    std::fs::rename(&partial, &source).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        assert!(Instant::now() < deadline, "no rebuild after the edit");
        if let Some(result) = session.poll(Duration::from_millis(200)).unwrap() {
            break result.unwrap().expect("a reload report");
        }
    };
    assert_eq!(report.version, 2);
    assert!(report.kept.iter().any(|k| k == "calls"), "{report}");
    // The same handle reaches the new code; the counter carried over.
    assert_eq!((*value.pin())(), 73);
}
