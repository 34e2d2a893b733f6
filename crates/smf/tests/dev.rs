//! `smf dev` picks up an edited source, reloads it, and a global counter keeps counting.
//!
//! Not built for Windows: `smf dev` runs the system C compiler, a Linux program under Wine,
//! whose exit status a Windows process cannot get; `windows_runtime.rs` tests the
//! Windows build's watch-rebuild-reload loop with a build command (README, "Windows").
#![cfg(unix)]

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

/// Starts `smf dev` in `dir` with `args`; returns its stdout and stderr lines and a guard
/// that kills it.
fn dev(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (mpsc::Receiver<String>, mpsc::Receiver<String>, Killed) {
    let mut command = smf();
    command
        .arg("dev")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    (out, err, Killed(child))
}

fn number_after(line: &str, prefix: &str) -> i64 {
    line.strip_prefix(prefix).unwrap().trim().parse().unwrap()
}

const CXX_TICK: &str = r#"#include <cstdio>
#include <string>
#include <vector>
#include "base.h"
long ticks;
extern "C" void tick() {
    std::vector<std::string> words{"base", std::to_string(base())};
    ticks++;
    std::printf("%s %s %ld\n", words[0].c_str(), words[1].c_str(), ticks);
}
"#;

/// A C++ project of two sources and a header, built by a user command into two objects:
/// `smf dev` runs the command, packs its objects, and rebuilds on a change in the watched
/// directories.
#[test]
fn dev_drives_a_multi_file_cxx_project_built_by_a_user_command() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("include")).unwrap();
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("include/base.h"), "int base();\n").unwrap();
    std::fs::write(root.join("src/tick.cpp"), CXX_TICK).unwrap();
    std::fs::write(
        root.join("src/base.cpp"),
        "#include \"base.h\"\nint base() { return 1; }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("Makefile"),
        "CXXFLAGS = -fPIC -O1 -Iinclude\nout/%.o: src/%.cpp include/base.h\n\t$(CXX) $(CXXFLAGS) -c $< -o $@\n",
    )
    .unwrap();
    let (out, err, _guard) = dev(
        root,
        &[
            "--build",
            "make --no-print-directory out/tick.o out/base.o",
            "--watch",
            "src",
            "--watch",
            "include",
            "--needed",
            "libstdc++.so.6",
            "--call",
            "tick",
            "--every",
            "20",
            "--stop-after",
            "60000",
            "out/tick.o",
            "out/base.o",
        ],
        &[],
    );
    let started = wait_for(&err, |l| l.contains("edit and save"), "the first build");
    assert!(
        started.iter().any(|l| l.contains("running `make")),
        "a progress line names the build command: {started:?}"
    );
    wait_for(
        &out,
        |l| l == "base 1 3",
        "the first version to tick three times",
    );

    // Only the second source changes; the object of the first is reused by make.
    save(
        &root.join("src/base.cpp"),
        "#include \"base.h\"\nint base() { return 2; }\n",
    );
    let seen = wait_for(&out, |l| l.starts_with("base 2 "), "the rebuilt version");
    let last_v1 = seen
        .iter()
        .rev()
        .find(|l| l.starts_with("base 1 "))
        .map_or(3, |l| number_after(l, "base 1 "));
    assert_eq!(
        number_after(seen.last().unwrap(), "base 2 "),
        last_v1 + 1,
        "the counter continues across the reload"
    );

    // A broken header: the build command's output is shown, the old code keeps running.
    save(&root.join("include/base.h"), "int base(\n");
    let failed = wait_for(&err, |l| l.contains("keeps running"), "the failed build");
    assert!(
        failed.iter().any(|l| l.contains("include/base.h")),
        "the compiler's message names the user's header: {failed:?}"
    );
    wait_for(
        &out,
        |l| l.starts_with("base 2 "),
        "version 2 still running",
    );
}

/// A first build that fails waits for a fix instead of ending; compiler messages name the
/// user's file; -I, -D and CFLAGS reach the compiler; a progress line shows the build.
#[test]
fn dev_waits_for_a_fix_when_the_first_build_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("inc")).unwrap();
    std::fs::write(root.join("inc/value.h"), "#define VALUE 7\n").unwrap();
    let source = root.join("main.c");
    let fixed = "#include <stdio.h>\n#include \"value.h\"\nlong ticks;\nvoid tick(void) { ticks++; printf(\"tick %d %d %d %ld\\n\", VALUE, EXTRA, FROM_CFLAGS, ticks); }\n";
    std::fs::write(&source, fixed.replace("ticks++;", "ticks++")).unwrap();
    let (out, err, _guard) = dev(
        root,
        &[
            "-I",
            "inc",
            "-D",
            "EXTRA=3",
            "--call",
            "tick",
            "--every",
            "20",
            "--stop-after",
            "60000",
            "main.c",
        ],
        &[("CFLAGS", "-DFROM_CFLAGS=5 -Wall")],
    );
    let failed = wait_for(
        &err,
        |l| l.contains("waiting for a fix"),
        "the failed first build",
    );
    assert!(
        failed.iter().any(|l| l.contains("compiling main.c [1/1]")),
        "a progress line: {failed:?}"
    );
    assert!(
        failed.iter().any(|l| l.starts_with("main.c:4:")),
        "the compiler's message points at the user's file: {failed:?}"
    );
    assert!(
        !failed.iter().any(|l| l.contains("smf-dev-")),
        "no temporary path in the messages: {failed:?}"
    );
    save(&source, fixed);
    wait_for(&out, |l| l == "tick 7 3 5 2", "the fixed version to run");
}

/// `-l`/`-L` link an archive found in a library directory into every build; a library that
/// no `-L` directory has is reported by name while the session waits for a fix.
#[test]
fn dev_links_an_archive_named_by_l_from_an_l_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let lib = root.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("scale.c"),
        "int scale(long x) { return (int)x * 100; }\n",
    )
    .unwrap();
    check({
        let mut cc = cc();
        cc.args(["-fPIC", "-O1", "-c", "scale.c", "-o", "scale.o"])
            .current_dir(&lib);
        cc
    });
    check({
        let mut ar = std::process::Command::new("ar");
        ar.args(["rcs", "libscale.a", "scale.o"]).current_dir(&lib);
        ar
    });
    std::fs::remove_file(lib.join("scale.o")).unwrap();
    let source = root.join("main.c");
    let main = "#include <stdio.h>\nint scale(long);\nlong ticks;\nvoid tick(void) { ticks++; printf(\"v1 %d\\n\", scale(ticks)); }\n";
    std::fs::write(&source, main).unwrap();

    let args = |library: &'static str| {
        [
            "-L",
            "lib",
            "-l",
            library,
            "--call",
            "tick",
            "--every",
            "20",
            "--stop-after",
            "60000",
            "main.c",
        ]
    };
    let (out, _err, guard) = dev(root, &args("scale"), &[]);
    wait_for(
        &out,
        |l| l == "v1 300",
        "the archive's function on the third tick",
    );
    save(&source, &main.replace("v1 ", "v2 "));
    let seen = wait_for(&out, |l| l.starts_with("v2 "), "the rebuilt version");
    let last = seen.last().unwrap();
    assert_eq!(
        number_after(last, "v2 ") % 100,
        0,
        "the rebuilt module still calls the archive: {last}"
    );
    drop(guard);

    let (_out, err, _guard) = dev(root, &args("absent"), &[]);
    let failed = wait_for(
        &err,
        |l| l.contains("waiting for a fix"),
        "the build without the library",
    );
    assert!(
        failed.iter().any(|l| l.contains("libabsent.a")),
        "the missing library is named: {failed:?}"
    );
}
