//! `smf-bench`: the same C code built as a shared library and as an SMF module, loaded by the
//! system loader (`dlopen`) and by `simple-loader`, measured side by side in one run.
//!
//! Every comparison is **interleaved**: each sample runs one operation of every side, in an
//! order that rotates from sample to sample, so that drift in the machine's speed (other
//! processes, frequency, caches) falls on all sides alike. Tables report medians and the
//! ratio SMF / system, against the targets of issue 6. Run it with
//!
//! ```sh
//! cargo bench -p smf-bench                    # full run, a few minutes
//! SMF_BENCH_QUICK=1 cargo bench -p smf-bench  # every measurement, few samples, small sizes
//! SMF_BENCH_ONLY=load cargo bench -p smf-bench   # only sections whose name contains "load"
//! ```
//!
//! The inputs are generated (`csource`), compiled with `cc -O2 -fPIC -c`, then linked with
//! `cc -shared` and packed with `smf_pack` (`fixture`). Nothing is measured cold: both loaders
//! read files that are in the page cache.

pub mod csource;
pub mod fixture;
pub mod native;
pub mod realcode;
pub mod report;

use std::ffi::{CStr, CString, OsString};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use simple_loader::{LoadOptions, Module, Registry};
use smf_format::SectionKind;

use crate::csource::LibrarySpec;
use crate::fixture::Pair;
use crate::native::{Library, c_path};
use crate::report::{Row, Samples, Table, Target, Unit};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Few samples and small sizes: checks that every measurement runs, in seconds.
    pub quick: bool,
    /// A command line taking `smf pack`'s arguments after its own: the `smf-bench-pack`
    /// binary of this crate, preceded by an emulator when the benchmark runs under one.
    pub packer: Vec<OsString>,
    /// Only the sections whose name contains this.
    pub only: Option<String>,
}

impl Config {
    /// `SMF_BENCH_QUICK=1` and `SMF_BENCH_ONLY=name` from the environment.
    pub fn from_env(packer: Vec<OsString>) -> Config {
        Config {
            quick: std::env::var("SMF_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0"),
            packer,
            only: std::env::var("SMF_BENCH_ONLY")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }

    fn samples(&self, full: usize) -> usize {
        if self.quick { 3 } else { full }
    }

    fn wants(&self, section: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| section.contains(only))
    }

    fn small_spec(&self) -> LibrarySpec {
        LibrarySpec {
            files: 1,
            functions: 16,
            statements: 4,
            export_every: 4,
            version: 1,
        }
    }

    /// At least 500 KB of code and 10,000 load-time relocations in the full run.
    fn large_spec(&self) -> LibrarySpec {
        if self.quick {
            LibrarySpec {
                files: 2,
                functions: 24,
                statements: 4,
                export_every: 8,
                version: 1,
            }
        } else {
            LibrarySpec {
                files: 8,
                functions: 320,
                statements: 12,
                export_every: 8,
                version: 1,
            }
        }
    }
}

/// Everything a run printed: a description of the inputs and machine, then the tables.
#[derive(Debug, Default)]
pub struct Output {
    pub notes: Vec<String>,
    pub tables: Vec<Table>,
}

impl Output {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            out.push_str(note);
            out.push('\n');
        }
        for table in &self.tables {
            out.push('\n');
            out.push_str(&table.render());
        }
        out
    }

    /// Every row that has a target, with whether it was met.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &Row, bool)> {
        self.tables
            .iter()
            .flat_map(|t| t.rows.iter().map(move |r| (t.title.as_str(), r)))
            .filter_map(|(title, row)| row.met().map(|met| (title, row, met)))
    }
}

type Side<'a> = &'a mut dyn FnMut(bool) -> Result<(), String>;
type BoxedSide<'a> = Box<dyn FnMut(bool) -> Result<(), String> + 'a>;

