//! The `irelative` relocation (docs/FORMAT.md, "Relocation kinds" and rule 16): its resolver
//! must be code of the module, and it may not write the thread-local template.

mod common;

use common::*;
use smf_format::*;

fn irelative(offset: u64, resolver: i64) -> Reloc {
    Reloc {
        offset,
        kind: RelocKind::Irelative,
        import: None,
        addend: resolver,
    }
}

#[test]
fn irelative_relocation_round_trips_and_names_its_resolver() {
    let mut builder = full_builder();
    builder.add_reloc(irelative(RELRO + 0x10, (CODE + 0x10) as i64));
    let bytes = builder.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let found: Vec<_> = module
        .relocations()
        .iter()
        .filter(|r| r.kind == RelocKind::Irelative)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].offset, found[0].import, found[0].addend),
        (RELRO + 0x10, None, (CODE + 0x10) as i64)
    );
    assert_eq!(RelocKind::Irelative.as_raw(), 6);
    assert_eq!(RelocKind::Irelative.to_string(), "irelative");
}

#[test]
fn irelative_resolver_must_be_inside_a_code_section() {
    for resolver in [
        DATA as i64,
        -16,
        (CODE + 0x1040) as i64,
        IMAGE_SIZE as i64 + 8,
    ] {
        let mut builder = full_builder();
        builder.add_reloc(irelative(DATA + 0x8, resolver));
        let error = builder.write().unwrap_err().to_string();
        assert!(
            error.contains("resolver") && error.contains("not inside a code section"),
            "resolver {resolver:#x}: {error}"
        );
    }
}

#[test]
fn irelative_may_not_write_the_tls_template() {
    let mut builder = full_builder();
    builder.add_section(LoadedSection {
        kind: SectionKind::Tls,
        name: ".tls",
        vaddr: 0x8000,
        mem_size: 0x20,
        align: 16,
        data: vec![0; 16],
    });
    builder.add_reloc(irelative(0x8008, CODE as i64));
    let error = builder.write().unwrap_err().to_string();
    assert!(error.contains("writes the tls section"), "{error}");
}

#[test]
fn irelative_must_name_no_import() {
    let mut builder = full_builder();
    builder.add_reloc(irelative(RELRO + 0x10, CODE as i64));
    let mut bytes = builder.write().unwrap();
    let index = Module::parse(&bytes)
        .unwrap()
        .relocations()
        .iter()
        .position(|r| r.kind == RelocKind::Irelative)
        .unwrap();
    entry_mut::<raw::Reloc>(&mut bytes, SectionKind::Reloc, index)
        .import
        .set(0);
    rehash(&mut bytes);
    expect_err(&bytes, &["irelative relocation names import 0"]);
}
