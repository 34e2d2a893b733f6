//! Hostile and broken modules: a mutation sweep over REAL packed modules.
//!
//! Two C programs from tests/programs (`tables`: 135 load-time relocations; `multi`:
//! constructors, destructors and a 16 MiB bss) are compiled with `cc -fPIC` at test time,
//! together with a marker object whose constructor and whose entry (`hostile_entry`, which
//! then calls `main`) each `write(2)` a marker line first thing, and packed by the `smf`
//! binary. Then thousands of mutants of each module:
//!
//! - every truncation of the structure (the header, the section table and the tables) and a
//!   stride of truncations through the padding after it and the payloads;
//! - single-bit flips all over the file (the stored hash left as it was);
//! - field overwrites of the header, every section header, symbols, the hash table, imports,
//!   relocations (offset, kind, import index), constructor and destructor entries and the
//!   string table, with extreme and off-by-one values, and the module hash recomputed so that
//!   the structural checks, not the hash, have to catch them.
//!
//! (`SMF_HOSTILE_STRIDE=N` keeps every Nth mutant of each kind: for emulated runs, see
//! `Thin`.) Every mutant goes through the library the way `smf verify` and the loader see it (parse,
//! then the module hash), with a time bound: no panic, no hang. A sample of each kind goes
//! through the real binary: `smf inspect` and `smf verify` exit 0 or 1 (never a signal, never
//! a panic) within a timeout, and `smf run` of every refused file exits 1 with a one-line
//! error and an EMPTY stdout: neither marker, nor anything else the module could print, so
//! none of its code ran. Mutants that the reader accepts after rehashing are well-formed
//! modules with a correct hash (a relocation moved inside a data section, say); they are
//! counted, checked with `smf verify`, and never run.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use smf_format::raw::{self, MODULE_HASH_RANGE};
use smf_format::{Module, SectionKind, compute_module_hash};

const CTOR_MARKER: &str = "HOSTILE-MARKER: constructor ran";
const ENTRY_MARKER: &str = "HOSTILE-MARKER: entry ran";

const MARKER_C: &str = r#"
#include <unistd.h>
int main(int argc, char **argv);
__attribute__((constructor(101))) static void hostile_marker_ctor(void)
{
    static const char m[] = "HOSTILE-MARKER: constructor ran\n";
    (void)!write(1, m, sizeof m - 1);
}
int hostile_entry(int argc, char **argv)
{
    static const char m[] = "HOSTILE-MARKER: entry ran\n";
    (void)!write(1, m, sizeof m - 1);
    return main(argc, argv);
}
"#;

/// A single parse plus hash check of a ~25 KiB module, even in a debug build on a busy
/// machine, takes milliseconds; one that loops or goes quadratic blows far past this.
const SLOW_PARSE: Duration = Duration::from_secs(2);
/// A refused `smf` command returns in milliseconds; this only catches hangs.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

struct Fixture {
    name: &'static str,
    path: PathBuf,
    bytes: Vec<u8>,
    exit: i32,
}

/// The two packed fixture modules, built once per test binary.
fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let marker = work.join("hostile_marker.c");
        std::fs::write(&marker, MARKER_C).unwrap();
        ["tables", "multi"]
            .into_iter()
            .map(|name| {
                let dir = program_dir(name);
                let spec = build_spec(&dir);
                let mut flags = vec!["-O2"];
                flags.extend(spec.cflags.iter().map(String::as_str));
                let mut sources = c_sources(&dir);
                sources.push(marker.clone());
                let objects = compile(&sources, &work.join(name), &flags);
                let path = work.join(format!("{name}.sme"));
                pack(&objects, &path, &["--entry", "hostile_entry"]);
                Fixture {
                    name,
                    bytes: std::fs::read(&path).unwrap(),
                    path,
                    exit: spec.exit,
                }
            })
            .collect()
    })
}