/// Runs `warmup + samples` rounds; each round calls every side once, starting with side
/// `round % sides.len()`, and passes `true` once warm-up is over (the side records then).
fn interleave(samples: usize, warmup: usize, sides: &mut [Side<'_>]) -> Result<(), String> {
    let n = sides.len();
    for round in 0..warmup + samples {
        for i in 0..n {
            (sides[(round + i) % n])(round >= warmup)?;
        }
    }
    Ok(())
}

fn elapsed_ns(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64
}

fn options(verify_hash: bool) -> LoadOptions {
    LoadOptions::default().with_verify_hash(verify_hash)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs every section `config` asks for and returns the tables.
pub fn run(config: &Config) -> Result<Output, String> {
    let dir = tempfile::Builder::new()
        .prefix("smf-bench")
        .tempdir()
        .map_err(err)?;
    let dir = dir.path();
    let mut output = Output::default();
    output.notes.push(machine(config));

    if config.wants(REAL_SECTION) {
        output_real_code(config, dir, &mut output)?;
    }

    // The generated small and large libraries, for the sections that use them.
    if ["load", "lookup", "pack", "run", "memory"]
        .iter()
        .any(|section| config.wants(section))
    {
        progress("building the small and the large library (cc -O2 -fPIC, cc -shared, smf pack)");
        let small = fixture::build_pair(
            dir,
            "small",
            &csource::library(&config.small_spec()),
            &[],
            false,
        )?;
        let large = fixture::build_pair(
            dir,
            "large",
            &csource::library(&config.large_spec()),
            &[],
            false,
        )?;
        output.notes.push(describe("small", &small)?);
        output.notes.push(describe("large", &large)?);

        let mut main = Table::new("Load, look up, unload, pack, run", "system loader", "SMF");
        if config.wants("load") {
            progress("load to first symbol, unload");
            for (name, pair) in [("small", &small), ("large", &large)] {
                load_rows(
                    config,
                    name,
                    pair,
                    "bench_entry",
                    config.samples(if name == "small" { 400 } else { 150 }),
                    &mut main.rows,
                    LoadTargets {
                        checked: Some(Target::RatioAtMost(0.5)),
                        unchecked: Some(Target::RatioAtMost(0.5)),
                        faults: false,
                    },
                )?;
            }
        }
        if config.wants("lookup") {
            progress("symbol lookup");
            lookup_rows(config, &large, &mut main.rows)?;
        }
        if config.wants("pack") {
            progress("packing");
            for (name, pair) in [("small", &small), ("large", &large)] {
                pack_rows(config, name, pair, &mut main.rows)?;
            }
        }
        if config.wants("run") {
            progress("run speed");
            run_speed_rows(config, &large, &mut main.rows)?;
        }
        if !main.rows.is_empty() {
            output.tables.push(main);
        }
        if config.wants("memory") {
            progress("memory per module");
            output.tables.push(memory_table(
                config,
                dir,
                "generated code",
                &[
                    ("small", &small, c"bench_entry"),
                    ("large", &large, c"bench_entry"),
                ],
                false,
            )?);
        }
    }
    if config.wants("reload") || config.wants("slot") {
        progress("reload and calls through reload slots");
        output.tables.extend(reload_tables(config, dir)?);
    }
    if config.wants("scaling") {
        progress("scaling: relocations, imports, modules in a registry");
        output.tables.push(relocation_scaling(config, dir)?);
        output.tables.push(import_scaling(config, dir)?);
        output.tables.push(registry_scaling(config, dir)?);
    }
    Ok(output)
}

/// The name `SMF_BENCH_ONLY` matches for the real-code tables.
const REAL_SECTION: &str = "real code: sqlite, lua";

/// SQLite (not in quick mode) and Lua, each as a shared library and as a module: load to
/// first symbol, page faults, reload, then memory per module.
fn output_real_code(config: &Config, dir: &Path, output: &mut Output) -> Result<(), String> {
    let mut libraries = vec![realcode::lua()?];
    if !config.quick {
        libraries.insert(0, realcode::sqlite()?);
    }
    let mut builds = Vec::with_capacity(libraries.len());
    for library in libraries {
        progress(&format!(
            "real code: building {} (cc -O2 -fPIC, cc -shared, smf pack)",
            library.version
        ));
        let build = realcode::build(dir, library)?;
        check_probe(&build)?;
        output.notes.push(describe(
            &format!("{} ({})", build.library.name, build.library.version),
            &build.plain,
        )?);
        builds.push(build);
    }
    let mut table = Table::new(
        "Real code: SQLite and Lua, -O2 -fPIC",
        "shared library",
        "SMF",
    );
    for build in &builds {
        let name = build.library.name;
        progress(&format!("real code: {name}: load to first symbol, reload"));
        load_rows(
            config,
            name,
            &build.plain,
            build.library.entry,
            config.samples(200),
            &mut table.rows,
            LoadTargets {
                checked: Some(Target::RatioAtMost(1.0)),
                unchecked: Some(Target::RatioAtMost(0.8)),
                faults: true,
            },
        )?;
        let entry = CString::new(build.library.entry).map_err(err)?;
        // By default a reloadable module's file is read into memory (it may be rewritten in
        // place); `smf dev`, whose files are replaced by renames, maps it.
        for (how, options) in [
            ("read, default", LoadOptions::default()),
            (
                "mapped, as smf dev",
                LoadOptions::default().with_map_reloadable(true),
            ),
        ] {
            let registry = Registry::with_options(options);
            let live = format!("{name}-live-{}.smf", how.split(',').next().unwrap_or(how));
            let (sys, smf) = reload_samples(
                &registry,
                &dir.join(live),
                &build.v1,
                &build.v2,
                &entry,
                config.samples(100),
            )?;
            table.rows.push(Row::timed(
                format!(
                    "{name}: reload (--reloadable, {how}; Registry::reload vs dlclose + dlopen + dlsym)"
                ),
                Some(&sys),
                &smf,
                Some(Target::RatioAtMost(2.0)),
            ));
        }
    }
    output.tables.push(table);
    output.tables.push(compression_table(config, dir, &builds)?);
    progress("real code: memory per module");
    let entries = builds
        .iter()
        .map(|b| CString::new(b.library.entry).map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    let pairs: Vec<(&str, &Pair, &CStr)> = builds
        .iter()
        .zip(&entries)
        .map(|(b, e)| (b.library.name, &b.plain, e.as_c_str()))
        .collect();
    output
        .tables
        .push(memory_table(config, dir, "real code", &pairs, true)?);
    Ok(())
}

/// `smf pack --compress` (every payload) and `--compress=data` (code left mapped) against
/// the uncompressed module: file size, and load to first symbol with and without the hash
/// check (the hash covers the compressed file, so it costs less; decompression costs more).
fn compression_table(
    config: &Config,
    dir: &Path,
    builds: &[realcode::RealBuild],
) -> Result<Table, String> {
    let mut table = Table::new(
        "Compressed modules (smf pack --compress): file size against load time",
        "uncompressed",
        "compressed",
    );
    for build in builds {
        let name = build.library.name;
        progress(&format!("real code: {name}: --compress"));
        let plain = &build.plain;
        let variants = [
            (
                "--compress",
                smf_format::Compression::All {
                    level: smf_format::compress::DEFAULT_LEVEL,
                },
            ),
            (
                "--compress=data",
                smf_format::Compression::AllButCode {
                    level: smf_format::compress::DEFAULT_LEVEL,
                },
            ),
        ];
        for (flag, compression) in variants {
            let path = dir.join(format!(
                "{name}-{}.smf",
                flag.trim_start_matches('-').replace('=', "-")
            ));
            let bytes =
                fixture::pack_compressed(&plain.objects, build.library.needed, compression, &path)?;
            // Only the sqlite module carries the 2x target (issue: at least 2x smaller).
            let target =
                (name == "sqlite" && flag == "--compress").then_some(Target::RatioAtMost(0.5));
            table.rows.push(Row {
                what: format!("{name}: file size, {flag}"),
                system: Some(plain.module.len() as f64),
                smf: bytes.len() as f64,
                unit: Unit::Bytes,
                target,
            });
            for verify in [false, true] {
                let (mut before, mut after) = (Samples::default(), Samples::default());
                let side =
                    |path: &Path, samples: &mut Samples, record: bool| -> Result<(), String> {
                        let start = Instant::now();
                        // SAFETY: the benchmark's modules are built from its own C code and never
                        // rewritten.
                        let module = unsafe { simple_loader::load(path, &options(verify), None) }
                            .map_err(err)?;
                        black_box(module.export(build.library.entry)).ok_or("no entry symbol")?;
                        if record {
                            samples.push(elapsed_ns(start));
                        }
                        Ok(())
                    };
                let samples = config.samples(100);
                interleave(
                    samples,
                    samples.min(10),
                    &mut [
                        &mut |record| side(&plain.smf, &mut before, record),
                        &mut |record| side(&path, &mut after, record),
                    ],
                )?;
                let hash = if verify {
                    "hash checked"
                } else {
                    "verify_hash off"
                };
                table.rows.push(Row::timed(
                    format!("{name}: load to first symbol ({hash}), {flag}"),
                    Some(&before),
                    &after,
                    None,
                ));
            }
        }
    }
    Ok(table)
}

/// Calls the library's probe function in the shared library and in the module, and checks
/// that both give the same result.
fn check_probe(build: &realcode::RealBuild) -> Result<(), String> {
    let (symbol, probe) = build.library.probe;
    let library = Library::open(&c_path(&build.plain.so))?;
    let address = library.symbol(&CString::new(symbol).map_err(err)?);
    if address.is_null() {
        return Err(format!("{}: no {symbol}", build.plain.so.display()));
    }
    // SAFETY: the probe's signature is the library's documented one.
    let native = unsafe { probe.call(address as usize) };
    // SAFETY: the module is built from the library's own C code and never rewritten.
    let module = unsafe { simple_loader::load(&build.plain.smf, &LoadOptions::default(), None) }
        .map_err(err)?;
    let (_, address) = module
        .export(symbol)
        .ok_or_else(|| format!("{}: no {symbol}", build.plain.smf.display()))?;
    // SAFETY: as above; the module stays loaded across the call.
    let loaded = unsafe { probe.call(address) };
    if native != loaded || native == 0.0 {
        return Err(format!(
            "{symbol}() returned {native} from the shared library and {loaded} from the module"
        ));
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("smf-bench: {what}...");
}

fn machine(config: &Config) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cc = std::process::Command::new(fixture::c_compiler())
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    format!(
        "machine: {model}, {cores} cores, Linux {}; {cc}; load average at start {}\nmode: {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if config.quick {
            "QUICK (SMF_BENCH_QUICK=1: few samples, small sizes; not for comparison)"
        } else {
            "full"
        }
    )
}

fn describe(name: &str, pair: &Pair) -> Result<String, String> {
    let parsed = smf_format::Module::parse(&pair.module).map_err(err)?;
    let code: u64 = parsed
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::Code)
        .map(|s| s.mem_size)
        .sum();
    let relro: u64 = parsed
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::RelRo)
        .map(|s| s.mem_size)
        .sum();
    let data: u64 = parsed
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::Data)
        .map(|s| s.mem_size)
        .sum();
    let written_pages = written_pages(&parsed);
    let exported = parsed.symbols().exported().count();
    let so_size = std::fs::metadata(&pair.so).map_err(err)?.len();
    Ok(format!(
        "{name}: {} objects; module {} bytes: code {code} B, relro {relro} B, data {data} B, {} load-time relocations ({} packed) on {written_pages} pages, {} imports, {exported} of {} symbols exported; shared library {so_size} bytes",
        pair.objects.len(),
        pair.module.len(),
        parsed.relocations().len() + parsed.relative_relocations().len(),
        parsed.relative_relocations().len(),
        parsed.imports().len(),
        parsed.symbols().len(),
    ))
}

