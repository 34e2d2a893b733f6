//! The perf map: `/tmp/perf-PID.map`, where `perf report` looks up the names of code that no
//! ELF file describes, one line per function: `START SIZE name`, in hexadecimal.
//!
//! Opt-in: set `SMF_PERF_MAP=1` in the environment, or call [`enable_perf_map`]. Lines are
//! appended as modules load; perf has no way to forget a range, so an unloaded module's
//! lines stay (a later module mapped at the same addresses appends its own, which perf
//! prefers).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::symbolize::ModuleSymbols;

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static FILE: Mutex<()> = Mutex::new(());

/// Turns the perf map on (or off) for modules loaded from now on, whatever `SMF_PERF_MAP`
/// says.
pub fn enable_perf_map(on: bool) {
    STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// The path of this process's perf map.
pub fn perf_map_path() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
}

fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var_os("SMF_PERF_MAP").is_some_and(|v| !v.is_empty() && v != "0");
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Appends the functions of a module, if the perf map is on. Failing to write it only costs
/// profiler names, so errors are reported once on stderr and otherwise ignored.
pub(crate) fn record(symbols: &ModuleSymbols) {
    if !enabled() || symbols.functions().is_empty() {
        return;
    }
    let mut text = String::new();
    for function in symbols.functions() {
        text.push_str(&format!(
            "{:x} {:x} {}\n",
            function.start,
            function.end - function.start,
            symbols.name_of(function)
        ));
    }
    let _guard = FILE.lock().unwrap_or_else(|p| p.into_inner());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(perf_map_path())
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = written {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!(
                "simple-loader: cannot write {}: {error}",
                perf_map_path().display()
            )
        });
    }
}