struct Mutant<'a> {
    what: String,
    /// A truncation borrows the good file's prefix; the others own their bytes.
    bytes: Cow<'a, [u8]>,
    /// Whether the module hash was recomputed after the change.
    rehashed: bool,
}

fn rehash(mut bytes: Vec<u8>) -> Vec<u8> {
    let hash = compute_module_hash(&bytes).unwrap();
    bytes[MODULE_HASH_RANGE].copy_from_slice(&hash);
    bytes
}

/// A small deterministic generator (SplitMix64), so that every run sweeps the same mutants.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn truncations(good: &[u8]) -> Vec<Mutant<'_>> {
    let mut thin = Thin::new();
    let module = Module::parse(good).unwrap();
    // The structure: the header, the section table and the tables, which end before the
    // padding up to the first payload (a page of the target: 64 KiB on aarch64, where every
    // byte of the padding swept would be sixteen times the structure).
    let table_end = module
        .sections()
        .iter()
        .filter(|s| !s.kind.is_loaded())
        .map(|s| (s.file_offset + s.file_size) as usize)
        .max()
        .unwrap();
    let section_table_offset = u64::from_le_bytes(good[0x10..0x18].try_into().unwrap());
    let section_table_end =
        section_table_offset as usize + module.sections().len() * size_of::<raw::SectionHeader>();
    let structure_end = table_end.max(section_table_end);
    (0..structure_end)
        .chain((structure_end..good.len()).step_by(61))
        .chain([good.len() - 1])
        .filter(|_| thin.keep())
        .map(|len| Mutant {
            what: format!("truncated to {len:#x} bytes"),
            bytes: Cow::Borrowed(&good[..len]),
            rehashed: false,
        })
        .collect()
}

fn bit_flips(good: &[u8], count: usize, seed: u64) -> Vec<Mutant<'static>> {
    let mut thin = Thin::new();
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| (rng.below(good.len()), rng.below(8)))
        .filter(|_| thin.keep())
        .map(|(at, bit)| {
            let mut bytes = good.to_vec();
            bytes[at] ^= 1 << bit;
            Mutant {
                what: format!("bit {bit} of byte {at:#x} flipped"),
                bytes: Cow::Owned(bytes),
                rehashed: false,
            }
        })
        .collect()
}

