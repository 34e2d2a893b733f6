//! Hot reload through the registry, on modules compiled from C at test time: calls across
//! modules follow reloads, state is kept, failures change nothing, old versions are freed.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use simple_loader::{Current, LoadOptions, Registry};

/// Compiles `source` and packs it (reloadable) into `dir/name.smf`; returns the file bytes.
fn build(dir: &Path, name: &str, source: &str) -> Vec<u8> {
    let work = dir.join(format!("build-{name}-{}", source_hash_hex(source)));
    std::fs::create_dir_all(&work).unwrap();
    let c = work.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let objects = compile(&[c], &work, &["-O1"]);
    let out = work.join(format!("{name}.smf"));
    pack(&objects, &out, &["--reloadable"]);
    std::fs::read(out).unwrap()
}

fn source_hash_hex(text: &str) -> String {
    format!(
        "{:016x}",
        text.bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3))
    )
}

/// Writes a module file in place, as a rebuild would.
fn install(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

const LIB_V1: &str = r#"
long counter;
long version(void) { return 1; }
long bump(void) { return ++counter; }
"#;

const LIB_V2: &str = r#"
long counter;
long version(void) { return 2; }
long bump(void) { return ++counter; }
long extra(void) { return 42; }
"#;

const APP: &str = r#"
extern long version(void);
extern long bump(void);
long app_version(void) { return version() * 100; }
long app_bump(void) { return bump(); }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    app: PathBuf,
    v1: Vec<u8>,
    v2: Vec<u8>,
    registry: Registry,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "lib", LIB_V1);
    let v2 = build(dir.path(), "lib", LIB_V2);
    let lib = dir.path().join("lib.smf");
    install(&lib, &v1);
    let app = dir.path().join("app.smf");
    install(&app, &build(dir.path(), "app", APP));
    // With the module hash checked, so that a corrupted file is refused
    // (`failed_reloads_leave_the_old_version_running`); the other tests' registries use the
    // default.
    let registry = Registry::with_options(LoadOptions::default().with_verify_hash(true));
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&lib) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&app) }.unwrap();
    Fixture {
        _dir: dir,
        lib,
        app,
        v1,
        v2,
        registry,
    }
}

type Fn0 = extern "C" fn() -> i64;

fn call(registry: &Registry, path: &Path, name: &str) -> i64 {
    let module = registry.get(path).unwrap();
    let _pinned = registry.pin();
    // SAFETY: every function these tests call is `long f(void)`.
    let f = unsafe { module.get::<Fn0>(name) }.unwrap();
    f()
}

fn current(f: &Fixture, name: &str) -> Current<Fn0> {
    // SAFETY: `long f(void)` in every version.
    unsafe { f.registry.current::<Fn0>(&f.lib, name) }.unwrap()
}

