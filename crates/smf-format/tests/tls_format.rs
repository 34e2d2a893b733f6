//! The `tls` section and the `tls_module` relocation: written, read back, and every rule the
//! reader enforces on them (docs/FORMAT.md, "Thread-local storage" and rules 11 and 16).

mod common;

use common::*;
use smf_format::*;

const TLS: u64 = 0x8000;

/// The full test module plus a TLS template (8 initialised bytes, 0x20 in all) and a
/// `tls_index` pair in relro whose first word gets the module handle.
fn tls_builder() -> ModuleBuilder<'static> {
    let mut builder = full_builder();
    builder.add_section(LoadedSection {
        kind: SectionKind::Tls,
        name: ".tls",
        vaddr: TLS,
        mem_size: 0x20,
        align: 16,
        data: vec![1, 2, 3, 4, 5, 6, 7, 8],
    });
    builder.add_reloc(Reloc {
        offset: RELRO + 0x8,
        kind: RelocKind::TlsModule,
        import: None,
        addend: 0,
    });
    builder
}

#[test]
fn tls_template_and_handle_relocation_round_trip() {
    let bytes = tls_builder().write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let tls: Vec<_> = module
        .loaded_sections()
        .filter(|s| s.kind == SectionKind::Tls)
        .collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(
        (tls[0].vaddr, tls[0].mem_size, tls[0].align, tls[0].data),
        (TLS, 0x20, 16, &[1, 2, 3, 4, 5, 6, 7, 8][..])
    );
    assert_eq!(tls[0].flags, SectionFlags::READ);
    let handle: Vec<_> = module
        .relocations()
        .iter()
        .filter(|r| r.kind == RelocKind::TlsModule)
        .collect();
    assert_eq!(handle.len(), 1);
    assert_eq!((handle[0].offset, handle[0].import), (RELRO + 0x8, None));
}

#[test]
fn relocations_may_write_the_tls_template() {
    let mut builder = tls_builder();
    builder.add_reloc(Reloc {
        offset: TLS + 0x10,
        kind: RelocKind::Relative64,
        import: None,
        addend: 0x2000,
    });
    let bytes = builder.write().unwrap();
    assert!(Module::parse(&bytes).is_ok());
}

fn first_tls_module_reloc(bytes: &mut [u8]) -> &mut raw::Reloc {
    let index = Module::parse(bytes)
        .unwrap()
        .relocations()
        .iter()
        .position(|r| r.kind == RelocKind::TlsModule)
        .unwrap();
    entry_mut::<raw::Reloc>(bytes, SectionKind::Reloc, index)
}

#[test]
fn tls_module_relocation_must_name_no_import_and_have_no_addend() {
    let bytes = tls_builder().write().unwrap();
    let bad = patched(&bytes, |b| first_tls_module_reloc(b).import = 0.into());
    expect_err(
        &bad,
        &["tls_module relocation names import 0; it must hold 0xffffffff"],
    );
    let bad = patched(&bytes, |b| first_tls_module_reloc(b).addend = 8.into());
    expect_err(&bad, &["tls_module relocation has addend 8; it must be 0"]);
}

#[test]
fn thread_local_relocations_need_a_tls_section() {
    // Turn the relative relocation of the plain test module into each thread-local kind.
    let bytes = full_module();
    let index = Module::parse(&bytes)
        .unwrap()
        .relocations()
        .iter()
        .position(|r| r.kind == RelocKind::Relative64)
        .unwrap();
    for kind in [
        RelocKind::TlsModule,
        RelocKind::TpOffset,
        RelocKind::TlsDescriptor,
    ] {
        let bad = patched(&bytes, |b| {
            let reloc = entry_mut::<raw::Reloc>(b, SectionKind::Reloc, index);
            reloc.kind = kind.as_raw().into();
            reloc.addend = 0.into();
        });
        expect_err(
            &bad,
            &[
                &format!("relocation {index}"),
                &format!("{kind} relocation in a module without a tls section"),
            ],
        );
    }
}