/// Distinct pages that load-time relocations write.
fn written_pages(parsed: &smf_format::Module<'_>) -> usize {
    let offsets = parsed
        .relocations()
        .iter()
        .map(|r| r.offset)
        .chain(parsed.relative_relocations());
    let mut pages: Vec<u64> = offsets
        .flat_map(|offset| [offset / 4096, (offset + 7) / 4096])
        .collect();
    pages.sort_unstable();
    pages.dedup();
    pages.len()
}

/// The targets of the two load rows (hash checked, hash off), and whether to add a row of
/// page faults per load.
#[derive(Debug, Clone, Copy)]
struct LoadTargets {
    checked: Option<Target>,
    unchecked: Option<Target>,
    faults: bool,
}

const NO_TARGETS: LoadTargets = LoadTargets {
    checked: None,
    unchecked: None,
    faults: false,
};

/// Minor page faults of the calling thread so far.
fn minor_faults() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as f64
}

/// Load to first symbol, and unload, of `pair` both ways, interleaved: `dlopen` + `dlsym` /
/// `dlclose` against `load` + `Module::export` / drop, with the module hash checked
/// and not (the default).
fn load_rows(
    config: &Config,
    name: &str,
    pair: &Pair,
    entry: &str,
    samples: usize,
    rows: &mut Vec<Row>,
    targets: LoadTargets,
) -> Result<(), String> {
    let _ = config;
    let so = c_path(&pair.so);
    let entry_c = CString::new(entry).map_err(err)?;
    // The measured dlopen must map the file each time: nothing else may hold it open.
    Library::open(&so)?.close();
    if native::is_loaded(&so) {
        return Err(format!(
            "{}: still loaded after dlclose; dlopen would not map it again",
            pair.so.display()
        ));
    }
    let (mut sys_load, mut sys_unload) = (Samples::default(), Samples::default());
    let (mut smf_load, mut smf_unload) = (Samples::default(), Samples::default());
    let (mut fast_load, mut fast_unload) = (Samples::default(), Samples::default());
    let (mut sys_faults, mut smf_faults) = (Samples::default(), Samples::default());
    let mut checked_faults = Samples::default();
    let smf_side = |verify: bool,
                    load: &mut Samples,
                    unload: &mut Samples,
                    faulted: &mut Samples,
                    record: bool|
     -> Result<(), String> {
        let options = options(verify);
        let faults = minor_faults();
        let start = Instant::now();
        // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
        let module = unsafe { simple_loader::load(&pair.smf, &options, None) }.map_err(err)?;
        let address = module.export(entry).map(|(_, a)| a);
        let loaded = elapsed_ns(start);
        let faults = minor_faults() - faults;
        black_box(address).ok_or("no entry symbol in the module")?;
        let start = Instant::now();
        drop(module);
        let unloaded = elapsed_ns(start);
        if record {
            load.push(loaded);
            unload.push(unloaded);
            faulted.push(faults);
        }
        Ok(())
    };
    interleave(
        samples,
        samples.min(10),
        &mut [
            &mut |record| {
                let faults = minor_faults();
                let start = Instant::now();
                let library = Library::open(&so)?;
                let address = library.symbol(&entry_c);
                let loaded = elapsed_ns(start);
                if record {
                    sys_faults.push(minor_faults() - faults);
                }
                if black_box(address).is_null() {
                    return Err("no entry symbol in the shared library".into());
                }
                let start = Instant::now();
                library.close();
                let unloaded = elapsed_ns(start);
                if record {
                    sys_load.push(loaded);
                    sys_unload.push(unloaded);
                }
                Ok(())
            },
            &mut |record| {
                smf_side(
                    true,
                    &mut smf_load,
                    &mut smf_unload,
                    &mut checked_faults,
                    record,
                )
            },
            &mut |record| {
                smf_side(
                    false,
                    &mut fast_load,
                    &mut fast_unload,
                    &mut smf_faults,
                    record,
                )
            },
        ],
    )?;
    if native::is_loaded(&so) {
        return Err(format!(
            "{}: still loaded after the measurements",
            pair.so.display()
        ));
    }
    rows.push(Row::timed(
        format!("{name}: load to first symbol (hash checked)"),
        Some(&sys_load),
        &smf_load,
        targets.checked,
    ));
    rows.push(Row::timed(
        format!("{name}: load to first symbol (verify_hash off, default)"),
        Some(&sys_load),
        &fast_load,
        targets.unchecked,
    ));
    if targets.faults {
        rows.push(Row {
            what: format!("{name}: minor page faults in one load (verify_hash off)"),
            system: Some(sys_faults.median()),
            smf: smf_faults.median(),
            unit: Unit::Count,
            target: None,
        });
    }
    rows.push(Row::timed(
        format!("{name}: unload"),
        Some(&sys_unload),
        &smf_unload,
        None,
    ));
    Ok(())
}

