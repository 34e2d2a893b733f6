//! Loads SQLite's module (or Lua's; hash not checked, as by default) and its shared library in
//! turn, in a loop, for profiling a load with `perf`:
//! `cargo run --release -p smf-bench --example load_loop -- [smf|so|both] [N] [sqlite|lua]`.
//! Each round loads, looks up `sqlite3_open` (`luaL_newstate`) and unloads. Prints the median
//! and the range of load-to-first-symbol times of each side.

use std::ffi::CString;
use std::path::Path;
use std::time::Instant;

use simple_loader::{LoadOptions, load};
use smf_bench::{native, realcode};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("both", String::as_str);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let lua = args.get(3).is_some_and(|a| a == "lua");
    let dir = Path::new("/tmp/perfload-loop");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    // Built once: later runs reuse the module and the library.
    let (name, entry) = if lua {
        ("lua", "luaL_newstate")
    } else {
        ("sqlite", "sqlite3_open")
    };
    let (smf, so) = (
        dir.join(format!("{name}.smf")),
        dir.join(format!("{name}.so")),
    );
    if !smf.exists() || !so.exists() {
        realcode::build(dir, realcode::by_name(name)?)?;
    }
    let c_entry = CString::new(entry).map_err(|e| e.to_string())?;
    let so = CString::new(so.to_str().ok_or("path")?).map_err(|e| e.to_string())?;
    let options = LoadOptions::default();
    let (mut smf_times, mut so_times) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        if which != "so" {
            let start = Instant::now();
            // SAFETY: SQLite's module, built by this program.
            let module = unsafe { load(&smf, &options, None) }.map_err(|e| e.to_string())?;
            let open = module.export(entry).map(|(_, address)| address);
            smf_times.push(start.elapsed().as_nanos() as u64);
            assert!(open.is_some());
            drop(module);
        }
        if which != "smf" {
            let start = Instant::now();
            let library = native::Library::open(&so)?;
            let open = library.symbol(&c_entry);
            so_times.push(start.elapsed().as_nanos() as u64);
            assert!(!open.is_null());
            library.close();
        }
    }
    for (side, times) in [("smf", &mut smf_times), ("so", &mut so_times)] {
        if times.is_empty() {
            continue;
        }
        times.sort_unstable();
        println!(
            "{side} x{n}: load to first symbol median {:.1} µs (range {:.1}..{:.1})",
            times[n / 2] as f64 / 1000.0,
            times[0] as f64 / 1000.0,
            times[n - 1] as f64 / 1000.0,
        );
    }
    Ok(())
}