/// [`tls_builder`] plus a static-model word (`tp_offset`) and a TLS descriptor.
fn static_tls_builder() -> ModuleBuilder<'static> {
    let mut builder = tls_builder();
    for (offset, kind, addend) in [
        (DATA + 0x40, RelocKind::TpOffset, 0x18),
        (DATA + 0x48, RelocKind::TlsDescriptor, 0),
        (DATA + 0x50, RelocKind::TpOffset, 0x20),
    ] {
        builder.add_reloc(Reloc {
            offset,
            kind,
            import: None,
            addend,
        });
    }
    builder
}

#[test]
fn static_model_relocations_round_trip() {
    let bytes = static_tls_builder().write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let found: Vec<_> = module
        .relocations()
        .iter()
        .filter(|r| matches!(r.kind, RelocKind::TpOffset | RelocKind::TlsDescriptor))
        .map(|r| (r.offset, r.kind, r.import, r.addend))
        .collect();
    assert_eq!(
        found,
        [
            (DATA + 0x40, RelocKind::TpOffset, None, 0x18),
            (DATA + 0x48, RelocKind::TlsDescriptor, None, 0),
            (DATA + 0x50, RelocKind::TpOffset, None, 0x20),
        ]
    );
}

#[test]
fn static_model_addends_stay_in_the_block() {
    let bytes = static_tls_builder().write().unwrap();
    let position = |kind| {
        Module::parse(&bytes)
            .unwrap()
            .relocations()
            .iter()
            .position(|r| r.kind == kind)
            .unwrap()
    };
    let tp = position(RelocKind::TpOffset);
    for addend in [0x21i64, -1] {
        let bad = patched(&bytes, |b| {
            entry_mut::<raw::Reloc>(b, SectionKind::Reloc, tp).addend = addend.into()
        });
        expect_err(
            &bad,
            &[
                &format!("relocation {tp}"),
                &format!(
                    "tp_offset relocation has addend {addend}, outside the thread-local block (0..=32)"
                ),
            ],
        );
    }
    let descriptor = position(RelocKind::TlsDescriptor);
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Reloc>(b, SectionKind::Reloc, descriptor).addend = 8.into()
    });
    expect_err(
        &bad,
        &["tls_descriptor relocation has addend 8; it must be 0"],
    );
}

#[test]
fn a_module_has_at_most_one_tls_section() {
    let mut builder = tls_builder();
    builder.add_section(LoadedSection {
        kind: SectionKind::Tls,
        name: ".tls2",
        vaddr: TLS + 0x1000,
        mem_size: 8,
        align: 8,
        data: vec![],
    });
    let error = builder.write().unwrap_err().to_string();
    assert!(error.contains("a second tls section"), "{error}");
}

#[test]
fn tls_section_flags_must_be_read_only() {
    let bytes = tls_builder().write().unwrap();
    let index = section_index(&bytes, SectionKind::Tls);
    let bad = patched(&bytes, |b| section_mut(b, index).flags = 3.into());
    expect_err(
        &bad,
        &[&format!("section {index} (tls .tls)"), "do not match"],
    );
}

#[test]
fn the_report_names_thread_local_relocation_targets() {
    let tls_section = {
        let bytes = static_tls_builder().write().unwrap();
        section_index(&bytes, SectionKind::Tls)
    };
    let mut builder = static_tls_builder();
    builder.add_symbol(Symbol {
        name: "counter",
        kind: SymbolKind::Data,
        binding: Binding::Local,
        visibility: Visibility::Default,
        section: Some(tls_section as u32),
        value: TLS + 0x18,
        size: 8,
        type_id: 0,
        version: 1,
    });
    let bytes = builder.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let mut report = String::new();
    smf_format::report::write_report(&module, &mut report).unwrap();
    let line = |offset: u64| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{offset:#010x} ")))
            .unwrap_or_else(|| panic!("no relocation at {offset:#x} in\n{report}"))
            .to_owned()
    };
    assert!(
        report.contains(".data.rel.ro     tls_module  tls block handle\n"),
        "{report}"
    );
    assert!(line(DATA + 0x40).ends_with("tp_offset   tp + tls block + 0x18 <counter>"));
    assert!(line(DATA + 0x48).ends_with("tls_descriptor tls descriptor function"));
}
