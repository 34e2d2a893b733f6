//! A deterministic mutation sweep: every truncation of a valid module and every byte replaced
//! by its complement or by 0xff must make the reader return, `Ok` or `Err`, quickly and
//! without panicking. Mutants that parse are then used, so that a `Module` that passed
//! validation is also safe to query.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use common::*;
use smf_format::*;

/// The slowest a single parse of a ~24 KiB file may be, even in a debug build on a busy
/// machine; a parse that loops or goes quadratic on a mutant blows far past it.
const SLOW: Duration = Duration::from_secs(1);

/// Parses `bytes` and, when that succeeds, exercises everything a loader would call.
fn parse_and_use(bytes: &[u8]) -> bool {
    let Ok(module) = Module::parse(bytes) else {
        return false;
    };
    let _ = module.verify_hash();
    for (i, symbol) in module.symbols().iter().enumerate() {
        // A broken local entry may remain (the reader checks those when read): it reads as
        // an error naming it, and is never exported.
        let symbol = match symbol {
            Ok(symbol) => symbol,
            Err(e) => {
                assert!(e.to_string().contains(&format!("symbol {i}")), "{e}");
                assert!(module.symbols().exported().all(|(j, _)| j != i));
                continue;
            }
        };
        let found = module.lookup(symbol.name);
        assert!(found.is_none_or(|s| s.name == symbol.name));
        if let Some(section) = symbol.section {
            assert!(module.sections()[section as usize].kind.is_loaded());
        }
    }
    assert_eq!(module.lookup("no such symbol"), None);
    for section in module.sections() {
        assert_eq!(section.data.len() as u64, section.file_size);
        let _ = module.section_at(section.vaddr);
        let _ = section.image_range();
    }
    for reloc in module.relocations() {
        let target = module
            .section_at(reloc.offset)
            .expect("a relocation lies in a section");
        assert!(target.kind.accepts_relocations());
        assert!(reloc.offset + 8 <= target.vaddr + target.mem_size);
    }
    if let Some(entry) = module.header().entry_point {
        assert_eq!(
            module.section_at(entry).map(|s| s.kind),
            Some(SectionKind::Code)
        );
    }
    let _ = (
        module.imports(),
        module.needed(),
        module.init_array(),
        module.fini_array(),
    );
    true
}

/// Runs every mutant through [`parse_and_use`]; returns how many parsed.
fn sweep(description: &str, mutants: impl Iterator<Item = (usize, Vec<u8>)>) -> usize {
    let mut parsed = 0;
    let mut slowest = (Duration::ZERO, 0);
    for (at, mutant) in mutants {
        let start = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| parse_and_use(&mutant))) {
            Ok(ok) => parsed += ok as usize,
            Err(_) => panic!("{description} at {at:#x}: the reader panicked"),
        }
        slowest = slowest.max((start.elapsed(), at));
    }
    assert!(
        slowest.0 < SLOW,
        "{description} at {:#x} took {:?}",
        slowest.1,
        slowest.0
    );
    parsed
}

#[test]
fn every_truncation_is_rejected_without_panicking() {
    let bytes = full_module();
    let parsed = sweep(
        "truncation",
        (0..bytes.len()).map(|len| (len, bytes[..len].to_vec())),
    );
    // Every payload lies inside the file, and the file ends with the last one.
    assert_eq!(parsed, 0, "a truncated module parsed");
}

#[test]
fn every_byte_complemented() {
    let bytes = full_module();
    let parsed = sweep(
        "byte ^ 0xff",
        (0..bytes.len()).map(|at| {
            let mut m = bytes.clone();
            m[at] ^= 0xff;
            (at, m)
        }),
    );
    // Payload bytes, padding and the hash itself are not structure: those mutants parse.
    assert!(
        parsed > bytes.len() / 2,
        "only {parsed} of {} mutants parsed",
        bytes.len()
    );
}

#[test]
fn every_byte_set_to_0xff() {
    let bytes = full_module();
    sweep(
        "byte = 0xff",
        (0..bytes.len()).map(|at| {
            let mut m = bytes.clone();
            m[at] = 0xff;
            (at, m)
        }),
    );
}

#[test]
fn every_header_and_table_word_set_to_extremes() {
    // Aligned 4- and 8-byte fields set to values that overflow naive arithmetic.
    let bytes = full_module();
    let structure_end = payload_range(&bytes, SectionKind::SrcMap).end;
    for value in [
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
        u32::MAX as u64,
        0x8000_0000,
        0x1000,
        1,
    ] {
        for width in [4, 8] {
            sweep(
                &format!("{width}-byte word = {value:#x}"),
                (0..structure_end - width + 1).step_by(4).map(|at| {
                    let mut m = bytes.clone();
                    m[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                    (at, m)
                }),
            );
        }
    }
}
