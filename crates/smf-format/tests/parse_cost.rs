//! The cost of parsing must grow with the size of the file, not with its square: a crafted
//! module of a few megabytes must not keep a loader busy for minutes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use smf_format::*;

/// A guard against hangs, far above what a linear parse of these ~1 MiB files takes in a
/// debug build on a loaded machine; speed itself is measured by benchmarks, not here.
const BUDGET: Duration = Duration::from_secs(10);

#[track_caller]
fn parse_within_budget(bytes: &[u8]) -> Result<(), Error> {
    let start = Instant::now();
    let result = Module::parse(bytes).map(|_| ());
    let took = start.elapsed();
    assert!(
        took < BUDGET,
        "parsing {:#x} bytes took {took:?} ({result:?})",
        bytes.len()
    );
    result
}

#[test]
fn many_exports_parse_in_linear_time() {
    // The writer's table has one bucket per export, so chains are short.
    let bytes = type_symbols(20_000, |i| format!("sym_{i}"), Binding::Global);
    parse_within_budget(&bytes).unwrap();
}

#[test]
fn one_long_hash_chain_does_not_make_parsing_quadratic() {
    // 20 000 exports, all chained from a single bucket (the table is rewritten in place and
    // shortened; the words past its new end are unused file bytes). Each symbol is checked
    // by a lookup that walks the chain from its head: 2e8 steps for a 1 MiB file, about
    // 8 s in a debug build; with the default limit of 4M symbols, hours.
    let count = 20_000u32;
    let bytes = type_symbols(count as usize, |i| format!("sym_{i}"), Binding::Global);
    let range = payload_range(&bytes, SectionKind::Hash);
    let hash = section_index(&bytes, SectionKind::Hash);
    let bad = patched(&bytes, |b| {
        let mut words = vec![1, count, 0];
        words.extend((1..count).chain([u32::MAX]));
        let payload: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        b[range.start..range.start + payload.len()].copy_from_slice(&payload);
        section_mut(b, hash).file_size = (payload.len() as u64).into();
    });
    // The table is valid (every export is found), so only the time is in question.
    let _ = parse_within_budget(&bad);
}

#[test]
fn names_are_bounded_by_the_name_length_limit() {
    // Names may share bytes of the string table, so reading them would cost
    // symbols x name length without a bound: a name of up to `max_name_len` bytes is read,
    // a longer one is refused without scanning past the limit.
    let limit = Limits::default().max_name_len as usize;
    let at_limit = "x".repeat(limit);
    parse_within_budget(&type_symbols(4, |_| at_limit.clone(), Binding::Local)).unwrap();
    let over = "x".repeat(limit + 1);
    let names: &'static str = Box::leak(over.into_boxed_str());
    let mut b = ModuleBuilder::new();
    b.add_symbol(Symbol {
        name: names,
        kind: SymbolKind::Type,
        binding: Binding::Local,
        visibility: Visibility::Default,
        section: None,
        value: 0,
        size: 0,
        type_id: 0,
        version: 0,
    });
    let message = b.write().unwrap_err().to_string();
    assert!(
        message.contains("longer than the limit of 65536 bytes"),
        "{message}"
    );
}
