//! The `pdata` section, a Windows module's x64 function table: written, read back, and the
//! rules the reader enforces on it (docs/FORMAT.md, "Function table" and rule 11.6).

mod common;

use common::*;
use smf_format::*;

const PDATA: u64 = 0x8000;

/// Two `RUNTIME_FUNCTION` entries: (begin, end, unwind information) image offsets.
fn entries() -> Vec<u8> {
    [[0x10u32, 0x20, 0x1000], [0x20, 0x31, 0x1008]]
        .iter()
        .flatten()
        .flat_map(|word| word.to_le_bytes())
        .collect()
}

fn pdata_builder(data: Vec<u8>, mem_size: u64) -> ModuleBuilder<'static> {
    let mut builder = full_builder();
    builder.platform = Platform::Windows;
    builder.add_section(LoadedSection {
        kind: SectionKind::Pdata,
        name: ".pdata",
        vaddr: PDATA,
        mem_size,
        align: 4,
        data,
    });
    builder
}

#[test]
fn function_table_round_trips_read_only() {
    let bytes = pdata_builder(entries(), 24).write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(module.header().platform, Platform::Windows);
    let pdata: Vec<_> = module
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::Pdata)
        .collect();
    assert_eq!(pdata.len(), 1);
    assert_eq!(
        (pdata[0].vaddr, pdata[0].mem_size, pdata[0].data),
        (PDATA, 24, &entries()[..])
    );
    assert_eq!(pdata[0].flags, SectionFlags::READ);
    let raw = &bytes[section_entry_offset(&bytes, section_index(&bytes, SectionKind::Pdata))..];
    assert_eq!(u32::from_le_bytes(raw[..4].try_into().unwrap()), 20);
}

#[test]
fn function_table_size_is_whole_entries_all_in_the_file() {
    let error = pdata_builder(entries()[..20].to_vec(), 20)
        .write()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("must be equal and a multiple of 12"),
        "{error}"
    );
    // Zero-filled entries past the file bytes would be functions at offset 0.
    let error = pdata_builder(entries(), 36)
        .write()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("file size 0x18 and memory size 0x24"),
        "{error}"
    );
}

#[test]
fn a_module_has_at_most_one_function_table() {
    let mut builder = pdata_builder(entries(), 24);
    builder.add_section(LoadedSection {
        kind: SectionKind::Pdata,
        name: ".pdata2",
        vaddr: PDATA + 0x1000,
        mem_size: 12,
        align: 4,
        data: entries()[..12].to_vec(),
    });
    let error = builder.write().unwrap_err().to_string();
    assert!(error.contains("a second pdata section"), "{error}");
}

#[test]
fn function_table_flags_must_be_read_only() {
    let bytes = pdata_builder(entries(), 24).write().unwrap();
    let index = section_index(&bytes, SectionKind::Pdata);
    let bad = patched(&bytes, |b| section_mut(b, index).flags = 3.into());
    expect_err(
        &bad,
        &[&format!("section {index} (pdata .pdata)"), "do not match"],
    );
}
