//! What keeps module code mapped, tried from safe code whose only `unsafe` is the documented
//! one (the function type matches the C definition, module files are not rewritten in
//! place): handles and importers outlive their registry, unloads free what nothing reaches,
//! and load/unload churn does not pile mappings up.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

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
#[cfg_attr(
    cross_target,
    ignore = "valgrind cannot run programs of another architecture"
)]
fn the_lifetime_tests_run_clean_under_memcheck() {
    if under_memcheck()
        || common::skip_under_runner("valgrind cannot run programs of another architecture")
    {
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
    assert!(
        stdout.contains("test result: ok.") && stdout.contains(" 0 failed"),
        "{stdout}"
    );
}

/// Builds `sources` (one reloadable module per version, in order) and loads the first at
/// `dir/name.smf`; returns the path and the files of every version.
fn versions(dir: &Path, name: &str, sources: &[&str]) -> (PathBuf, Vec<PathBuf>) {
    let files: Vec<PathBuf> = sources
        .iter()
        .enumerate()
        .map(|(i, source)| {
            build(
                dir,
                &format!("{name}_v{}", i + 1),
                source,
                &["--reloadable"],
            )
        })
        .collect();
    let path = dir.join(format!("{name}.smf"));
    std::fs::copy(&files[0], &path).unwrap();
    (path, files)
}

/// After one reload, kept data points into version 1 (a string literal no symbol of version 2
/// corresponds to), which version 2 retains; after a second reload the pointer, copied as is,
/// still points into version 1, which version 3 must retain in turn.
#[test]
fn a_pointer_kept_over_two_reloads_keeps_the_version_it_points_into() {
    let dir = tempfile::tempdir().unwrap();
    let source = |n: u32| {
        format!(
            "const char *msg = \"literal-of-version-{n}-padding-padding\";\n\
             long first(void) {{ return msg[0] + msg[8]; }}\n\
             long which(void) {{ return {n}; }}\n"
        )
    };
    let sources: Vec<String> = (1..=3).map(source).collect();
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (path, files) = versions(dir.path(), "msg", &sources);
    let registry = Registry::new();
    load(&registry, &path);
    // SAFETY: `long first(void)` in every version.
    let first = unsafe { registry.current::<Fn0>(&path, "first") }.unwrap();
    for (i, file) in files.iter().enumerate().skip(1) {
        replace(&path, file, 0);
        // SAFETY: as `load`.
        let report = unsafe { registry.reload(&path) }.unwrap();
        assert!(report.kept.contains(&"msg".to_owned()), "{report}");
        assert!(report.retains_old, "version {}: {report}", i + 1);
        registry.collect();
        assert_eq!((*first.pin())(), i64::from(b'l' + b'o'));
    }
}

/// A label address inside a function (computed goto) kept in data must not be moved to the
/// same offset of the new function, which is some other instruction: the old code is retained
/// and the kept address still leads into it.
#[test]
fn a_code_address_inside_a_function_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = "void *labels[2];\n\
              long run(long i) {\n\
                if (!labels[0]) { labels[0] = &&l0; labels[1] = &&l1; }\n\
                goto *labels[i & 1];\n\
              l0: return 10;\n\
              l1: return 11;\n\
              }\n";
    let v2 = "void *labels[2];\n\
              volatile long spin;\n\
              long run(long i) {\n\
                for (long k = 0; k < 3; k++) spin += k * i;\n\
                if (!labels[0]) { labels[0] = &&l0; labels[1] = &&l1; }\n\
                goto *labels[i & 1];\n\
              l0: return 20 + spin * 0;\n\
              l1: return 21 + spin * 0;\n\
              }\n";
    let (path, files) = versions(dir.path(), "goto", &[v1, v2]);
    let registry = Registry::new();
    load(&registry, &path);
    // SAFETY: `long run(long)` in every version.
    let run = unsafe { registry.current::<extern "C" fn(i64) -> i64>(&path, "run") }.unwrap();
    assert_eq!((*run.pin())(0), 10);
    replace(&path, &files[1], 0);
    // SAFETY: as `load`.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(report.retains_old, "{report}");
    registry.collect();
    // The kept labels lead into version 1's code, which returns its own values.
    assert_eq!((*run.pin())(0), 10);
    assert_eq!((*run.pin())(1), 11);
}

static REENTERED: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();

extern "C" fn host_reenter() {
    if let Some(registry) = REENTERED.get() {
        let _ = registry.resolve("f");
        registry.collect();
    }
}

/// A new version refused at reload is dropped after the registry's lock is released: its
/// destructor may call back into the registry.
#[test]
fn a_refused_version_is_dropped_outside_the_registry_lock() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = "long f(void) { return 1; }\nlong g(void) { return 2; }\n";
    let v2 = "extern void host_reenter(void);\n\
              __attribute__((destructor)) static void fin(void) { host_reenter(); }\n\
              long f(void) { return 11; }\n";
    let (path, files) = versions(dir.path(), "refused", &[v1, v2]);
    let registry = Arc::clone(REENTERED.get_or_init(|| Arc::new(Registry::new())));
    // SAFETY: `host_reenter` is a `void (void)` function that lives for the whole test.
    unsafe { registry.define("host_reenter", host_reenter as extern "C" fn() as usize) };
    load(&registry, &path);
    // SAFETY: `long g(void)`.
    let g = unsafe { registry.current::<Fn0>(&path, "g") }.unwrap();
    replace(&path, &files[1], 0);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let reloading = Arc::clone(&registry);
    let reload_path = path.clone();
    std::thread::spawn(move || {
        // SAFETY: as `load`.
        let result = unsafe { reloading.reload(&reload_path) }.map(drop);
        done_tx.send(result.map_err(|e| format!("{e:#}"))).unwrap();
    });
    let result = done_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the reload deadlocked");
    let error = result.unwrap_err();
    assert!(error.contains("`g`"), "{error}");
    assert_eq!((*g.pin())(), 2, "version 1 still runs");
}

/// `reload_all` of a module and one that imports from it: the importer's new version binds
/// to the provider's slot, which the transaction retargets to the provider's new version.
#[test]
fn reload_all_replaces_a_provider_and_its_importer_together() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, lib_files) = versions(
        dir.path(),
        "provider",
        &[
            "long value(void) { return 1; }\n",
            "long value(void) { return 2; }\n",
        ],
    );
    let (app, app_files) = versions(
        dir.path(),
        "importer",
        &[
            "extern long value(void);\nlong app(void) { return 100 + value(); }\n",
            "extern long value(void);\nlong app(void) { return 200 + value(); }\n",
        ],
    );
    let registry = Registry::new();
    load(&registry, &lib);
    load(&registry, &app);
    // SAFETY: `long app(void)` in every version.
    let call = unsafe { registry.current::<Fn0>(&app, "app") }.unwrap();
    assert_eq!((*call.pin())(), 101);
    replace(&lib, &lib_files[1], 0);
    replace(&app, &app_files[1], 1);
    for order in [[&lib, &app], [&app, &lib]] {
        // SAFETY: as `load`.
        let reports =
            unsafe { registry.reload_all(&[order[0].as_path(), order[1].as_path()]) }.unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!((*call.pin())(), 202);
    }
}
