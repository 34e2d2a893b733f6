//! The system calls of a load and of an unload, counted by `strace`: a change that adds one
//! fails here, and the message lists every call made, next to what `dlopen` and `dlclose`
//! make for the same C code (`docs/PERFORMANCE.md`, *What a load does*).
//!
//! The module is the benchmark's generated C (code, read-only data, a table of function
//! pointers in `relro`, pointer arrays in `data`, a C-library import) with a `bss` array, as
//! SQLite's has: every kind of section a load maps. The test runs its own `child` test under
//! `strace -f`, which loads the module twice to warm what a process sets up once (the process
//! scope, the imports it remembers), then loads and unloads it a few times between marker
//! calls (`getppid`), and does the same with the shared library.
//!
//! It needs strace; `.ci/run` installs it. Without strace the test says so and passes, except
//! under CI (`CI` set), where a missing strace fails it rather than skipping silently. Under
//! an emulator (`SMF_TEST_RUNNER`, README "aarch64") it is skipped: strace would trace the
//! emulator.

use std::ffi::CString;
use std::path::Path;
use std::process::Command;

use simple_loader::LoadOptions;
use smf_bench::csource::{self, LibrarySpec};
use smf_bench::{fixture, native};

/// What one load to the first symbol does, in order: open the file and check it is a regular
/// one (`fstat`), read its first page (the image's size, for the room of its zero pages), map
/// it with that room, make the zero pages (`bss`), make code executable and `relro` and `data`
/// writable, enter the pages relocations write, protect `relro`, close the file.
const LOAD: &[&str] = &[
    "openat", "fstat", "pread64", "mmap", "mmap", "mprotect", "mprotect", "madvise", "mprotect",
    "close",
];
/// What one unload does: the head and the image are one mapping, unmapped in one call.
const UNLOAD: &[&str] = &["munmap"];
/// Loads and unloads counted of each kind.
const ROUNDS: usize = 3;
const CHILD_MODULE: &str = "SMF_SYSCALLS_MODULE";
const CHILD_LIBRARY: &str = "SMF_SYSCALLS_LIBRARY";

#[test]
fn a_load_and_an_unload_make_no_system_call_more_than_listed() {
    if std::env::var_os("SMF_TEST_RUNNER").is_some() {
        // Under an emulator strace would see the emulator's calls, not the loader's.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: strace cannot see the system calls of an emulated program"
        );
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "strace is not installed; .ci/run installs it"
        );
        eprintln!("syscalls: strace not found, skipped (apt-get install strace)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut sources = csource::library(&LibrarySpec {
        files: 1,
        functions: 40,
        statements: 4,
        export_every: 4,
        version: 1,
    });
    sources.push((
        "bss.c".to_owned(),
        "static char buffer[3 * 4096];\n\
         char *bench_buffer(long i) { return buffer + (unsigned long)i % sizeof buffer; }\n"
            .to_owned(),
    ));
    let pair = fixture::build_pair(dir.path(), "syscalls", &sources, &[], false).unwrap();
    let module = smf_format::Module::parse(&pair.module).unwrap();
    let kinds: Vec<_> = module.loaded_sections().map(|s| s.kind).collect();
    for kind in [
        smf_format::SectionKind::RelRo,
        smf_format::SectionKind::Data,
        smf_format::SectionKind::Bss,
    ] {
        assert!(kinds.contains(&kind), "no {kind} section in {kinds:?}");
    }

    let trace = dir.path().join("trace");
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--test-threads=1"])
        .env(CHILD_MODULE, &pair.smf)
        .env(CHILD_LIBRARY, &pair.so)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let sections = marked_sections(&trace);
    // Each round: load, unload; the module's rounds, then the library's.
    assert_eq!(sections.len(), 4 * ROUNDS, "marked sections in:\n{trace}");
    let (smf, so) = sections.split_at(2 * ROUNDS);
    let show = |calls: &[Vec<String>]| {
        calls
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    let report = format!(
        "module, load then unload, {ROUNDS} times:\n    {}\n\
         shared library (dlopen + dlsym, dlclose), the same:\n    {}\n\
         expected of the module: load {LOAD:?}, unload {UNLOAD:?}",
        show(smf),
        show(so)
    );
    eprintln!("{report}");
    for round in smf.chunks(2) {
        assert_eq!(round[0], LOAD, "a load's system calls differ:\n{report}");
        assert_eq!(
            round[1], UNLOAD,
            "an unload's system calls differ:\n{report}"
        );
    }
}

/// The system calls between consecutive marker calls (`getppid`) of the thread that made
/// them, by name (the `fstat` family as `fstat`), in order.
fn marked_sections(trace: &str) -> Vec<Vec<String>> {
    let calls: Vec<(&str, &str)> = trace
        .lines()
        .filter_map(|line| {
            let (tid, call) = line.split_once(char::is_whitespace)?;
            let call = call.trim_start();
            // The second half of a call another thread's call interrupted in the trace.
            if call.starts_with("<...") {
                return None;
            }
            let name = call.split('(').next()?;
            Some((tid, name))
        })
        .collect();
    let Some(&(marker_tid, _)) = calls.iter().find(|(_, name)| *name == "getppid") else {
        return Vec::new();
    };
    let mut sections = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for &(_, name) in calls.iter().filter(|(tid, _)| *tid == marker_tid) {
        if name == "getppid" {
            sections.extend(current.take());
            current = Some(Vec::new());
            continue;
        }
        let name = match name {
            "statx" | "newfstatat" | "fstat" => "fstat",
            name => name,
        };
        if let Some(section) = &mut current {
            section.push(name.to_owned());
        }
    }
    // Calls after the last marker belong to no section.
    if cfg!(debug_assertions) {
        // With debug assertions, the standard library checks that a descriptor is open
        // (`fcntl(F_GETFD)`) before it closes it.
        for section in &mut sections {
            let mut i = 0;
            while i + 1 < section.len() {
                if section[i] == "fcntl" && section[i + 1] == "close" {
                    section.remove(i);
                }
                i += 1;
            }
        }
    }
    sections
}

fn mark() {
    // SAFETY: getppid only returns a number; it marks a place in the trace.
    unsafe { libc::getppid() };
}

/// Run by the test above, under strace.
#[test]
#[ignore = "run under strace by a_load_and_an_unload_make_no_system_call_more_than_listed"]
fn child() {
    let module = std::env::var_os(CHILD_MODULE).expect("run by the test above");
    let library = std::env::var_os(CHILD_LIBRARY).expect("run by the test above");
    let module = Path::new(&module);
    let library = CString::new(library.into_encoded_bytes()).unwrap();
    let options = LoadOptions::default();
    let load = || {
        // SAFETY: the benchmark's generated C, built by the test above.
        let loaded = unsafe { simple_loader::load(module, &options, None) }.unwrap();
        assert!(loaded.export("bench_entry").is_some());
        loaded
    };
    let open = || {
        let opened = native::Library::open(&library).unwrap();
        assert!(!opened.symbol(c"bench_entry").is_null());
        opened
    };
    // What a process sets up once, before the counted rounds: the second load writes down
    // the imports it found (the first saw the loaded objects change).
    drop(load());
    drop(load());
    drop(open());
    for _ in 0..ROUNDS {
        mark();
        let loaded = load();
        mark();
        drop(loaded);
    }
    for _ in 0..ROUNDS {
        mark();
        let opened = open();
        mark();
        opened.close();
    }
    mark();
}