#[test]
fn cross_module_calls_reach_the_new_version_and_state_is_kept() {
    let f = fixture();
    let version = current(&f, "version");
    assert_eq!(call(&f.registry, &f.app, "app_version"), 100);
    assert_eq!((*version.pin())(), 1);
    assert_eq!(call(&f.registry, &f.app, "app_bump"), 1);
    assert_eq!(call(&f.registry, &f.app, "app_bump"), 2);

    install(&f.lib, &f.v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { f.registry.reload(&f.lib) }.unwrap();
    assert_eq!(report.version, 2);
    assert!(!report.unchanged);
    assert_eq!(report.added, ["extra"]);
    assert!(report.removed.is_empty());
    assert!(report.changed.contains(&"version".to_owned()), "{report}");
    assert_eq!(report.kept, ["counter"]);

    // The app was not re-linked, yet its calls reach version 2 and the kept counter.
    assert_eq!(call(&f.registry, &f.app, "app_version"), 200);
    assert_eq!(call(&f.registry, &f.app, "app_bump"), 3);
    assert_eq!(
        (*version.pin())(),
        2,
        "the current-version handle follows the reload"
    );
    assert_eq!(f.registry.modules()[0].version, 2);
}

#[test]
fn a_pinned_handle_runs_the_old_code_and_frees_it_when_dropped() {
    let f = fixture();
    // SAFETY: `long version(void)`.
    let pinned = unsafe { f.registry.pinned::<Fn0>(&f.lib, "version") }.unwrap();
    let old = Arc::downgrade(pinned.module());
    install(&f.lib, &f.v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { f.registry.reload(&f.lib) }.unwrap();
    assert_eq!((*pinned)(), 1, "the pinned handle keeps running version 1");
    assert_eq!((*current(&f, "version").pin())(), 2);
    assert!(old.upgrade().is_some());
    drop(pinned);
    f.registry.collect();
    assert!(
        old.upgrade().is_none(),
        "version 1 is freed once its last pinned handle is gone"
    );
}

#[test]
fn data_with_the_same_layout_is_kept_and_the_rest_reset() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(
        dir.path(),
        "state",
        "long counter = 1; int table[4] = {1, 2, 3, 4}; static long hits; long touch(void) { hits += 10; counter += 1; return hits; }\n",
    );
    let v2 = build(
        dir.path(),
        "state",
        "long counter = 1; int table[8] = {9}; static long hits; long fresh = 5;\n\
         long touch(void) { hits += 1; return hits; }\n\
         long get_hits(void) { return hits; }\n",
    );
    let path = dir.path().join("state.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    assert_eq!(call(&registry, &path, "touch"), 10);
    assert_eq!(call(&registry, &path, "touch"), 20);
    install(&path, &v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { registry.reload(&path) }.unwrap();
    let mut kept = report.kept.clone();
    kept.sort();
    assert_eq!(kept, ["counter", "hits"], "{report}");
    assert!(
        report
            .reset
            .iter()
            .any(|(n, why)| n == "table" && why.contains("size changed from 16 to 32")),
        "{report}"
    );
    assert!(
        report
            .reset
            .iter()
            .any(|(n, why)| n == "fresh" && why == "new"),
        "{report}"
    );
    let module = registry.get(&path).unwrap();
    let read = |name: &str| {
        let p = module.data(name).unwrap().as_ptr::<i64>().unwrap();
        // SAFETY: an 8-byte data symbol of the mapped module.
        unsafe { p.read() }
    };
    assert_eq!(read("counter"), 3, "kept: 1 + two touches");
    assert_eq!(read("fresh"), 5, "reset to its initial value");
    assert_eq!(
        call(&registry, &path, "get_hits"),
        20,
        "a static kept across the reload"
    );
    let table = module.data("table").unwrap().as_ptr::<[i32; 8]>().unwrap();
    // SAFETY: table is int[8] in version 2.
    assert_eq!(unsafe { table.read() }, [9, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn pointers_in_kept_data_move_to_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let source = |n: i32| {
        format!(
            "static long which(void) {{ return {n}; }}\n\
             long (*callback)(void) = which;\n\
             long storage[2];\n\
             long *cursor = &storage[1];\n\
             long run(void) {{ *cursor += 1; return callback() * 1000 + storage[1]; }}\n"
        )
    };
    let v1 = build(dir.path(), "ptrs", &source(1));
    let v2 = build(dir.path(), "ptrs", &source(2));
    let path = dir.path().join("ptrs.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    assert_eq!(call(&registry, &path, "run"), 1001);
    install(&path, &v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(!report.retains_old, "{report}");
    // The kept function pointer now leads to version 2's `which`, and the kept data pointer
    // to version 2's storage, whose value was kept too.
    assert_eq!(call(&registry, &path, "run"), 2002);
    // Back again: version 2's symbols, arranged by the reload that made it, move them.
    install(&path, &v1);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(!report.retains_old, "{report}");
    assert_eq!(call(&registry, &path, "run"), 1003);
}

/// Compiles each of `sources` (file name, text) into its own object and packs them together
/// (reloadable) into `dir/name.smf`; returns the file bytes.
fn build_objects(dir: &Path, name: &str, sources: &[(&str, &str)]) -> Vec<u8> {
    let all: String = sources.iter().map(|(_, text)| *text).collect();
    let work = dir.join(format!("build-{name}-{}", source_hash_hex(&all)));
    std::fs::create_dir_all(&work).unwrap();
    let files: Vec<PathBuf> = sources
        .iter()
        .map(|(file, text)| {
            let c = work.join(file);
            std::fs::write(&c, text).unwrap();
            c
        })
        .collect();
    let objects = compile(&files, &work, &["-O1"]);
    let out = work.join(format!("{name}.smf"));
    pack(&objects, &out, &["--reloadable"]);
    std::fs::read(out).unwrap()
}

/// Pointers into local symbols move by name: to a static object and a static function
/// whose names are unique in the new version, and not to a static function whose name the
/// new version gives two objects (neither is the same function), whose version then stays
/// mapped.
#[test]
fn pointers_to_locals_move_only_to_a_local_of_a_unique_name() {
    let dir = tempfile::tempdir().unwrap();
    let main = |n: i32| {
        format!(
            "static long which(void) {{ return {n}; }}\n\
             static long other(void) {{ return {n} * 10; }}\n\
             static long slots[4];\n\
             long (*first)(void) = which;\n\
             long (*second)(void) = other;\n\
             long *cursor = &slots[2];\n\
             long run(void) {{ *cursor += 1; return first() * 1000 + second() * 100 + slots[2]; }}\n"
        )
    };
    // Version 2 adds an object with a static function of the same name as one of main.c's.
    let v1 = build_objects(dir.path(), "locals", &[("main.c", &main(1))]);
    let v2 = build_objects(
        dir.path(),
        "locals",
        &[
            ("main.c", &main(2)),
            (
                "extra.c",
                "__attribute__((noinline, used)) static long other(void) { return 5; }\n\
                 long extra(void) { return other(); }\n",
            ),
        ],
    );
    let path = dir.path().join("locals.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources.
    unsafe { registry.load(&path) }.unwrap();
    assert_eq!(call(&registry, &path, "run"), 1000 + 1000 + 1);
    install(&path, &v2);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    // `first` leads to version 2's `which`, `cursor` to version 2's `slots` (whose value was
    // kept); `second` still leads to version 1's `other`, which therefore stays mapped.
    assert!(report.retains_old, "{report}");
    assert_eq!(call(&registry, &path, "run"), 2000 + 1000 + 2);
    assert_eq!(call(&registry, &path, "extra"), 5);
}

/// A module read from its file (the default for `--reloadable`) keeps its payloads in its
/// image, not in memory beside it: the report still compares the files' bytes, not what the
/// running version made of them (a value it wrote, a relocated pointer).
#[test]
fn the_report_compares_the_files_bytes_not_the_running_image() {
    let dir = tempfile::tempdir().unwrap();
    let source = |limit: i32, step: i32, extra: &str| {
        format!(
            "long counter = 1; long limit = {limit}; long *cursor = &counter;\n\
             const long table[3] = {{4, 5, 6}};\n\
             long bump(void) {{ *cursor += {step}; limit += 1; return counter + table[1]; }}\n\
             long same(void) {{ return 7; }}\n\
             long {extra}(void) {{ return 8; }}\n"
        )
    };
    let v1 = build(dir.path(), "bytes", &source(5, 100, "gone"));
    let v2 = build(dir.path(), "bytes", &source(6, 200, "fresh"));
    let path = dir.path().join("bytes.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources.
    unsafe { registry.load(&path) }.unwrap();
    // The running version writes `counter` and `limit`.
    assert_eq!(call(&registry, &path, "bump"), 106);
    install(&path, &v2);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    let mut changed = report.changed.clone();
    changed.sort();
    // `limit`'s and `bump`'s bytes differ in the files; `counter`, written at run time, and
    // `cursor`, relocated, do not; nor do `same` and `table`.
    assert_eq!(changed, ["bump", "limit"], "{report}");
    assert_eq!(
        (report.added, report.removed),
        (vec!["fresh".to_owned()], vec!["gone".to_owned()])
    );
    assert_eq!(call(&registry, &path, "bump"), 306);
}

#[test]
fn hooks_run_on_the_old_version_before_and_the_new_one_after() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(
        dir.path(),
        "hooks",
        "long counter = 7; long after; void smf_before_reload(void) { counter *= 10; }\n",
    );
    let v2 = build(
        dir.path(),
        "hooks",
        "long counter; long after; void smf_after_reload(void) { after = counter + 1; }\n",
    );
    let path = dir.path().join("hooks.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    install(&path, &v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.reload(&path) }.unwrap();
    let module = registry.get(&path).unwrap();
    // SAFETY: 8-byte data symbols.
    let (counter, after) = unsafe {
        (
            module
                .data("counter")
                .unwrap()
                .as_ptr::<i64>()
                .unwrap()
                .read(),
            module
                .data("after")
                .unwrap()
                .as_ptr::<i64>()
                .unwrap()
                .read(),
        )
    };
    assert_eq!((counter, after), (70, 71));
}

#[test]
fn failed_reloads_leave_the_old_version_running() {
    let f = fixture();
    let version = current(&f, "version");
    let check_still_v1 = |what: &str| {
        assert_eq!((*version.pin())(), 1, "after {what}");
        assert_eq!(
            call(&f.registry, &f.app, "app_version"),
            100,
            "after {what}"
        );
        assert_eq!(f.registry.modules()[0].version, 1, "after {what}");
    };
    let dir = f.lib.parent().unwrap().to_owned();

    install(&f.lib, b"garbage, not a module");
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { f.registry.reload(&f.lib) }.unwrap_err());
    assert!(
        e.contains("lib.smf") && e.contains("not an SMF module"),
        "{e}"
    );
    check_still_v1("a malformed file");

    let mut corrupted = f.v2.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0xff;
    install(&f.lib, &corrupted);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { f.registry.reload(&f.lib) }.unwrap_err());
    assert!(e.contains("module hash mismatch"), "{e}");
    check_still_v1("a corrupted file");

    install(
        &f.lib,
        &build(
            &dir,
            "lib",
            "extern long gone_missing(void);\nlong counter; long version(void) { return gone_missing(); } long bump(void) { return 0; }\n",
        ),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { f.registry.reload(&f.lib) }.unwrap_err());
    assert!(e.contains("unresolved import `gone_missing`"), "{e}");
    check_still_v1("an unresolvable import");

    install(
        &f.lib,
        &build(
            &dir,
            "lib",
            "long counter; long bump(void) { return ++counter; }\n",
        ),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { f.registry.reload(&f.lib) }.unwrap_err());
    assert!(
        e.contains("`version`") && e.contains("no longer exports it"),
        "{e}"
    );
    check_still_v1("removing a function others are linked to");

    install(
        &f.lib,
        &build(
            &dir,
            "lib",
            "long counter; long version; long bump(void) { return ++counter; }\n",
        ),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { f.registry.reload(&f.lib) }.unwrap_err());
    assert!(
        e.contains("`version`") && e.contains("as a data symbol"),
        "{e}"
    );
    check_still_v1("turning a function into data");

    // And the good version still goes in afterwards.
    install(&f.lib, &f.v2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert_eq!(unsafe { f.registry.reload(&f.lib) }.unwrap().version, 2);
    assert_eq!((*version.pin())(), 2);
}

#[test]
fn a_transaction_switches_all_modules_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let a1 = build(dir.path(), "a", "long a(void) { return 1; }\n");
    let a2 = build(dir.path(), "a", "long a(void) { return 2; }\n");
    let b1 = build(dir.path(), "b", "long b(void) { return 10; }\n");
    let b2_bad = build(
        dir.path(),
        "b",
        "extern long nowhere(void); long b(void) { return nowhere(); }\n",
    );
    let b2 = build(dir.path(), "b", "long b(void) { return 20; }\n");
    let (pa, pb) = (dir.path().join("a.smf"), dir.path().join("b.smf"));
    install(&pa, &a1);
    install(&pb, &b1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&pa) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&pb) }.unwrap();
    // SAFETY: `long f(void)`.
    let (ca, cb) = unsafe {
        (
            registry.current::<Fn0>(&pa, "a").unwrap(),
            registry.current::<Fn0>(&pb, "b").unwrap(),
        )
    };

    install(&pa, &a2);
    install(&pb, &b2_bad);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!(
        "{:#}",
        unsafe { registry.reload_all(&[&pa, &pb]) }.unwrap_err()
    );
    assert!(e.contains("b.smf") && e.contains("nowhere"), "{e}");
    assert_eq!(((*ca.pin())(), (*cb.pin())()), (1, 10), "neither switched");

    install(&pb, &b2);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let reports = unsafe { registry.reload_all(&[&pa, &pb]) }.unwrap();
    assert_eq!(
        reports.iter().map(|r| r.version).collect::<Vec<_>>(),
        [2, 2]
    );
    assert_eq!(((*ca.pin())(), (*cb.pin())()), (2, 20));
}

#[test]
fn reloading_unchanged_content_is_a_reported_no_op() {
    let f = fixture();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { f.registry.reload(&f.lib) }.unwrap();
    assert!(report.unchanged && report.version == 1, "{report}");
    assert!(report.to_string().contains("unchanged"));
    assert!(Arc::ptr_eq(
        &report.module,
        &f.registry.get(&f.lib).unwrap()
    ));
}

#[test]
fn modules_not_packed_reloadable_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("plain.c");
    std::fs::write(&source, "long f(void) { return 1; }\n").unwrap();
    let objects = compile(&[source], dir.path(), &["-O1"]);
    let path = dir.path().join("plain.smf");
    pack(&objects, &path, &[]);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = format!("{:#}", unsafe { registry.reload(&path) }.unwrap_err());
    assert!(
        e.contains("plain.smf") && e.contains("not reloadable"),
        "{e}"
    );
}

/// Resident memory and number of mappings of this process.
fn footprint() -> (u64, usize) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident_pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mappings = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count();
    (resident_pages * 4096, mappings)
}

#[test]
fn stress_calls_during_a_thousand_reloads() {
    let f = Arc::new(fixture());
    let stop = Arc::new(AtomicBool::new(false));
    let version = Arc::new(current(&f, "version"));
    let app = f.registry.get(&f.app).unwrap();

    let callers: Vec<_> = (0..3)
        .map(|t| {
            let (version, app, stop) = (Arc::clone(&version), Arc::clone(&app), Arc::clone(&stop));
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if t % 2 == 0 {
                        let v = (*version.pin())();
                        assert!(v == 1 || v == 2, "current handle returned {v}");
                    } else {
                        let _pinned = f.registry.pin();
                        // SAFETY: `long app_version(void)`.
                        let v = unsafe { app.get::<Fn0>("app_version") }.unwrap()();
                        assert!(v == 100 || v == 200, "cross-module call returned {v}");
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();

    let reload = |i: usize| {
        install(&f.lib, if i % 2 == 0 { &f.v2 } else { &f.v1 });
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        unsafe { f.registry.reload(&f.lib) }.unwrap();
    };
    // Warm up allocator and slot pages before measuring.
    for i in 0..20 {
        reload(i);
    }
    let before = footprint();
    for i in 20..1020 {
        reload(i);
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = callers.into_iter().map(|t| t.join().unwrap()).sum();
    f.registry.collect();
    let after = footprint();
    assert!(calls > 0);
    assert_eq!(f.registry.modules()[0].version, 1021);
    assert!(
        after.1 <= before.1 + 16,
        "mappings grew from {} to {}",
        before.1,
        after.1
    );
    assert!(
        after.0 <= before.0 + (32 << 20),
        "resident memory grew from {} to {} bytes",
        before.0,
        after.0
    );
}

const MOVED_V1: &str = r#"
static long table[4] = {1, 2, 3, 4};
__attribute__((noinline)) long helper(long x);
long stable(long x) { return helper(x) + table[x & 3]; }
long edited(void) { return 1; }
__attribute__((noinline)) long helper(long x) { return x * 3 + table[(x + 1) & 3]; }
"#;

/// `stable` is the same code; `inserted`, placed before it, moves it away from `table`, so
/// only the displacement of its read of `table` differs. `edited` returns something else.
const MOVED_V2: &str = r#"
static long table[4] = {1, 2, 3, 4};
__attribute__((noinline)) long helper(long x);
long inserted(long x) { return x * x * 7 - 5 * x + (x >> 3) * 11; }
long stable(long x) { return helper(x) + table[x & 3]; }
long edited(void) { return 2; }
__attribute__((noinline)) long helper(long x) { return x * 3 + table[(x + 1) & 3]; }
"#;

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "x86-64 only: on aarch64 the insertion leaves `stable`'s code the same bytes (its \
              ADRP page does not change); \
              the_report_tells_code_that_only_moved_from_code_that_changed_at_o2 covers both"
)]
fn the_report_counts_a_function_whose_code_only_moved_as_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "moved", MOVED_V1);
    let v2 = build(dir.path(), "moved", MOVED_V2);
    // The test means something only if `stable`'s bytes do differ between the versions.
    let bytes_of = |file: &[u8], name: &str| {
        let module = smf_format::Module::parse(file).unwrap();
        let symbol = module.lookup(name).unwrap();
        let section = &module.sections()[symbol.section.unwrap() as usize];
        let start = (symbol.value - section.vaddr) as usize;
        section.data[start..start + symbol.size as usize].to_vec()
    };
    let (old, new) = (bytes_of(&v1, "stable"), bytes_of(&v2, "stable"));
    assert_eq!(old.len(), new.len());
    assert_ne!(
        old, new,
        "stable's code did not move; the test checks nothing"
    );

    let path = dir.path().join("moved.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources.
    unsafe { registry.load(&path) }.unwrap();
    install(&path, &v2);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.added, ["inserted"], "{report}");
    assert_eq!(report.changed, ["edited"], "{report}");
    // SAFETY: `long stable(long)` in both versions.
    let stable = unsafe { report.module.get::<extern "C" fn(i64) -> i64>("stable") }.unwrap();
    assert_eq!((*stable)(1), 1 * 3 + 3 + 2);
}

/// Version 1 of a module whose code reaches its callees and data in every way a compiler
/// does at `-O2 -fPIC`: direct and tail calls, calls through the import stubs, addresses and
/// loads of static and global data (directly and through the GOT), string literals and
/// function addresses. Version 2 inserts a function of about 10 KiB before `stable_*`, so
/// that their code moves away from `early` and from the data by more than a page.
/// `retarget` and `redirect` keep their instructions but read other data and call another
/// function in version 2; `edited` returns something else.
const SPREAD_V1: &str = r#"
#include <string.h>
static long table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static long first[4] = {10, 20, 30, 40};
static long second[4] = {50, 60, 70, 80};
static const char greeting[] = "a string literal";
long counter;
/* Stores, so that the compiler cannot fold reads of the arrays to constants, and reads, so
   that it keeps every array in both versions (first, so that it lays them out in this order
   in both). */
void poke(long i, long v) { table[i & 7] = v; first[i & 3] = v; second[i & 3] = v; }
long peek(long i) { return first[i & 3] + second[i & 3]; }
__attribute__((noinline)) long early(long x) { return x * 5 + table[x & 7]; }
__attribute__((noinline)) long late(long x);
/*INSERT*/
long stable_call(long x) { return early(x) + late(x) + table[x & 7]; }
long stable_tail(long x) { return early(x + 1); }
long stable_global(long x) { counter += x; return counter * 2; }
const char *stable_string(void) { return greeting; }
static long hits;
long stable_import(const char *s) { return (long)strlen(s) + ++hits; }
long stable_address(void) { return (long)&early == (long)&late ? 0 : (long)&early; }
long stable_branches(long x) {
    long sum = 0;
    for (long i = 0; i < x; i++)
        sum += (i & 1) ? early(i) : table[i & 7];
    return sum;
}
long retarget(void) { return first[2]; }
long redirect(long x) { return early(x); }
long edited(void) { return 1; }
__attribute__((noinline)) long late(long x) { return x * 3 + table[(x + 1) & 7]; }
"#;

/// About 10 KiB of code: 1024 rounds of three instructions or so.
const SPREAD_INSERTED: &str = r#"
#define R1(x) x = x * 7 + (x >> 3);
#define R4(x) R1(x) R1(x) R1(x) R1(x)
#define R16(x) R4(x) R4(x) R4(x) R4(x)
#define R64(x) R16(x) R16(x) R16(x) R16(x)
#define R256(x) R64(x) R64(x) R64(x) R64(x)
long inserted(long x) { R256(x) R256(x) R256(x) R256(x) return x; }
"#;

/// `stable_*` reach the same callees and data whichever version: the report must say that
/// only `retarget`, `redirect` and `edited` changed, though every `stable_*` function's bytes
/// differ (on aarch64 in `ADRP` pages, `ADD` and load offsets and `BL`/`B` offsets; on
/// x86-64 in displacements).
#[test]
fn the_report_tells_code_that_only_moved_from_code_that_changed_at_o2() {
    report_tells_code_that_only_moved_from_code_that_changed(true);
}

/// The same, with the modules' function fingerprints emptied: the reload compares the
/// versions' code, as for modules of writers that record none (docs/RELOAD.md).
#[test]
fn without_fingerprints_the_report_compares_code_that_only_moved_at_o2() {
    report_tells_code_that_only_moved_from_code_that_changed(false);
}

/// `bytes` with its `fingerprints` table emptied (its section entry's `file_size` set to 0,
/// which leaves a valid, empty table).
fn without_fingerprints(mut bytes: Vec<u8>) -> Vec<u8> {
    let module = smf_format::Module::parse(&bytes).unwrap();
    let index = module
        .sections()
        .iter()
        .position(|s| s.kind == smf_format::SectionKind::Fingerprints)
        .expect("a reloadable module from smf pack has fingerprints");
    let file_size = 0x80 + 64 * index + 0x10;
    bytes[file_size..file_size + 8].fill(0);
    assert_eq!(
        smf_format::Module::parse(&bytes)
            .unwrap()
            .fingerprints()
            .len(),
        0
    );
    bytes
}

fn report_tells_code_that_only_moved_from_code_that_changed(fingerprints: bool) {
    let dir = tempfile::tempdir().unwrap();
    let v1_source = SPREAD_V1.replace("/*INSERT*/", "");
    let v2_source = SPREAD_V1
        .replace("/*INSERT*/", SPREAD_INSERTED)
        .replace("return first[2];", "return second[2];")
        .replace(
            "long redirect(long x) { return early(x); }",
            "long redirect(long x) { return late(x); }",
        )
        .replace(
            "long edited(void) { return 1; }",
            "long edited(void) { return 2; }",
        );
    let build_o2 = |source: &str| {
        let work = dir
            .path()
            .join(format!("build-{}", source_hash_hex(source)));
        std::fs::create_dir_all(&work).unwrap();
        let c = work.join("spread.c");
        std::fs::write(&c, source).unwrap();
        let objects = compile(&[c], &work, &["-O2"]);
        let out = work.join("spread.smf");
        pack(&objects, &out, &["--reloadable"]);
        std::fs::read(out).unwrap()
    };
    let (mut v1, mut v2) = (build_o2(&v1_source), build_o2(&v2_source));
    if !fingerprints {
        (v1, v2) = (without_fingerprints(v1), without_fingerprints(v2));
    }

    // The test means something only if each `stable_*` function's bytes differ.
    let bytes_of = |file: &[u8], name: &str| {
        let module = smf_format::Module::parse(file).unwrap();
        let symbol = module.lookup(name).unwrap();
        let section = &module.sections()[symbol.section.unwrap() as usize];
        let start = (symbol.value - section.vaddr) as usize;
        section.data[start..start + symbol.size as usize].to_vec()
    };
    let stable = [
        "stable_call",
        "stable_tail",
        "stable_global",
        "stable_string",
        "stable_import",
        "stable_address",
        "stable_branches",
    ];
    for name in stable {
        let (old, new) = (bytes_of(&v1, name), bytes_of(&v2, name));
        assert_eq!(old.len(), new.len(), "{name}");
        assert_ne!(
            old, new,
            "{name}'s code is the same bytes; the test checks nothing"
        );
    }

    let path = dir.path().join("spread.smf");
    install(&path, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources.
    unsafe { registry.load(&path) }.unwrap();
    install(&path, &v2);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.added, ["inserted"], "{report}");
    assert!(report.removed.is_empty(), "{report}");
    let mut changed = report.changed.clone();
    changed.sort();
    assert_eq!(changed, ["edited", "redirect", "retarget"], "{report}");

    // The new version runs: what the report calls unchanged behaves as before.
    type F1 = extern "C" fn(i64) -> i64;
    let get = |name: &str| {
        // SAFETY: `long name(long)` in both versions.
        unsafe { report.module.get::<F1>(name) }.unwrap()
    };
    assert_eq!((*get("stable_call"))(2), (2 * 5 + 3) + (2 * 3 + 4) + 3);
    assert_eq!((*get("stable_tail"))(2), 3 * 5 + 4);
    assert_eq!((*get("stable_branches"))(4), 1 + (5 + 2) + 3 + (15 + 4));
    assert_eq!((*get("redirect"))(1), 3 + 3);
    // SAFETY: `long (void)` in both versions.
    let retarget = unsafe { report.module.get::<extern "C" fn() -> i64>("retarget") }.unwrap();
    assert_eq!((*retarget)(), 70);
}

#[test]
fn without_the_hash_check_a_reload_trusts_the_stored_hash() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "lib", LIB_V1);
    let path = dir.path().join("lib.smf");
    install(&path, &v1);
    // The last byte changed, the stored hash not: the same version as far as the header says.
    let mut damaged = v1.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources.
    unsafe { registry.load(&path) }.unwrap();
    install(&path, &damaged);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(report.unchanged, "the file was hashed: {report}");

    // With the check on, the file is hashed, which shows the change and refuses it.
    let checked = Registry::with_options(LoadOptions::default().with_verify_hash(true));
    install(&path, &v1);
    // SAFETY: as above.
    unsafe { checked.load(&path) }.unwrap();
    install(&path, &damaged);
    // SAFETY: as above.
    let error = format!("{:#}", unsafe { checked.reload(&path) }.unwrap_err());
    assert!(error.contains("module hash mismatch"), "{error}");
}

/// By default a reloadable module does not depend on its file once loaded: a build that
/// writes its output in place (truncating the file, then writing the new module into it)
/// while the module runs changes nothing the running version executes or reads, and the
/// reload that follows loads the new content and keeps the state. A module mapped from its
/// file (`LoadOptions::with_map_reloadable`) would fault (`SIGBUS`) at its next call after
/// the truncation: its code pages are the file's, and the file no longer has them.
#[test]
fn rewriting_a_loaded_module_file_in_place_leaves_the_running_version_intact() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "lib", LIB_V1);
    let v2 = build(dir.path(), "lib", LIB_V2);
    let lib = dir.path().join("lib.smf");
    install(&lib, &v1);
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; rewriting its file in place is
    // what this test checks the default options allow.
    unsafe { registry.load(&lib) }.unwrap();
    // SAFETY: `long f(void)` in every version.
    let version = unsafe { registry.current::<Fn0>(&lib, "version") }.unwrap();
    // SAFETY: as above.
    let bump = unsafe { registry.current::<Fn0>(&lib, "bump") }.unwrap();
    assert_eq!((*bump.pin())(), 1);

    // Truncated, as a build opening its output with O_TRUNC leaves it, then rewritten.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&lib)
        .unwrap();
    file.sync_all().unwrap();
    assert_eq!(
        (*version.pin())(),
        1,
        "the running code, with its file empty"
    );
    assert_eq!((*bump.pin())(), 2);
    drop(file);
    install(&lib, &v2);
    assert_eq!(
        (*version.pin())(),
        1,
        "the running code, with its file rewritten"
    );
    assert_eq!((*bump.pin())(), 3);

    // SAFETY: as above.
    let report = unsafe { registry.reload(&lib) }.unwrap();
    assert!(!report.unchanged);
    assert_eq!((*version.pin())(), 2);
    assert_eq!((*bump.pin())(), 4, "the counter was kept");
}

