//! Concurrency: 8 threads loading, resolving, calling, unloading and reloading the same and
//! different modules through one `simple_loader::Registry` at once.
//!
//! Four small reloadable modules are compiled from C at test time, each in two versions. The
//! constructor and destructor of every module call back into the host (functions the test
//! defines with `Registry::define`) with the address of a static of their own image, so the
//! test sees every instance the loader creates and destroys. It checks:
//! - no double load: 8 threads loading the same path at the same instant all get the same
//!   module, whose constructor ran once (repeated over many rounds and paths);
//! - no double constructor or destructor, and no destructor of an instance that was never
//!   constructed, across thousands of mixed operations;
//! - calls through handles always reach the module they were asked of;
//! - no deadlock: every phase must finish within a timeout.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use simple_loader::{Module, Registry};

const MODULES: usize = 4;
const THREADS: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(120);

fn source(id: usize, version: usize) -> String {
    format!(
        r#"
void conc_ctor(long id, void *instance);
void conc_dtor(long id, void *instance);
extern long conc_peer(void) __attribute__((weak));
static int instance_tag;
__attribute__((constructor)) static void up(void) {{ conc_ctor({id}, &instance_tag); }}
__attribute__((destructor)) static void down(void) {{ conc_dtor({id}, &instance_tag); }}
long conc_id_{id}(void) {{ return {id} * 100 + {version}; }}
long conc_has_peer_{id}(void) {{ return conc_peer != 0; }}
{peer}
"#,
        peer = if id == 0 {
            "long conc_peer(void) { return 7; }"
        } else {
            ""
        }
    )
}

/// What the host has seen: live instances (image address of `instance_tag` → module id),
/// and the totals.
#[derive(Default)]
struct Seen {
    live: HashMap<usize, i64>,
    constructed: usize,
    destroyed: usize,
    errors: Vec<String>,
}

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Mutex::default)
}

extern "C" fn conc_ctor(id: i64, instance: usize) {
    let mut seen = seen().lock().unwrap();
    seen.constructed += 1;
    if let Some(previous) = seen.live.insert(instance, id) {
        seen.errors.push(format!(
            "constructor of module {id} ran twice on instance {instance:#x} (was {previous})"
        ));
    }
}

extern "C" fn conc_dtor(id: i64, instance: usize) {
    let mut seen = seen().lock().unwrap();
    seen.destroyed += 1;
    if seen.live.remove(&instance) != Some(id) {
        seen.errors.push(format!(
            "destructor of module {id} on instance {instance:#x}, which is not a live instance"
        ));
    }
}

struct Files {
    dir: PathBuf,
    /// The path loaded, and its two versions.
    paths: Vec<PathBuf>,
    versions: Vec<[PathBuf; 2]>,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("concurrency");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = Vec::new();
        let mut versions = Vec::new();
        for id in 0..MODULES {
            let built = [1, 2].map(|version| {
                let c = dir.join(format!("m{id}_v{version}.c"));
                std::fs::write(&c, source(id, version)).unwrap();
                let objects = compile(&[c], &dir.join(format!("obj{id}_{version}")), &["-O2"]);
                let module = dir.join(format!("m{id}.v{version}.smf"));
                pack(&objects, &module, &["--reloadable"]);
                module
            });
            let path = dir.join(format!("m{id}.smf"));
            std::fs::copy(&built[0], &path).unwrap();
            paths.push(path);
            versions.push(built);
        }
        Files {
            dir,
            paths,
            versions,
        }
    })
}

fn registry() -> Registry {
    let registry = Registry::new();
    // SAFETY: both are `extern "C" fn(long, void *)`, as the modules declare them, and live
    // for the whole program.
    unsafe {
        registry.define("conc_ctor", conc_ctor as extern "C" fn(i64, usize) as usize);
        registry.define("conc_dtor", conc_dtor as extern "C" fn(i64, usize) as usize);
    }
    registry
}

/// Calls `conc_id_<id>` of `module`: id * 100 + version.
fn call_id(module: &Module, id: usize) -> i64 {
    // SAFETY: `conc_id_<id>` is `long f(void)` in the module's C source; `module` is held.
    let f = unsafe { module.get::<extern "C" fn() -> i64>(&format!("conc_id_{id}")) }.unwrap();
    f()
}

/// Runs `body` on a thread and fails if it does not finish within [`TIMEOUT`]: a deadlock.
fn with_timeout(what: &str, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(TIMEOUT) {
        Ok(()) => worker.join().unwrap(),
        // The worker panicked: join to report its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {TIMEOUT:?}: deadlock")
        }
    }
}

fn check_seen() -> (usize, usize) {
    let seen = seen().lock().unwrap();
    assert!(seen.errors.is_empty(), "{:#?}", seen.errors);
    assert!(seen.destroyed <= seen.constructed);
    (seen.constructed, seen.destroyed)
}

