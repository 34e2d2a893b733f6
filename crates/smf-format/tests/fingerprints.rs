//! The `fingerprints` table (docs/FORMAT.md, *Function fingerprints*): written by the builder,
//! read by symbol, and refused when an entry breaks a rule of the reader.

use smf_format::report::{Parts, json_report, write_report};
use smf_format::*;

/// Two exported functions (symbols 0 and 2) around a local one (symbol 1); fingerprints for
/// `entries`.
fn module(entries: &[(u32, u64)]) -> Result<Vec<u8>, Error> {
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 48,
        align: 16,
        data: vec![0xc3; 48],
    });
    for (i, (name, binding)) in [
        ("first", Binding::Global),
        ("inner", Binding::Local),
        ("second", Binding::Weak),
    ]
    .into_iter()
    .enumerate()
    {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding,
            visibility: Visibility::Default,
            section: Some(text),
            value: 16 * i as u64,
            size: 16,
            type_id: 0,
            version: 0,
        });
    }
    for &(symbol, fingerprint) in entries {
        b.add_fingerprint(symbol, fingerprint);
    }
    b.write()
}

/// The file range of the `fingerprints` table of `bytes`.
fn table(bytes: &[u8]) -> std::ops::Range<usize> {
    let module = Module::parse(bytes).unwrap();
    let section = module.table_section(SectionKind::Fingerprints).unwrap();
    let start = section.file_offset as usize;
    start..start + section.file_size as usize
}

#[test]
fn fingerprints_are_read_by_symbol() {
    // Added out of order, one replaced: written sorted, the last one kept.
    let bytes = module(&[(2, 0xbbbb), (0, 0x1111), (0, 0xaaaa)]).unwrap();
    let parsed = Module::parse(&bytes).unwrap();
    assert_eq!(parsed.fingerprint(0), Some(0xaaaa));
    assert_eq!(parsed.fingerprint(1), None);
    assert_eq!(parsed.fingerprint(2), Some(0xbbbb));
    assert_eq!(parsed.fingerprint(3), None);
    assert_eq!(
        parsed.fingerprints().collect::<Vec<_>>(),
        [(0, 0xaaaa), (2, 0xbbbb)]
    );
    let none = module(&[]).unwrap();
    assert_eq!(Module::parse(&none).unwrap().fingerprints().len(), 0);
}

#[test]
fn the_builder_refuses_a_fingerprint_of_anything_but_an_exported_function() {
    for symbol in [1, 3] {
        let e = module(&[(symbol, 1)]).unwrap_err().to_string();
        assert!(e.contains("fingerprints entry 0"), "{e}");
    }
}

#[test]
fn a_reader_refuses_broken_entries() {
    let good = module(&[(0, 0xaaaa), (2, 0xbbbb)]).unwrap();
    let range = table(&good);
    let patched = |patch: &dyn Fn(&mut [u8])| {
        let mut bytes = good.clone();
        patch(&mut bytes[range.clone()]);
        Module::parse(&bytes).map(drop).unwrap_err().to_string()
    };
    let cases: [(&dyn Fn(&mut [u8]), &str); 5] = [
        (
            &|t| t[16..20].copy_from_slice(&0u32.to_le_bytes()),
            "fingerprints entry 1: symbol 0 does not follow symbol 0",
        ),
        (
            &|t| t[0..4].copy_from_slice(&2u32.to_le_bytes()),
            "fingerprints entry 1: symbol 2 does not follow symbol 2",
        ),
        (
            &|t| t[16..20].copy_from_slice(&1u32.to_le_bytes()),
            "fingerprints entry 1: symbol 1 is not an exported function",
        ),
        (
            &|t| t[16..20].copy_from_slice(&7u32.to_le_bytes()),
            "fingerprints entry 1: symbol 7 is past the symbol table (3 entries)",
        ),
        (
            &|t| t[4] = 1,
            "fingerprints entry 0: reserved field is not zero",
        ),
    ];
    for (patch, expected) in cases {
        let e = patched(patch);
        assert!(e.contains(expected), "{e}\nexpected: {expected}");
    }
}

#[test]
fn inspect_lists_the_fingerprints() {
    let bytes = module(&[(0, 0xaaaa), (2, 0xbbbb)]).unwrap();
    let parsed = Module::parse(&bytes).unwrap();
    let mut text = String::new();
    write_report(&parsed, &mut text).unwrap();
    assert!(
        text.contains("Fingerprints (2):\n   Num Fingerprint        Name\n     0 000000000000aaaa   first\n     2 000000000000bbbb   second\n"),
        "{text}"
    );
    let json = json_report(&parsed, Parts::ALL);
    let fingerprints: Vec<_> = json["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["fingerprint"].as_str())
        .collect();
    assert_eq!(
        fingerprints,
        [Some("000000000000aaaa"), None, Some("000000000000bbbb")]
    );
    // Without the table, no section of the report.
    let mut text = String::new();
    let without = module(&[]).unwrap();
    write_report(&Module::parse(&without).unwrap(), &mut text).unwrap();
    assert!(!text.contains("Fingerprints"), "{text}");
}
