//! `Module::relocations` reads the validated table in place; the view gives the entries
//! the writer was given, in order, by index and backwards.

use smf_format::*;

#[test]
fn the_view_reads_back_what_was_written() {
    let mut builder = ModuleBuilder::new();
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(64).unwrap();
    builder.add_section(LoadedSection {
        kind: SectionKind::RelRo,
        name: ".data.rel.ro",
        vaddr,
        mem_size: 64,
        align: 8,
        data: vec![0; 64],
    });
    let import = builder.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    let written = [
        Reloc {
            offset: vaddr,
            kind: RelocKind::Abs64,
            import: Some(import),
            addend: -8,
        },
        Reloc {
            offset: vaddr + 8,
            kind: RelocKind::Relative64,
            import: None,
            addend: 0x40,
        },
        Reloc {
            offset: vaddr + 16,
            kind: RelocKind::Relative64,
            import: None,
            addend: 0,
        },
    ];
    for reloc in written {
        builder.add_reloc(reloc);
    }
    let bytes = builder.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let relocations = module.relocations();

    assert_eq!(relocations.len(), 3);
    assert!(!relocations.is_empty());
    assert_eq!(relocations, &written[..]);
    assert_eq!(relocations.get(1), Some(written[1]));
    assert_eq!(relocations.get(3), None);
    assert_eq!(relocations.iter().len(), 3);
    assert_eq!(
        relocations.iter().rev().collect::<Vec<_>>(),
        [written[2], written[1], written[0]]
    );
    assert_eq!(relocations.into_iter().collect::<Vec<_>>(), written);
    assert!(format!("{relocations:?}").contains("Abs64"));
}

#[test]
fn relocated_ranges_span_what_each_section_has_written() {
    // Two sections written out of order, and one never written.
    let mut builder = ModuleBuilder::new();
    let mut layout = ImageLayout::new();
    let mut section = |kind, name| {
        let vaddr = layout.place(0x100).unwrap();
        builder.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size: 0x100,
            align: 8,
            data: vec![0; 0x100],
        });
        vaddr
    };
    let relro = section(SectionKind::RelRo, ".data.rel.ro");
    let data = section(SectionKind::Data, ".data");
    let _quiet = section(SectionKind::Data, ".data.quiet");
    for offset in [data + 0x40, relro + 0x18, data + 0x10, relro, data + 0x80] {
        builder.add_reloc(Reloc {
            offset,
            kind: RelocKind::Relative64,
            import: None,
            addend: 0,
        });
    }
    let bytes = builder.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(
        module.relocated_ranges(),
        [relro..relro + 0x20, data + 0x10..data + 0x88]
    );
    let empty = ModuleBuilder::new().write().unwrap();
    assert!(Module::parse(&empty).unwrap().relocated_ranges().is_empty());
}