/// One test function, so the phases never overlap and the host counters stay exact.
#[test]
fn eight_threads_load_resolve_unload_and_reload_at_once() {
    let files = files();
    let registry = Arc::new(registry());

    // Phase 1: no double load. All threads load the same path at the same instant.
    {
        let registry = Arc::clone(&registry);
        with_timeout("simultaneous loads", move || {
            for round in 0..40 {
                let id = round % MODULES;
                let path = files.paths[id].clone();
                let before = check_seen().0;
                let barrier = Barrier::new(THREADS);
                let modules: Vec<Arc<Module>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..THREADS)
                        .map(|_| {
                            scope.spawn(|| {
                                barrier.wait();
                                // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
                                unsafe { registry.load(&path) }.unwrap()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                for module in &modules {
                    assert!(
                        Arc::ptr_eq(module, &modules[0]),
                        "round {round}: two threads got two different modules for one path"
                    );
                    assert_eq!(call_id(module, id) / 100, id as i64);
                }
                assert_eq!(
                    check_seen().0 - before,
                    1,
                    "round {round}: {THREADS} simultaneous loads must construct one instance"
                );
                assert!(registry.unload(&path).unwrap());
            }
        });
    }

    // Phase 2: everything at once, on the same and different modules, with files replaced
    // (atomically, by rename) between versions so that reloads load new code.
    let operations = Arc::new(AtomicUsize::new(0));
    {
        let registry = Arc::clone(&registry);
        let operations = Arc::clone(&operations);
        with_timeout("mixed operations", move || {
            std::thread::scope(|scope| {
                for thread in 0..THREADS {
                    let registry = &registry;
                    let operations = &operations;
                    scope.spawn(move || {
                        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (thread as u64 + 1);
                        let mut next = move || {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            state
                        };
                        let mut held: Vec<(usize, Arc<Module>)> = Vec::new();
                        for step in 0..250 {
                            // Even threads share module 0 and 1 most of the time; odd threads
                            // spread over all four.
                            let id = if thread % 2 == 0 {
                                (next() % 2) as usize
                            } else {
                                (next() % MODULES as u64) as usize
                            };
                            let path = &files.paths[id];
                            match next() % 8 {
                                0..=2 => {
                                    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
                                    let module = unsafe { registry.load(path) }.unwrap();
                                    assert_eq!(call_id(&module, id) / 100, id as i64);
                                    held.push((id, module));
                                }
                                3 => {
                                    registry.unload(path).unwrap();
                                }
                                4 => {
                                    // NotLoaded when another thread just unloaded it.
                                    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
                                    let _ = unsafe { registry.reload(path) };
                                }
                                5 => {
                                    let version = (next() % 2) as usize;
                                    let temp = files.dir.join(format!("t{thread}_{step}.smf"));
                                    std::fs::copy(&files.versions[id][version], &temp).unwrap();
                                    std::fs::rename(&temp, path).unwrap();
                                    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
                                    let _ = unsafe { registry.reload(path) };
                                }
                                6 => {
                                    let _ = registry.resolve(&format!("conc_id_{id}"));
                                    if let Some(module) = registry.get(path) {
                                        let value = call_id(&module, id);
                                        assert!(
                                            value == id as i64 * 100 + 1
                                                || value == id as i64 * 100 + 2
                                        );
                                    }
                                    let _ = registry.modules();
                                }
                                _ => {
                                    for (id, module) in held.drain(..) {
                                        assert_eq!(call_id(&module, id) / 100, id as i64);
                                    }
                                }
                            }
                            operations.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        });
    }
    assert_eq!(operations.load(Ordering::Relaxed), THREADS * 250);
    let (constructed, destroyed) = check_seen();
    assert!(constructed > 40, "phase 2 loaded modules: {constructed}");

    // Unloading everything and dropping the registry destroys instances, never twice.
    for path in &files.paths {
        registry.unload(path).unwrap();
    }
    // Dropping the registry frees what it held, old versions waiting for reclamation too.
    drop(registry);
    let (constructed_after, destroyed_after) = check_seen();
    assert_eq!(
        constructed_after, constructed,
        "nothing loads after the end"
    );
    assert!(destroyed_after >= destroyed);
    // Every instance is destroyed once nothing refers to it: a module unloaded while others
    // call it through slots lives as long as those slots, which its importers hold, and no
    // module holds the registry's bookkeeping (which would be a cycle).
    assert_eq!(destroyed_after, constructed_after, "instances leaked");
    println!(
        "{} operations; {constructed} instances constructed, {destroyed_after} destroyed",
        THREADS * 250 + 40 * THREADS
    );
}