/// `dlsym` against `Module::export` and `Registry::resolve`, over every exported function.
fn lookup_rows(config: &Config, pair: &Pair, rows: &mut Vec<Row>) -> Result<(), String> {
    let library = Library::open(&c_path(&pair.so))?;
    // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
    let module =
        unsafe { simple_loader::load(&pair.smf, &LoadOptions::default(), None) }.map_err(err)?;
    let registry = Registry::new();
    // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
    unsafe { registry.load(&pair.smf) }.map_err(err)?;
    let names: Vec<String> = module
        .exports()
        .map(|(n, _)| n.to_owned())
        .filter(|n| n.starts_with("api"))
        .collect();
    let c_names: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.as_str()).unwrap_or_default())
        .collect();
    let rounds = if config.quick { 10 } else { 20 };
    let per = (names.len() * rounds) as f64;
    let (mut sys, mut smf, mut reg) = (Samples::default(), Samples::default(), Samples::default());
    let samples = config.samples(300);
    interleave(
        samples,
        samples.min(10),
        &mut [
            &mut |record| {
                let start = Instant::now();
                for _ in 0..rounds {
                    for name in &c_names {
                        black_box(library.symbol(black_box(name)));
                    }
                }
                if record {
                    sys.push(elapsed_ns(start) / per);
                }
                Ok(())
            },
            &mut |record| {
                let start = Instant::now();
                for _ in 0..rounds {
                    for name in &names {
                        black_box(module.export(black_box(name)).map(|(_, a)| a));
                    }
                }
                if record {
                    smf.push(elapsed_ns(start) / per);
                }
                Ok(())
            },
            &mut |record| {
                let start = Instant::now();
                for _ in 0..rounds {
                    for name in &names {
                        black_box(registry.resolve(black_box(name)));
                    }
                }
                if record {
                    reg.push(elapsed_ns(start) / per);
                }
                Ok(())
            },
        ],
    )?;
    // Both must find every name, at the same kind of address (checked once, untimed).
    for (name, c_name) in names.iter().zip(&c_names) {
        if library.symbol(c_name).is_null()
            || module.export(name).is_none()
            || registry.resolve(name).is_none()
        {
            return Err(format!("lookup of {name} failed"));
        }
    }
    let what = format!(
        "symbol lookup ({} exported functions of the large library)",
        names.len()
    );
    rows.push(Row::timed(
        format!("{what}: dlsym vs Module::export"),
        Some(&sys),
        &smf,
        Some(Target::RatioAtMost(0.5)),
    ));
    rows.push(Row::timed(
        format!("{what}: dlsym vs Registry::resolve"),
        Some(&sys),
        &reg,
        Some(Target::RatioAtMost(0.5)),
    ));
    Ok(())
}

/// `cc -shared -o x.so objects` against `smf pack -o x.smf objects`, both child processes.
fn pack_rows(config: &Config, name: &str, pair: &Pair, rows: &mut Vec<Row>) -> Result<(), String> {
    let dir = pair.so.parent().ok_or("no directory")?;
    let (so, smf) = (
        dir.join(format!("{name}-link.so")),
        dir.join(format!("{name}-pack.smf")),
    );
    let (mut sys, mut smf_samples, mut in_process) =
        (Samples::default(), Samples::default(), Samples::default());
    let inputs = fixture::read_inputs(&pair.objects)?;
    let samples = config.samples(if name == "small" { 40 } else { 20 });
    interleave(
        samples,
        samples.min(2),
        &mut [
            &mut |record| {
                let start = Instant::now();
                fixture::run(fixture::link_command(&pair.objects, &[], &so))?;
                if record {
                    sys.push(elapsed_ns(start));
                }
                Ok(())
            },
            &mut |record| {
                let start = Instant::now();
                fixture::run(fixture::pack_command(
                    &config.packer,
                    &pair.objects,
                    &[],
                    false,
                    &smf,
                ))?;
                if record {
                    smf_samples.push(elapsed_ns(start));
                }
                Ok(())
            },
            &mut |record| {
                let start = Instant::now();
                let bytes = smf_pack::pack(&inputs, &smf_pack::Options::default()).map_err(err)?;
                if record {
                    in_process.push(elapsed_ns(start));
                }
                black_box(bytes);
                Ok(())
            },
        ],
    )?;
    if std::fs::read(&smf).map_err(err)? != pair.module {
        return Err("the packer process and the library packed different modules".into());
    }
    rows.push(Row::timed(
        format!("{name}: pack (cc -shared vs smf pack, child processes)"),
        Some(&sys),
        &smf_samples,
        Some(Target::RatioAtMost(1.0)),
    ));
    rows.push(Row::timed(
        format!("{name}: pack in process (smf_pack::pack, inputs in memory)"),
        Some(&sys),
        &in_process,
        None,
    ));
    Ok(())
}

