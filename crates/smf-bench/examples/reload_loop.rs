//! Reloads SQLite's `--reloadable` module in a loop, for profiling a reload with `perf`:
//! `cargo run --release -p smf-bench --example reload_loop -- [read|mapped] [link|copy] [N]
//! [settle|-] [sqlite|lua] [so|-]`. `link` replaces the live file by a link to the other
//! version's file (as the benchmark does), `copy` by a fresh copy renamed over it (as a build
//! does); `settle` sleeps 200 µs before each reload, as the benchmark does, so that each
//! starts with what the sleep left in the caches. Reloads SQLite's module, or Lua's. `so`
//! puts before each reload what the benchmark's other side does (a 200 µs sleep, then
//! `dlclose` of one version's shared library, `dlopen` of the other's and `dlsym`), which
//! leaves the caches, and the dynamic linker's set of loaded objects, as the benchmark's
//! reloads find them; it prints that side's median too. Prints the median and the range of
//! the reload times.

use std::ffi::CString;
use std::path::Path;
use std::time::Instant;

use simple_loader::{LoadOptions, Registry};
use smf_bench::{fixture, native, realcode};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let mapped = args.get(1).is_some_and(|a| a == "mapped");
    let copy = args.get(2).is_some_and(|a| a == "copy");
    let n: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    let settle = args.get(4).is_some_and(|a| a == "settle");
    let lua = args.get(5).is_some_and(|a| a == "lua");
    let so = args.get(6).is_some_and(|a| a == "so");
    let dir = Path::new("/tmp/perfreload-loop");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    // Built once: later runs reuse the modules.
    let name = if lua { "lua" } else { "sqlite" };
    let (p1, p2) = (
        dir.join(format!("{name}-reload1.smf")),
        dir.join(format!("{name}-reload2.smf")),
    );
    // The shared libraries of the same versions, as `dlopen` takes their paths.
    let (s1, s2) = (
        dir.join(format!("{name}-reload1.so")),
        dir.join(format!("{name}-reload2.so")),
    );
    let library = realcode::by_name(name)?;
    let entry = CString::new(library.entry).map_err(|e| e.to_string())?;
    if ![&p1, &p2, &s1, &s2].iter().all(|p| p.exists()) {
        realcode::build(dir, library)?;
    }
    let c_path =
        |path: &Path| CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string());
    let shared = [c_path(&s1)?, c_path(&s2)?];
    let (v1, v2) = (
        std::fs::read(&p1).map_err(|e| e.to_string())?,
        std::fs::read(&p2).map_err(|e| e.to_string())?,
    );
    let live = dir.join("live.smf");
    let replace = |i: usize| -> Result<(), String> {
        let (path, bytes) = if i % 2 == 0 { (&p2, &v2) } else { (&p1, &v1) };
        if copy {
            fixture::write_atomically(&live, bytes)
        } else {
            fixture::replace_by_link(&live, path)
        }
    };
    fixture::replace_by_link(&live, &p1)?;
    let registry = Registry::with_options(LoadOptions::default().with_map_reloadable(mapped));
    // SAFETY: SQLite's module, built by this program.
    unsafe { registry.load(&live) }.map_err(|e| e.to_string())?;
    let mut library = if so {
        Some(native::Library::open(&shared[0])?)
    } else {
        None
    };
    let mut system = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    let mut faults = Vec::with_capacity(n);
    for i in 0..n {
        if so {
            std::thread::sleep(std::time::Duration::from_micros(200));
            let start = Instant::now();
            drop(library.take());
            let next = native::Library::open(&shared[(i + 1) % 2])?;
            std::hint::black_box(next.symbol(&entry));
            system.push(start.elapsed().as_nanos() as u64);
            library = Some(next);
        }
        replace(i)?;
        if settle {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let (c0, f0) = thread_cpu();
        let start = Instant::now();
        // SAFETY: as above.
        let report = unsafe { registry.reload(&live) }.map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_nanos() as u64);
        let (c1, f1) = thread_cpu();
        cpu.push(c1 - c0);
        faults.push(f1 - f0);
        assert!(!report.unchanged);
    }
    for v in [&mut times, &mut cpu, &mut faults, &mut system] {
        v.sort_unstable();
    }
    if so {
        println!(
            "dlclose + dlopen + dlsym x{n}: wall median {} µs",
            system[n / 2] / 1000
        );
    }
    println!(
        "{} {} x{n}: wall median {} µs (range {}..{}), thread cpu median {} µs (range {}..{}), minor faults median {}",
        if mapped { "mapped" } else { "read" },
        if copy { "copy" } else { "link" },
        times[n / 2] / 1000,
        times[0] / 1000,
        times[n - 1] / 1000,
        cpu[n / 2] / 1000,
        cpu[0] / 1000,
        cpu[n - 1] / 1000,
        faults[n / 2],
    );
    Ok(())
}

/// The calling thread's CPU time (ns) and minor page faults so far.
fn thread_cpu() -> (u64, u64) {
    // SAFETY: plain system calls writing into local structures.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        (
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
            usage.ru_minflt as u64,
        )
    }
}