/// Overwrites of structural fields, each followed by a new module hash.
fn field_overwrites(good: &[u8]) -> Vec<Mutant<'static>> {
    let module = Module::parse(good).unwrap();
    let file_len = good.len() as u64;
    let image_size = module.header().image_size;
    let section_count = module.sections().len() as u64;
    let symbol_count = module.symbols().len() as u64;
    let import_count = module.imports().len() as u64;
    let mut mutants = Vec::new();
    let mut thin = Thin::new();
    let mut put = |what: String, at: usize, width: usize, value: u64| {
        let value_bytes = &value.to_le_bytes()[..width];
        // An overwrite with the value already there is no mutant; of the others, only those
        // kept are built and rehashed.
        if good[at..at + width] != *value_bytes && thin.keep() {
            let mut bytes = good.to_vec();
            bytes[at..at + width].copy_from_slice(value_bytes);
            mutants.push(Mutant {
                what: format!("{what} at {at:#x} = {value:#x}"),
                bytes: Cow::Owned(rehash(bytes)),
                rehashed: true,
            });
        }
    };
    let wide = |extra: &[u64]| {
        let mut values = vec![
            0,
            1,
            8,
            0xfff,
            0x1000,
            0x8000_0000,
            u32::MAX as u64,
            1 << 32,
            1 << 63,
            u64::MAX - 7,
            u64::MAX,
            file_len,
            file_len - 8,
            file_len + 0x1000,
            image_size,
            image_size - 8,
            image_size + 0x1000,
        ];
        values.extend_from_slice(extra);
        values
    };
    let narrow = |extra: &[u64]| {
        let mut values = vec![
            0,
            1,
            2,
            0xff,
            0x8000_0000,
            u32::MAX as u64 - 1,
            u32::MAX as u64,
            section_count,
            symbol_count,
            symbol_count + 1,
            import_count,
            import_count + 1,
            file_len,
        ];
        values.extend_from_slice(extra);
        values
    };
    let bytes_ = [0u64, 1, 3, 7, 0x11, 0x80, 0xff];

    // Header.
    for (field, at, width) in [
        ("version", 0x04, 1),
        ("platform", 0x06, 1),
        ("arch", 0x07, 1),
        ("flags", 0x08, 4),
        ("section_count", 0x0c, 4),
        ("section_table_offset", 0x10, 8),
        ("image_size", 0x18, 8),
        ("entry_point", 0x20, 8),
        ("reserved", 0x50, 8),
    ] {
        let values = match width {
            1 => bytes_.to_vec(),
            4 => narrow(&[section_count - 1, section_count + 1, 0x10000]),
            _ => wide(&[0x40, 0x80, 0x81, 0x7f]),
        };
        for value in values {
            put(format!("header.{field}"), at, width, value);
        }
    }

    // Every section header, every field.
    let table = 0x80;
    for index in 0..module.sections().len() {
        let entry = table + index * size_of::<raw::SectionHeader>();
        for (field, offset, width) in [
            ("kind", 0x00, 4),
            ("flags", 0x04, 4),
            ("file_offset", 0x08, 8),
            ("file_size", 0x10, 8),
            ("vaddr", 0x18, 8),
            ("mem_size", 0x20, 8),
            ("align", 0x28, 8),
            ("name", 0x30, 1),
        ] {
            let values = match width {
                1 => bytes_.to_vec(),
                4 => narrow(&[3, 5, 6, 10, 16, 17, 18]),
                _ => wide(&[0x80, 0x2000, 0x3000]),
            };
            for value in values {
                put(
                    format!("section {index}.{field}"),
                    entry + offset,
                    width,
                    value,
                );
            }
        }
    }

    let table_offset = |kind| {
        module
            .table_section(kind)
            .map(|s| (s.file_offset as usize, s.file_size as usize))
    };
    // A spread of entries of a table: the first few, the last, and every `step`th.
    let pick = |count: usize, step: usize| {
        let mut picked: Vec<usize> = (0..count.min(4)).chain((0..count).step_by(step)).collect();
        picked.extend(count.checked_sub(1));
        picked.sort_unstable();
        picked.dedup();
        picked
    };

    if let Some((symtab, size)) = table_offset(SectionKind::SymTab) {
        for index in pick(size / 40, 5) {
            let entry = symtab + index * 40;
            for (field, offset, width) in [
                ("name_offset", 0x00, 4),
                ("name_hash", 0x04, 4),
                ("kind", 0x08, 1),
                ("binding", 0x09, 1),
                ("visibility", 0x0a, 1),
                ("flags", 0x0b, 1),
                ("section", 0x0c, 4),
                ("value", 0x10, 8),
                ("size", 0x18, 8),
            ] {
                let values = match width {
                    1 => bytes_.to_vec(),
                    4 => narrow(&[]),
                    _ => wide(&[]),
                };
                for value in values {
                    put(
                        format!("symbol {index}.{field}"),
                        entry + offset,
                        width,
                        value,
                    );
                }
            }
        }
    }
    if let Some((hash, size)) = table_offset(SectionKind::Hash) {
        for word in pick(size / 4, 7) {
            for value in narrow(&[]) {
                put(format!("hash word {word}"), hash + word * 4, 4, value);
            }
        }
    }
    if let Some((imports, size)) = table_offset(SectionKind::Imports) {
        for index in pick(size / 24, 1) {
            let entry = imports + index * 24;
            for (field, offset, width) in [
                ("name_offset", 0x00, 4),
                ("name_hash", 0x04, 4),
                ("kind", 0x08, 1),
                ("binding", 0x09, 1),
                ("reserved0", 0x0a, 1),
                ("reserved1", 0x14, 4),
            ] {
                let values = match width {
                    1 => bytes_.to_vec(),
                    _ => narrow(&[]),
                };
                for value in values {
                    put(
                        format!("import {index}.{field}"),
                        entry + offset,
                        width,
                        value,
                    );
                }
            }
        }
    }
    if let Some((relocs, size)) = table_offset(SectionKind::Reloc) {
        // Code pages and read-only data never accept a relocation.
        let code = module
            .loaded_sections()
            .find(|s| s.kind == SectionKind::Code)
            .unwrap()
            .vaddr;
        let rodata = module
            .loaded_sections()
            .find(|s| s.kind == SectionKind::RoData)
            .map_or(0, |s| s.vaddr);
        for index in pick(size / 24, 9) {
            let entry = relocs + index * 24;
            for value in wide(&[code, code + 0x10, rodata]) {
                put(format!("reloc {index}.offset"), entry, 8, value);
            }
            for value in narrow(&[3]) {
                put(format!("reloc {index}.kind"), entry + 8, 4, value);
            }
            for value in narrow(&[]) {
                put(format!("reloc {index}.import"), entry + 12, 4, value);
            }
        }
    }
    for kind in [SectionKind::InitArray, SectionKind::FiniArray] {
        if let Some((array, size)) = table_offset(kind) {
            for index in 0..size / 8 {
                let data = module
                    .loaded_sections()
                    .find(|s| s.kind == SectionKind::Data)
                    .map_or(0, |s| s.vaddr);
                for value in wide(&[data, data + 8]) {
                    put(format!("{kind} entry {index}"), array + index * 8, 8, value);
                }
            }
        }
    }
    if let Some((strtab, size)) = table_offset(SectionKind::StrTab) {
        for at in [0, 1, 2, size / 2, size - 2, size - 1] {
            for value in [0xffu64, 0x00, 0x41] {
                put("strtab byte".into(), strtab + at, 1, value);
            }
        }
    }
    mutants
}

