//! What keeps module code mapped, tried from safe code whose only `unsafe` is the documented
//! one (the function type matches the C definition, module files are not rewritten in
//! place): handles and importers outlive their registry, unloads free what nothing reaches,
//! and load/unload churn does not pile mappings up.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use common::*;
use simple_loader::Registry;

type Fn0 = extern "C" fn() -> i64;

const LIB_V1: &str = r#"
long counter;
long version(void) { return 1; }
long bump(void) { return ++counter; }
"#;

const LIB_V2: &str = r#"
long counter;
long version(void) { return 2; }
long bump(void) { return ++counter; }
"#;

const APP: &str = r#"
extern long version(void);
extern long bump(void);
long app_version(void) { return version() * 100; }
long app_bump(void) { return bump(); }
"#;

/// `name.c` compiled and packed (with `pack_flags`) into `dir/name.smf`; returns its path.
fn build(dir: &Path, name: &str, source: &str, pack_flags: &[&str]) -> PathBuf {
    let work = dir.join(format!("build-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    let c = work.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let objects = compile(&[c], &work, &["-O1"]);
    let out = dir.join(format!("{name}.smf"));
    pack(&objects, &out, pack_flags);
    out
}

struct Files {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    lib_v2: PathBuf,
    app: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let lib = build(dir.path(), "lib", LIB_V1, &["--reloadable"]);
    let lib_v2 = build(dir.path(), "lib_v2", LIB_V2, &["--reloadable"]);
    let app = build(dir.path(), "app", APP, &[]);
    Files {
        _dir: dir,
        lib,
        lib_v2,
        app,
    }
}

/// Replaces the module file by renaming a new one over it, as compilers and linkers do.
fn replace(path: &Path, with: &Path, tag: usize) {
    let staged = path.with_extension(format!("staged{tag}"));
    std::fs::copy(with, &staged).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

fn load(registry: &Registry, path: &Path) -> Arc<simple_loader::Module> {
    // SAFETY: the test's modules are built from the C above and never rewritten in place.
    unsafe { registry.load(path) }.unwrap()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_current_handle_outlives_its_registry() {
    let f = files();
    let registry = Registry::new();
    load(&registry, &f.lib);
    // SAFETY: `long version(void)` in every version.
    let version = unsafe { registry.current::<Fn0>(&f.lib, "version") }.unwrap();
    replace(&f.lib, &f.lib_v2, 0);
    // SAFETY: the new file is the C above, not rewritten in place.
    unsafe { registry.reload(&f.lib) }.unwrap();
    drop(registry);
    assert_eq!(
        (*version.pin())(),
        2,
        "the handle keeps the last version the registry had"
    );
}

#[test]
fn an_importer_the_host_keeps_outlives_the_registry() {
    let f = files();
    let registry = Registry::new();
    load(&registry, &f.lib);
    let app = load(&registry, &f.app);
    drop(registry);
    // SAFETY: `long app_version(void)`, `long app_bump(void)`.
    let (app_version, app_bump) = unsafe {
        (
            app.get::<Fn0>("app_version").unwrap(),
            app.get::<Fn0>("app_bump").unwrap(),
        )
    };
    assert_eq!(app_version(), 100, "the call crosses a slot into lib");
    assert_eq!(app_bump(), 1);
    assert_eq!(app_bump(), 2, "lib's state lives on with it");
}

#[test]
fn unloading_frees_a_version_that_had_slots() {
    let f = files();
    let registry = Registry::new();
    let lib = Arc::downgrade(&load(&registry, &f.lib));
    // Resolving a function of a reloadable module makes its slot.
    assert!(registry.resolve("version").is_some());
    // SAFETY: `long version(void)`.
    let version = unsafe { registry.current::<Fn0>(&f.lib, "version") }.unwrap();
    assert!(registry.unload(&f.lib).unwrap());
    assert!(lib.upgrade().is_some(), "the handle still reaches it");
    assert_eq!((*version.pin())(), 1);
    drop(version);
    registry.collect();
    assert!(
        lib.upgrade().is_none(),
        "nothing reaches the unloaded version: it is freed"
    );
    assert_eq!(registry.resolve("version"), None);
}

#[test]
fn an_importer_keeps_an_unloaded_provider_and_lets_it_go_with_it() {
    let f = files();
    let registry = Registry::new();
    let lib = Arc::downgrade(&load(&registry, &f.lib));
    let app = load(&registry, &f.app);
    registry.unload(&f.lib).unwrap();
    registry.collect();
    // SAFETY: `long app_version(void)`.
    assert_eq!(unsafe { app.get::<Fn0>("app_version") }.unwrap()(), 100);
    assert!(lib.upgrade().is_some());
    registry.unload(&f.app).unwrap();
    drop(app);
    registry.collect();
    assert!(lib.upgrade().is_none(), "freed with its last importer");
}

/// Eight threads load, resolve, call, reload and unload the same modules thousands of times;
/// the process's mappings must not grow with the number of cycles.
#[test]
fn load_unload_churn_keeps_mappings_bounded() {
    const THREADS: usize = 8;
    // Under memcheck (below), a few cycles: each runs about fifty times slower there.
    let cycles = if under_memcheck() { 10 } else { 400 };
    let f = files();
    std::fs::copy(&f.lib, f.lib.with_extension("v1")).unwrap();
    let registry = Arc::new(Registry::new());
    let cycle = |registry: &Registry, thread: usize, i: usize| {
        let lib = load(registry, &f.lib);
        let _ = registry.resolve("version");
        if let Ok(version) =
            // SAFETY: `long version(void)` in every version.
            unsafe { registry.current::<Fn0>(&f.lib, "version") }
        {
            let v = (*version.pin())();
            assert!(v == 1 || v == 2, "version() returned {v}");
        }
        if (thread + i) % 3 == 0 {
            if let Ok(app) =
                // SAFETY: as `load`.
                unsafe { registry.load(&f.app) }
            {
                // SAFETY: `long app_version(void)`.
                let v = unsafe { app.get::<Fn0>("app_version") }.unwrap()();
                assert!(v == 100 || v == 200, "app_version() returned {v}");
                registry.unload(&f.app).unwrap();
            }
        }
        if (thread + i) % 5 == 0 {
            let lib_v1 = f.lib.with_extension("v1");
            replace(&f.lib, if i % 2 == 0 { &f.lib_v2 } else { &lib_v1 }, thread);
            // Another thread may have unloaded it meanwhile.
            // SAFETY: as `load`.
            let _ = unsafe { registry.reload(&f.lib) };
        }
        drop(lib);
        registry.unload(&f.lib).unwrap();
    };
    let run = |cycles: usize| {
        let barrier = Arc::new(Barrier::new(THREADS));
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (registry, barrier) = (Arc::clone(&registry), Arc::clone(&barrier));
                let cycle = &cycle;
                scope.spawn(move || {
                    barrier.wait();
                    for i in 0..cycles {
                        cycle(&registry, thread, i);
                    }
                });
            }
        });
        registry.collect();
    };
    // Warm up: allocator arenas of eight threads, slot pages, the C library's own state.
    run(20);
    let before = mappings();
    run(cycles);
    let after = mappings();
    assert!(
        after <= before + 16,
        "mappings grew from {before} to {after} over {} cycles",
        THREADS * cycles
    );
    assert!(registry.modules().is_empty());
}

/// C that calls a data symbol of the C library as a function: the packer records a `func`
/// import (the object calls it), and the loader refuses to bind it to libc's `environ`,
/// which the dynamic linker says is data, instead of letting the call jump into it.
#[test]
fn a_data_symbol_called_as_a_function_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(
        dir.path(),
        "calls_environ",
        "extern void environ(void);\nlong call_environ(void) { environ(); return 0; }\n",
        &[],
    );
    let registry = Registry::new();
    // SAFETY: refused before any of its code runs.
    let error = unsafe { registry.load(&path) }.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("calls_environ.smf")
            && message.contains("`environ`")
            && message.contains("calls it as a function")
            && message.contains("libc.so"),
        "{message}"
    );
}

/// Set in the copy of this test binary that runs under memcheck.
const UNDER_MEMCHECK: &str = "SMF_LIFETIME_UNDER_MEMCHECK";

fn under_memcheck() -> bool {
    std::env::var_os(UNDER_MEMCHECK).is_some()
}

/// Every test above once more, under valgrind memcheck: the calls through handles, slots and
/// importers after unloads, reloads and a dropped registry, and the churn, must read, write
/// and execute only memory that is mapped and valid. Needs valgrind (`.ci/run` installs it);
/// without it the test says so and passes, except under CI (`CI` set).
#[test]
fn the_lifetime_tests_run_clean_under_memcheck() {
    if under_memcheck() {
        return;
    }
    let valgrind = std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !valgrind {
        assert!(
            std::env::var_os("CI").is_none(),
            "valgrind is not installed; .ci/run installs it"
        );
        eprintln!("memcheck: valgrind not found, skipped");
        return;
    }
    let output = std::process::Command::new("valgrind")
        .args(["--tool=memcheck", "-q", "--error-exitcode=99"])
        .arg(std::env::current_exe().unwrap())
        .args(["--test-threads=1"])
        .env(UNDER_MEMCHECK, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "under memcheck ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("test result: ok. 7 passed"), "{stdout}");
}