/// `bench_compute` (table-dispatched calls of the generated functions) run from the shared
/// library and from the module.
fn run_speed_rows(config: &Config, pair: &Pair, rows: &mut Vec<Row>) -> Result<(), String> {
    type Compute = extern "C" fn(i64) -> i64;
    let library = Library::open(&c_path(&pair.so))?;
    // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
    let module =
        unsafe { simple_loader::load(&pair.smf, &LoadOptions::default(), None) }.map_err(err)?;
    let address = library.symbol(c"bench_compute");
    if address.is_null() {
        return Err("no bench_compute in the shared library".into());
    }
    // SAFETY: `bench_compute` is `long bench_compute(long)` in the generated C.
    let native: Compute = unsafe { std::mem::transmute::<*mut libc::c_void, Compute>(address) };
    // SAFETY: as above.
    let smf: Compute = *unsafe { module.get::<Compute>("bench_compute") }.map_err(err)?;
    let n = if config.quick { 2_000 } else { 100_000 };
    if native(n) != smf(n) {
        return Err("bench_compute gives different results from the two builds".into());
    }
    let (mut a, mut b) = (Samples::default(), Samples::default());
    let samples = config.samples(200);
    fn time(f: Compute, n: i64, into: &mut Samples, record: bool) -> Result<(), String> {
        let start = Instant::now();
        black_box(black_box(f)(black_box(n)));
        if record {
            into.push(elapsed_ns(start));
        }
        Ok(())
    }
    interleave(
        samples,
        samples.min(10),
        &mut [
            &mut |record| time(native, n, &mut a, record),
            &mut |record| time(smf, n, &mut b, record),
        ],
    )?;
    rows.push(Row::timed(
        format!("run speed: bench_compute({n}), {n} table-dispatched calls"),
        Some(&a),
        &b,
        Some(Target::RatioAtMost(1.03)),
    ));
    drop(module);
    library.close();
    Ok(())
}

/// `Registry::reload` alternating two versions, against `dlclose` + `dlopen` + `dlsym` of two
/// builds of the same library; and calls through a reload slot against direct calls.
fn reload_tables(config: &Config, dir: &Path) -> Result<Vec<Table>, String> {
    let spec = config.small_spec();
    let v1 = fixture::build_pair(dir, "reload1", &csource::library(&spec), &[], true)?;
    let v2 = fixture::build_pair(
        dir,
        "reload2",
        &csource::library(&LibrarySpec { version: 2, ..spec }),
        &[],
        true,
    )?;
    let live = dir.join("live.smf");
    let registry = Registry::new();
    let (sys, smf) = reload_samples(
        &registry,
        &live,
        &v1,
        &v2,
        c"bench_entry",
        config.samples(200),
    )?;
    let mut reload = Table::new(
        "Reload (small library, --reloadable)",
        "dlclose + dlopen + dlsym",
        "Registry::reload",
    );
    reload.rows.push(Row::timed(
        "replace the running version by the other one",
        Some(&sys),
        &smf,
        None,
    ));

    // Calls: the same function, `bench_inc`, directly and through its slot.
    type Inc = extern "C" fn(i64) -> i64;
    let module = registry.get(&live).ok_or("the module is gone")?;
    // SAFETY: `bench_inc` is `long bench_inc(long)` in every version.
    let direct: Inc = *unsafe { module.get::<Inc>("bench_inc") }.map_err(err)?;
    // SAFETY: as above.
    let current = unsafe { registry.current::<Inc>(&live, "bench_inc") }.map_err(err)?;
    // SAFETY: the trampoline is a function with the signature of `bench_inc` while `current`
    // (which holds the slots) lives.
    let through_slot: Inc = unsafe { std::mem::transmute::<usize, Inc>(current.address()) };
    let calls: i64 = if config.quick { 10_000 } else { 2_000_000 };
    let call_loop = |f: Inc| {
        let mut x = 0i64;
        let start = Instant::now();
        for _ in 0..calls {
            x = black_box(f)(black_box(x));
        }
        let took = elapsed_ns(start) / calls as f64;
        (x, took)
    };
    let (mut direct_ns, mut slot_ns, mut pinned_ns) =
        (Samples::default(), Samples::default(), Samples::default());
    let samples = config.samples(60);
    interleave(
        samples,
        samples.min(5),
        &mut [
            &mut |record| {
                let (x, took) = call_loop(direct);
                if x != calls {
                    return Err("direct calls computed the wrong value".into());
                }
                if record {
                    direct_ns.push(took);
                }
                Ok(())
            },
            &mut |record| {
                let (x, took) = call_loop(through_slot);
                if x != calls {
                    return Err("calls through the slot computed the wrong value".into());
                }
                if record {
                    slot_ns.push(took);
                }
                Ok(())
            },
            &mut |record| {
                let mut x = 0i64;
                let start = Instant::now();
                for _ in 0..calls {
                    let call = current.pin();
                    x = black_box(*call)(black_box(x));
                }
                if record {
                    pinned_ns.push(elapsed_ns(start) / calls as f64);
                }
                black_box(x);
                Ok(())
            },
        ],
    )?;
    let mut calls_table = Table::new(
        "Calls into a reloadable module (bench_inc: x + 1)",
        "direct call",
        "through the slot",
    );
    calls_table.rows.push(Row::timed(
        "call through the trampoline (Current::address)",
        Some(&direct_ns),
        &slot_ns,
        Some(Target::ExtraNsAtMost(1.0)),
    ));
    calls_table.rows.push(Row::timed(
        "Current::pin() + call, per call",
        Some(&direct_ns),
        &pinned_ns,
        None,
    ));
    Ok(vec![reload, calls_table])
}