/// Replaces `path` by `bytes` the way a build that renames does: a running mapped version
/// keeps its file.
fn replace(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// A new version whose symbol table says other things than its code (any value, size,
/// kind, binding, section, name or stored name hash in any entry, the local ones the parse
/// does not check among them; or a wrong function fingerprint) never crashes or hangs a
/// reload, read or mapped: each is refused or replaces the running version, whose own
/// table may then be the lying one the next reload arranges and moves pointers out of.
/// What the module's code makes of a table that lies about it is the module's business:
/// none of it runs here but its constructors, which these tables do not reach.
#[test]
fn a_new_version_whose_symbol_table_lies_never_crashes_a_reload() {
    use smf_format::{Module, SectionKind, compute_module_hash, raw::MODULE_HASH_RANGE};
    let dir = tempfile::tempdir().unwrap();
    let source = |n: i32| {
        format!(
            "static long one(void) {{ return {n}; }}\n\
             static long two(void) {{ return {n} * 2; }}\n\
             static long (*table[3])(void) = {{ one, two, one }};\n\
             static long slots[8];\n\
             long *cursor = &slots[3];\n\
             const char *label = \"label\";\n\
             long probe(void) {{ *cursor += 1; return table[0]() + table[1]() + slots[3]; }}\n"
        )
    };
    let v1 = build(dir.path(), "liar", &source(1));
    let v2 = build(dir.path(), "liar", &source(2));
    let (symtab, fingerprints) = {
        let parsed = Module::parse(&v2).unwrap();
        let range = |kind| {
            parsed.sections().iter().find(|s| s.kind == kind).map(|s| {
                let start = s.file_offset as usize;
                start..start + s.file_size as usize
            })
        };
        (
            range(SectionKind::SymTab).unwrap(),
            range(SectionKind::Fingerprints),
        )
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Emulated, a few dozen of each mode; natively, a few hundred.
    let count = if std::env::var_os("SMF_TEST_RUNNER").is_some() {
        40
    } else {
        300
    };
    let (mut refused, mut replaced) = (0, 0);
    for mapped in [false, true] {
        let path = dir.path().join(format!("liar-{mapped}.smf"));
        replace(&path, &v1);
        let registry = Registry::with_options(LoadOptions::default().with_map_reloadable(mapped));
        // SAFETY: modules this test built from its own sources (the mutants' code is theirs,
        // and none of it runs but their constructors); files are replaced by renames.
        unsafe { registry.load(&path) }.unwrap();
        for _ in 0..count {
            let mut bytes = v2.clone();
            // One field of one entry: (offset in the 40-byte entry, width).
            const FIELDS: [(usize, usize); 9] = [
                (0, 4),
                (4, 4),
                (8, 1),
                (9, 1),
                (12, 4),
                (16, 8),
                (24, 8),
                (32, 4),
                (36, 4),
            ];
            let entries = symtab.len() / 40;
            let target = match &fingerprints {
                Some(table) if next() % 8 == 0 => {
                    let at = table.start + (next() as usize % (table.len() / 16)) * 16;
                    (at + 8, 8)
                }
                _ => {
                    let (offset, width) = FIELDS[next() as usize % FIELDS.len()];
                    (
                        symtab.start + (next() as usize % entries) * 40 + offset,
                        width,
                    )
                }
            };
            let (at, width) = target;
            let value: u64 = match next() % 4 {
                0 => next(),
                1 => next() % 16,
                2 => u64::MAX - next() % 4,
                _ => {
                    let mut old = [0u8; 8];
                    old[..width].copy_from_slice(&bytes[at..at + width]);
                    u64::from_le_bytes(old)
                        .wrapping_add(next() % 64)
                        .wrapping_sub(32)
                }
            };
            bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            let hash = compute_module_hash(&bytes).unwrap();
            bytes[MODULE_HASH_RANGE].copy_from_slice(&hash);
            replace(&path, &bytes);
            // SAFETY: as above.
            match unsafe { registry.reload(&path) } {
                Ok(_) => replaced += 1,
                Err(_) => refused += 1,
            }
            assert!(registry.get(&path).is_some(), "the module is still loaded");
        }
    }
    // Both outcomes happen: locals' lies pass the parse, exports' mostly do not.
    assert!(
        refused > 0 && replaced > 0,
        "{refused} refused, {replaced} replaced"
    );
}