/// What `smf verify` does: parse and validate, check the hash, then read every symbol
/// entry (the loader leaves local ones, which no load uses, to be checked when read).
fn library_verdict(bytes: &[u8]) -> Result<(), String> {
    load_verdict(bytes)?;
    let module = Module::parse(bytes).map_err(|e| e.to_string())?;
    module
        .symbols()
        .to_vec()
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What the loader does first: parse and validate, then check the hash.
fn load_verdict(bytes: &[u8]) -> Result<(), String> {
    let module = Module::parse(bytes).map_err(|e| e.to_string())?;
    module.verify_hash().map_err(|e| e.to_string())
}

/// Runs `smf` with `args`, killing it (and failing) if it takes longer than
/// [`PROCESS_TIMEOUT`]. Returns (exit code, stdout, stderr); a death by signal fails.
///
/// Under an emulator (`SMF_TEST_RUNNER`, README "aarch64") a command that times out is run
/// once more before the test fails: a qemu-user process started while other threads of the
/// emulated test were starting processes hung once in a CI run (a mutant that every other run
/// refused at once, and that the next run refused too), which the same command run again
/// does not repeat. A hang of the loader's own, which every run of the command repeats,
/// still fails.
fn smf_bounded(args: &[&std::ffi::OsStr], what: &str) -> (i32, String, String) {
    let emulated = std::env::var_os("SMF_TEST_RUNNER").is_some();
    match smf_within_timeout(args) {
        Some(result) => result.unwrap_or_else(|e| panic!("{what}: {e}")),
        None if emulated => match smf_within_timeout(args) {
            Some(result) => result.unwrap_or_else(|e| panic!("{what}: {e}")),
            None => panic!("{what}: `smf {args:?}` hung twice (killed after {PROCESS_TIMEOUT:?})"),
        },
        None => panic!("{what}: `smf {args:?}` hung (killed after {PROCESS_TIMEOUT:?})"),
    }
}

/// One run of [`smf_bounded`]: `None` if it was killed for taking longer than
/// [`PROCESS_TIMEOUT`], an error if it died of a signal or panicked.
fn smf_within_timeout(args: &[&std::ffi::OsStr]) -> Option<Result<(i32, String, String), String>> {
    let mut child = smf()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads, so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    let Some(code) = status.code() else {
        return Some(Err(format!(
            "`smf {args:?}` died of {status}\nstderr:\n{stderr}"
        )));
    };
    if stderr.contains("panicked") {
        return Some(Err(format!("`smf {args:?}` panicked:\n{stderr}")));
    }
    Some(Ok((code, stdout, stderr)))
}

/// Puts one mutant through `smf inspect`, `smf verify` and (when the library refuses it)
/// `smf run`, checking each refuses cleanly and that `run` ran none of the module's code.
fn check_with_binary(fixture: &Fixture, dir: &Path, index: usize, mutant: &Mutant, ok: bool) {
    let what = format!("{} mutant {index} ({})", fixture.name, mutant.what);
    let path = dir.join(format!("{}-{index}.sme", fixture.name));
    std::fs::write(&path, &mutant.bytes).unwrap();
    let file = path.as_os_str();

    let (code, _, stderr) = smf_bounded(&["inspect".as_ref(), file], &what);
    assert!(code == 0 || code == 1, "{what}: inspect exited {code}");
    if code == 1 {
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    }

    let (code, stdout, stderr) = smf_bounded(&["verify".as_ref(), file], &what);
    assert_eq!(
        code,
        if ok { 0 } else { 1 },
        "{what}: verify disagrees with the library\nstdout: {stdout}\nstderr: {stderr}"
    );
    if ok {
        // A well-formed module with a correct hash: never run, it could do anything.
        return;
    }
    assert!(stderr.starts_with("smf: error: "), "{what}: {stderr}");
    if load_verdict(&mutant.bytes).is_ok() {
        // Only a local symbol entry is broken, which no load reads: loadable, so not run.
        return;
    }

    let (code, stdout, stderr) = smf_bounded(&["run".as_ref(), file], &what);
    assert_eq!(code, 1, "{what}: run exited {code}\nstderr: {stderr}");
    assert!(
        stdout.is_empty(),
        "{what}: module code ran before the refusal; stdout:\n{stdout}"
    );
    assert!(
        !stderr.contains(CTOR_MARKER) && !stderr.contains(ENTRY_MARKER),
        "{what}: {stderr}"
    );
    assert!(
        stderr.starts_with("smf: error: ") && stderr.trim_end().lines().count() == 1,
        "{what}: expected a one-line error:\n{stderr}"
    );
    let _ = std::fs::remove_file(&path);
}

/// Which mutants of one kind are made: every one natively; every Nth where
/// `SMF_HOSTILE_STRIDE` says N. Under qemu (the aarch64 tests) the whole sweep, a few thousand
/// emulated parses and hashes and some eight hundred emulated `smf` processes, takes over
/// twelve minutes, so `.cargo/config.toml` sets a stride there: the same kinds of mutant,
/// fewer of each. The mutants left out are never built (nor rehashed).
struct Thin {
    stride: usize,
    seen: usize,
}

impl Thin {
    fn new() -> Thin {
        let stride = std::env::var("SMF_HOSTILE_STRIDE")
            .ok()
            .map(|s| s.parse::<usize>().expect("SMF_HOSTILE_STRIDE is a number"))
            .unwrap_or(1)
            .max(1);
        Thin { stride, seen: 0 }
    }

    /// Whether the next candidate is kept: the first, then every `stride`th.
    fn keep(&mut self) -> bool {
        let keep = self.seen % self.stride == 0;
        self.seen += 1;
        keep
    }
}

#[test]
fn fixtures_print_their_markers_first_when_intact() {
    // Without this the empty-stdout check below could not fail: the markers must appear,
    // first, when the module does run.
    for fixture in fixtures() {
        let (code, stdout, stderr) =
            smf_bounded(&["run".as_ref(), fixture.path.as_os_str()], fixture.name);
        assert_eq!(code, fixture.exit, "{}: {stderr}", fixture.name);
        let mut lines = stdout.lines();
        let first = lines.next();
        // The marker constructor has priority 101, the earliest a program may ask for (the
        // fixtures' own constructors print nothing).
        assert_eq!(first, Some(CTOR_MARKER), "{}:\n{stdout}", fixture.name);
        // And the entry's first action is the next thing printed.
        assert_eq!(
            lines.next(),
            Some(ENTRY_MARKER),
            "{}:\n{stdout}",
            fixture.name
        );
        assert_eq!(library_verdict(&fixture.bytes), Ok(()));
    }
}

#[test]
fn thousands_of_mutants_of_real_modules_are_refused_before_any_code_runs() {
    let work = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for fixture in fixtures() {
        let good = &fixture.bytes;
        let mut mutants = truncations(good);
        let truncation_count = mutants.len();
        mutants.extend(bit_flips(good, 2000, 0x5eed ^ good.len() as u64));
        let flip_count = mutants.len() - truncation_count;
        mutants.extend(field_overwrites(good));
        let field_count = mutants.len() - truncation_count - flip_count;

        // The bulk, through the library: no panic (a panic fails the test with the mutant
        // named below), no hang, and every file whose hash was not recomputed is refused.
        let mut verdicts = Vec::with_capacity(mutants.len());
        let mut slowest = (Duration::ZERO, 0);
        for (index, mutant) in mutants.iter().enumerate() {
            let start = Instant::now();
            let verdict = std::panic::catch_unwind(|| library_verdict(&mutant.bytes))
                .unwrap_or_else(|_| {
                    panic!("{}: {}: the reader panicked", fixture.name, mutant.what)
                });
            slowest = slowest.max((start.elapsed(), index));
            if !mutant.rehashed {
                assert!(
                    verdict.is_err(),
                    "{}: {} was accepted",
                    fixture.name,
                    mutant.what
                );
            }
            verdicts.push(verdict.is_ok());
        }
        assert!(
            slowest.0 < SLOW_PARSE,
            "{}: {} took {:?}",
            fixture.name,
            mutants[slowest.1].what,
            slowest.0
        );
        let accepted = verdicts.iter().filter(|&&ok| ok).count();
        // Most structural overwrites must be caught by the structure checks themselves.
        assert!(
            accepted * 4 < field_count,
            "{}: {accepted} of {field_count} rehashed overwrites accepted",
            fixture.name
        );

        // A sample through the binary, spread over every kind of mutant: each of the first
        // few and then every `step`th, plus every rehashed mutant the reader accepted (up to
        // a bound) so that `verify` is seen agreeing with the library there too.
        let sample: Vec<usize> = (0..mutants.len())
            .filter(|&i| i % 37 == 0 || i < 8)
            .chain(
                (0..mutants.len())
                    .filter(|&i| verdicts[i])
                    .step_by(accepted.div_ceil(20).max(1)),
            )
            .collect();
        std::thread::scope(|scope| {
            for half in [0, 1] {
                let (sample, mutants, verdicts, dir) = (&sample, &mutants, &verdicts, work.path());
                scope.spawn(move || {
                    for &i in sample.iter().skip(half).step_by(2) {
                        check_with_binary(fixture, dir, i, &mutants[i], verdicts[i]);
                    }
                });
            }
        });
        report.push(format!(
            "{}: {} mutants ({truncation_count} truncations, {flip_count} bit flips, {field_count} rehashed field overwrites); {accepted} rehashed overwrites still well-formed; {} run through smf",
            fixture.name,
            mutants.len(),
            sample.len()
        ));
    }
    // `cargo test -- --nocapture` shows what was swept.
    for line in report {
        println!("{line}");
    }
}