/// Loads `v1`'s module into `registry` from `live`, then replaces it by the other version
/// (a link to its file renamed over `live`, `fixture::replace_by_link`), again and again, against `dlclose` of one version's shared library + `dlopen` of the
/// other's + `dlsym(entry)`, interleaved.
fn reload_samples(
    registry: &Registry,
    live: &Path,
    v1: &Pair,
    v2: &Pair,
    entry: &CStr,
    samples: usize,
) -> Result<(Samples, Samples), String> {
    fixture::replace_by_link(live, &v1.smf)?;
    // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
    unsafe { registry.load(live) }.map_err(err)?;
    let (so1, so2) = (c_path(&v1.so), c_path(&v2.so));
    let mut current_so = Some(Library::open(&so1)?);
    let (mut sys, mut smf) = (Samples::default(), Samples::default());
    let (mut sys_round, mut smf_round) = (0usize, 0usize);
    interleave(
        samples,
        samples.min(5),
        &mut [
            &mut |record| {
                let next = if sys_round % 2 == 0 { &so2 } else { &so1 };
                sys_round += 1;
                settle();
                let start = Instant::now();
                drop(current_so.take());
                let library = Library::open(next)?;
                black_box(library.symbol(entry));
                let took = elapsed_ns(start);
                current_so = Some(library);
                if record {
                    sys.push(took);
                }
                Ok(())
            },
            &mut |record| {
                let next = if smf_round % 2 == 0 { &v2.smf } else { &v1.smf };
                smf_round += 1;
                fixture::replace_by_link(live, next)?;
                settle();
                let start = Instant::now();
                // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
                let report = unsafe { registry.reload(live) }.map_err(err)?;
                let took = elapsed_ns(start);
                if report.unchanged {
                    return Err("the reload saw no change".into());
                }
                if record {
                    smf.push(took);
                }
                Ok(())
            },
        ],
    )?;
    drop(current_so);
    Ok((sys, smf))
}

/// Sleeps a moment before a timed reload, on both sides, as a program that reloads after a
/// rebuild was waiting for it. On a machine shared with other work, a task that ran without
/// sleeping is the first the scheduler preempts, and a reload of a few milliseconds is then
/// timed with other programs' time slices in it: SQLite's reload read into memory measured
/// 34× `dlopen` that way with the same CPU time as 11.6× in runs where the file replacement
/// before it slept (freeing a replaced file waited for a disk discard). Without the sleep,
/// which side the scheduler charges depends on what happened before the sample, not on the
/// loader.
fn settle() {
    std::thread::sleep(std::time::Duration::from_micros(200));
}

/// Memory per module, with `copies` copies of each loaded at once (and their first symbol
/// looked up): address space mapped beyond the payload (the target), what of it is resident
/// and private, and heap.
/// `pairs` are a name, the library and its first symbol; with `real_targets`, the rows of
/// resident memory and heap get the targets set for real code.
fn memory_table(
    config: &Config,
    dir: &Path,
    what: &str,
    pairs: &[(&str, &Pair, &CStr)],
    real_targets: bool,
) -> Result<Table, String> {
    let copies = if config.quick { 3 } else { 20 };
    let mut table = Table::new(
        format!(
            "Memory per module, {what} ({copies} copies of each loaded at once; /proc/self/smaps, heap from mallinfo2)"
        ),
        "shared library",
        "SMF",
    );
    let mem = dir.join("memory");
    std::fs::create_dir_all(&mem).map_err(err)?;
    for &(name, pair, entry) in pairs {
        let mut sos = Vec::new();
        let mut smfs = Vec::new();
        for i in 0..copies {
            let so = mem.join(format!("{name}{i}.so"));
            let smf = mem.join(format!("{name}{i}.smf"));
            std::fs::copy(&pair.so, &so).map_err(err)?;
            std::fs::copy(&pair.smf, &smf).map_err(err)?;
            sos.push(so);
            smfs.push(smf);
        }
        let so_bytes = std::fs::read(&pair.so).map_err(err)?;
        let so_payload = native::load_segment_bytes(&so_bytes) as f64;
        let so_span = native::load_span(&so_bytes);
        let parsed = smf_format::Module::parse(&pair.module).map_err(err)?;
        let smf_payload: u64 = parsed
            .loaded_sections()
            .map(|s| s.mem_size.next_multiple_of(4096))
            .sum();
        let smf_payload = smf_payload as f64;
        let per = |total: u64| total as f64 / copies as f64;

        let heap_before = heap_in_use();
        let libraries = sos
            .iter()
            .map(|p| Library::open(&c_path(p)))
            .collect::<Result<Vec<_>, _>>()?;
        for library in &libraries {
            black_box(library.symbol(entry));
        }
        let heap_so = (heap_in_use() as f64 - heap_before as f64) / copies as f64;
        let maps = read_smaps();
        let so_usage = sos
            .iter()
            .map(|p| usage_of_library(&maps, p, so_span))
            .fold(Usage::default(), Usage::add);
        drop(libraries);

        let heap_before = heap_in_use();
        let modules = smfs
            .iter()
            // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
            .map(|p| unsafe { simple_loader::load(p, &LoadOptions::default(), None) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let entry = entry.to_str().map_err(err)?;
        for module in &modules {
            black_box(module.export(entry));
        }
        let heap_smf = (heap_in_use() as f64 - heap_before as f64) / copies as f64;
        let maps = read_smaps();
        let (mut image, mut view) = (Usage::default(), Usage::default());
        for (module, path) in modules.iter().zip(&smfs) {
            let (i, v) = usage_of_module(&maps, module, path);
            image = image.add(i);
            view = view.add(v);
        }
        drop(modules);
        let smf_usage = image.add(view);

        let row = |what: &str, system: f64, smf: f64, target: Option<Target>| Row {
            what: format!("{name}: {what}"),
            system: Some(system),
            smf,
            unit: Unit::Bytes,
            target,
        };
        table.rows.push(row(
            "payload (loaded sections / PT_LOAD segments, page-rounded)",
            so_payload,
            smf_payload,
            None,
        ));
        table.rows.push(row(
            "mapped (SMF: image + read-only view of the file)",
            per(so_usage.mapped),
            per(smf_usage.mapped),
            None,
        ));
        table.rows.push(row(
            "mapped beyond the payload",
            per(so_usage.mapped) - so_payload,
            per(smf_usage.mapped) - smf_payload,
            Some(Target::BytesAtMost(4096.0)),
        ));
        table.rows.push(row(
            "mapped beyond the payload, image only (SMF without the file view)",
            per(so_usage.mapped) - so_payload,
            per(image.mapped) - smf_payload,
            None,
        ));
        table.rows.push(row(
            "resident (Rss, shared page-cache pages included)",
            per(so_usage.resident),
            per(smf_usage.resident),
            real_targets.then_some(Target::RatioAtMost(1.5)),
        ));
        table.rows.push(row(
            "anonymous resident (copied or written pages: relocated, bss)",
            per(so_usage.private),
            per(smf_usage.private),
            None,
        ));
        table.rows.push(row(
            "heap (malloc) per module",
            heap_so,
            heap_smf,
            real_targets.then_some(Target::BytesAtMost(32.0 * 1024.0)),
        ));
    }
    Ok(table)
}

fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// One mapping of `/proc/self/smaps`.
struct Mapping {
    start: u64,
    end: u64,
    path: String,
    resident: u64,
    private: u64,
}

/// Bytes of address space, resident, and resident anonymous (pages of this mapping only:
/// copies made on write, zero-fill pages).
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    mapped: u64,
    resident: u64,
    private: u64,
}

impl Usage {
    fn add(self, other: Usage) -> Usage {
        Usage {
            mapped: self.mapped + other.mapped,
            resident: self.resident + other.resident,
            private: self.private + other.private,
        }
    }

    fn of(m: &Mapping) -> Usage {
        Usage {
            mapped: m.end - m.start,
            resident: m.resident,
            private: m.private,
        }
    }
}

fn read_smaps() -> Vec<Mapping> {
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            {
                let path = fields.nth(4).unwrap_or("").to_owned();
                maps.push(Mapping {
                    start,
                    end,
                    path,
                    resident: 0,
                    private: 0,
                });
                continue;
            }
        }
        let kilobytes = fields
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        if let Some(m) = maps.last_mut() {
            match first {
                "Rss:" => m.resident += kilobytes,
                "Anonymous:" => m.private += kilobytes,
                _ => {}
            }
        }
    }
    maps
}

