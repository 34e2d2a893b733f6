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
fn relocated_ranges_are_the_runs_of_written_pages() {
    // Relocations out of order in two sections with an unwritten page between them, and in
    // a large section at both ends only: its unwritten pages are in no range.
    let mut builder = ModuleBuilder::new();
    let mut layout = ImageLayout::new();
    let mut section = |kind, name, size: u64| {
        let vaddr = layout.place(size).unwrap();
        builder.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size: size,
            align: 8,
            data: vec![0; size as usize],
        });
        vaddr
    };
    let relro = section(SectionKind::RelRo, ".data.rel.ro", 0x100);
    let _quiet = section(SectionKind::Data, ".data.quiet", 0x100);
    let data = section(SectionKind::Data, ".data", 0x100);
    let large = section(SectionKind::Data, ".data.large", 0x10_0000);
    let offsets = [
        data + 0x40,
        relro + 0x18,
        large + 0x10_0000 - 8,
        data + 0x10,
        relro,
        large,
        data + 0x80,
        large + 0x3ff8,
    ];
    for offset in offsets {
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
        [
            relro..relro + 0x20,
            // `data` ends on the page before `large` starts: pages that touch, one run.
            data + 0x10..large + 8,
            large + 0x3ff8..large + 0x4000,
            large + 0x10_0000 - 8..large + 0x10_0000,
        ]
    );
    let empty = ModuleBuilder::new().write().unwrap();
    assert!(Module::parse(&empty).unwrap().relocated_ranges().is_empty());
}