/// The mappings of a shared library: those of its file and the anonymous ones right after
/// them (its bss).
fn usage_of_library(maps: &[Mapping], path: &Path, span: u64) -> Usage {
    let path = path.display().to_string();
    // The system loader reserves the library's whole span at its first mapping of the file;
    // anonymous mappings right after its file mappings (bss) count only inside that span,
    // so that an unrelated mapping next to it (a heap arena) is not taken for part of it.
    let Some(start) = maps.iter().find(|m| m.path == path).map(|m| m.start) else {
        return Usage::default();
    };
    let end = start + span;
    let mut total = Usage::default();
    let mut previous_end = None;
    for m in maps {
        let inside = m.start >= start && m.end <= end;
        if m.path == path || (m.path.is_empty() && inside && previous_end == Some(m.start)) {
            total = total.add(Usage::of(m));
            previous_end = Some(m.end);
        } else {
            previous_end = None;
        }
    }
    total
}

/// The mappings of a module: its image's address range, and any other mapping of its file
/// (the read-only view the loader parses).
fn usage_of_module(maps: &[Mapping], module: &Module, path: &Path) -> (Usage, Usage) {
    let (base, end) = (
        module.base() as u64,
        (module.base() + module.image_len()) as u64,
    );
    let path = path.display().to_string();
    let (mut image, mut view) = (Usage::default(), Usage::default());
    for m in maps {
        if m.start >= base && m.end <= end {
            image = image.add(Usage::of(m));
        } else if m.path == path {
            view = view.add(Usage::of(m));
        }
    }
    (image, view)
}

/// Load to first symbol as the number of load-time relocations grows.
fn relocation_scaling(config: &Config, dir: &Path) -> Result<Table, String> {
    let counts: &[usize] = if config.quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let mut table = Table::new(
        "Scaling: load to first symbol by load-time relocations (pointer tables)",
        "dlopen + dlsym",
        "SMF load + lookup",
    );
    for &count in counts {
        let pair = fixture::build_pair(
            dir,
            &format!("relocs{count}"),
            &[("relocs.c".into(), csource::relocations(count))],
            &[],
            false,
        )?;
        let mut rows = Vec::new();
        load_rows(
            config,
            &format!("{count} relocations"),
            &pair,
            "bench_entry",
            config.samples(if count >= 100_000 { 60 } else { 150 }),
            &mut rows,
            NO_TARGETS,
        )?;
        table.rows.extend(
            rows.into_iter()
                .filter(|r| r.what.contains("load to first symbol")),
        );
    }
    Ok(table)
}

/// Load to first symbol as the number of imports grows: functions of a provider shared
/// library (kept open by the benchmark, so both sides only resolve against it), named as a
/// needed library; and the same imports defined by the host in a registry.
fn import_scaling(config: &Config, dir: &Path) -> Result<Table, String> {
    let counts: &[usize] = if config.quick {
        &[10, 100]
    } else {
        &[10, 100, 1000]
    };
    let most = counts.iter().copied().max().unwrap_or(0);
    let provider_dir = dir.join("provider");
    std::fs::create_dir_all(&provider_dir).map_err(err)?;
    let objects = fixture::compile(
        &provider_dir,
        &[("provider.c".into(), csource::provider(most))],
    )?;
    let provider = dir.join("libprovider.so");
    fixture::run(fixture::link_command(&objects, &[], &provider))?;
    let provider_library = Library::open(&c_path(&provider))?;
    let mut table = Table::new(
        "Scaling: load to first symbol by imports (functions of a provider library, open already)",
        "dlopen + dlsym",
        "SMF load + lookup",
    );
    for &count in counts {
        let name = format!("imports{count}");
        let sources = [("importer.c".to_owned(), csource::importer(count))];
        let pair =
            fixture::build_pair(dir, &name, &sources, std::slice::from_ref(&provider), false)?;
        let mut rows = Vec::new();
        load_rows(
            config,
            &format!("{count} imports (needed library)"),
            &pair,
            "bench_entry",
            config.samples(150),
            &mut rows,
            NO_TARGETS,
        )?;
        let sys = rows.first().and_then(|r| r.system);
        table.rows.extend(
            rows.into_iter()
                .filter(|r| r.what.contains("load to first symbol")),
        );

        // The same module without `--needed`, its imports defined by the host.
        let host_smf = dir.join(format!("{name}-host.smf"));
        fixture::pack(&pair.objects, &[], false, &host_smf)?;
        let registry = Registry::with_options(options(true));
        for i in 0..most {
            let symbol = CString::new(format!("p{i}")).map_err(err)?;
            // SAFETY: the provider stays open for the whole section, longer than any module.
            unsafe { registry.define(&format!("p{i}"), provider_library.symbol(&symbol) as usize) };
        }
        let mut host = Samples::default();
        let samples = config.samples(150);
        interleave(
            samples,
            samples.min(10),
            &mut [&mut |record| {
                let start = Instant::now();
                // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
                let module = unsafe { registry.load(&host_smf) }.map_err(err)?;
                black_box(module.export("bench_entry").map(|(_, a)| a));
                let took = elapsed_ns(start);
                registry.unload(&host_smf).map_err(err)?;
                drop(module);
                if record {
                    host.push(took);
                }
                Ok(())
            }],
        )?;
        table.rows.push(Row { what: format!("{count} imports defined by the host (Registry::define; not interleaved with dlopen)"), system: sys, smf: host.median(), unit: Unit::Nanos, target: None });
    }
    drop(provider_library);
    Ok(table)
}

/// `Registry::resolve` with 1, 100 and 1,000 modules loaded in one registry, interleaved.
fn registry_scaling(config: &Config, dir: &Path) -> Result<Table, String> {
    let sizes: &[usize] = if config.quick {
        &[1, 10, 100]
    } else {
        &[1, 100, 1000]
    };
    let exports = 8;
    let modules_dir = dir.join("registry");
    std::fs::create_dir_all(&modules_dir).map_err(err)?;
    let most = sizes.iter().copied().max().unwrap_or(1);
    let mut paths = Vec::with_capacity(most);
    for i in 0..most {
        let path = modules_dir.join(format!("m{i}.smf"));
        std::fs::write(&path, tiny_module(i, exports)?).map_err(err)?;
        paths.push(path);
    }
    let registries: Vec<(usize, Registry)> = sizes
        .iter()
        .map(|&n| {
            let registry = Registry::new();
            for path in &paths[..n] {
                // SAFETY: the benchmark's modules are built from its own C code and never rewritten.
                unsafe { registry.load(path) }.map_err(err)?;
            }
            Ok((n, registry))
        })
        .collect::<Result<_, String>>()?;
    let mut table = Table::new(
        "Scaling: Registry::resolve by modules loaded (8 exports each)",
        "1 module",
        "N modules",
    );
    let rounds = if config.quick { 50 } else { 500 };
    for (label, last) in [
        ("a name the last-loaded module exports", true),
        ("a name no module exports", false),
    ] {
        let mut samples: Vec<Samples> = vec![Samples::default(); registries.len()];
        let names: Vec<Vec<String>> = registries
            .iter()
            .map(|(n, _)| {
                (0..exports)
                    .map(|j| {
                        if last {
                            format!("m{}_f{j}", n - 1)
                        } else {
                            format!("missing_{j}")
                        }
                    })
                    .collect()
            })
            .collect();
        for ((n, registry), names) in registries.iter().zip(&names) {
            let found = names.iter().all(|name| registry.resolve(name).is_some());
            if found != last {
                return Err(format!(
                    "registry of {n}: resolving {label} gave the wrong answer"
                ));
            }
        }
        let mut sides: Vec<BoxedSide<'_>> = Vec::new();
        for ((samples, (_, registry)), names) in samples.iter_mut().zip(&registries).zip(&names) {
            sides.push(Box::new(move |record| {
                let start = Instant::now();
                for _ in 0..rounds {
                    for name in names {
                        black_box(registry.resolve(black_box(name)));
                    }
                }
                if record {
                    samples.push(elapsed_ns(start) / (rounds * names.len()) as f64);
                }
                Ok(())
            }));
        }
        let mut refs: Vec<Side<'_>> = sides.iter_mut().map(|s| &mut **s as Side<'_>).collect();
        let count = config.samples(200);
        interleave(count, count.min(10), &mut refs)?;
        drop(refs);
        drop(sides);
        for ((n, _), s) in registries.iter().zip(&samples).skip(1) {
            table.rows.push(Row::timed(
                format!("{n} modules: {label}"),
                Some(&samples[0]),
                s,
                Some(Target::RatioAtMost(1.2)),
            ));
        }
    }
    Ok(table)
}

/// A module for this machine's processor of `exports` tiny functions named `m<i>_f<j>`,
/// each returning 0 (`xor eax, eax; ret` on x86-64, `mov w0, #0; ret` on aarch64).
fn tiny_module(i: usize, exports: usize) -> Result<Vec<u8>, String> {
    use smf_format::{
        Arch, Binding, ImageLayout, LoadedSection, ModuleBuilder, Symbol, SymbolKind, Visibility,
    };
    let arch =
        simple_loader::HOST_ARCH.ok_or("the loader knows no module format for this processor")?;
    let return_zero: &[u8] = match arch {
        Arch::X86_64 => &[0x31, 0xc0, 0xc3],
        Arch::Aarch64 => &[0x00, 0x00, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6],
    };
    let names: Vec<String> = (0..exports).map(|j| format!("m{i}_f{j}")).collect();
    let mut code = Vec::new();
    for _ in 0..exports {
        code.extend_from_slice(return_zero);
        code.resize(code.len().next_multiple_of(16), 0);
    }
    let mut builder = ModuleBuilder::new();
    builder.platform = smf_format::Platform::Linux;
    builder.arch = arch;
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(code.len() as u64).map_err(err)?;
    let mem_size = code.len() as u64;
    let text = builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size,
        align: 16,
        data: code,
    });
    for (j, name) in names.iter().enumerate() {
        builder.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(text),
            value: vaddr + 16 * j as u64,
            size: return_zero.len() as u64,
            type_id: 0,
            version: 0,
        });
    }
    builder.write().map_err(err)
}
