//! Write modules with the builder, read them back, compare every field; and check the file
//! layout the writer promises in docs/FORMAT.md.

mod common;

use common::*;
use smf_format::raw::{self, PAGE_SIZE};
use smf_format::*;
use zerocopy::FromBytes;

#[test]
fn every_field_survives_a_round_trip() {
    let bytes = full_module();
    let module = Module::parse(&bytes).unwrap();
    module.verify_hash().unwrap();

    let header = module.header();
    assert_eq!(header.version_major, 1);
    assert_eq!(header.version_minor, 0);
    assert_eq!(header.platform, Platform::Linux);
    assert_eq!(header.arch, Arch::X86_64);
    let flags = ModuleFlags::PIC
        .union(ModuleFlags::RELOADABLE)
        .union(ModuleFlags::DEBUG_INFO)
        .union(ModuleFlags::EXECUTABLE);
    assert_eq!(header.flags, flags);
    assert_eq!(header.image_size, IMAGE_SIZE);
    assert_eq!(header.entry_point, Some(CODE));
    assert_eq!(header.source_hash, 0xfeed_face_cafe_beef);
    assert_eq!(header.module_hash, compute_module_hash(&bytes).unwrap());

    // Loaded sections first, in the builder's order, so symbol section indices are the builder's.
    let builder_sections = [
        (SectionKind::Code, ".text", CODE, 0x1040, 16, code_bytes()),
        (
            SectionKind::RoData,
            ".rodata",
            RODATA,
            0x20,
            8,
            (0..0x20).collect::<Vec<u8>>(),
        ),
        (
            SectionKind::RelRo,
            ".data.rel.ro",
            RELRO,
            0x18,
            8,
            vec![0; 0x18],
        ),
        (SectionKind::Data, ".data", DATA, 0x100, 8, vec![0x5a; 0x20]),
        (SectionKind::Bss, ".bss", BSS, 0x1800, 32, Vec::new()),
    ];
    for (i, (kind, name, vaddr, mem_size, align, data)) in builder_sections.iter().enumerate() {
        let s = &module.sections()[i];
        assert_eq!(s.index, i as u32);
        assert_eq!(
            (s.kind, s.name, s.vaddr, s.mem_size, s.align),
            (*kind, *name, *vaddr, *mem_size, *align)
        );
        assert_eq!(s.flags, kind.protection());
        assert_eq!(s.data, &data[..], "payload of {name}");
        assert_eq!(s.file_size, data.len() as u64);
    }
    let eh = &module.sections()[5];
    assert_eq!(
        (eh.kind, eh.name, eh.vaddr, eh.mem_size),
        (SectionKind::EhFrame, ".eh_frame", EH_FRAME, 0x14)
    );
    assert_eq!(eh.flags, SectionFlags::READ);
    assert_eq!(module.loaded_sections().count(), 6);

    assert_eq!(module.symbols().to_vec().unwrap(), &full_symbols()[..]);
    assert_eq!(module.imports(), &full_imports()[..]);
    let mut relocs = full_relocs();
    relocs.sort_by_key(|r| r.offset);
    assert_eq!(module.relocations(), &relocs[..]);
    assert_eq!(module.needed(), &["libc.so.6", "libm.so.6"]);
    assert_eq!(
        module.init_array(),
        &[CODE + 0x20, CODE + 0x10],
        "constructors keep their order"
    );
    assert_eq!(module.fini_array(), &[CODE + 0x30]);
    assert_eq!(
        module.table_section(SectionKind::TypeInfo).unwrap().data,
        common::small_type_table()
    );
    assert_eq!(module.module_version(), Some(Version::new(1, 2, 3)));
    assert_eq!(
        module.table_section(SectionKind::SrcMap).unwrap().data,
        full_source_map()
    );
    let lines = module.source_map().unwrap().unwrap();
    assert_eq!(lines.lookup(CODE + 0x10).unwrap().to_string(), "full.c:4");

    for symbol in module.symbols().to_vec().unwrap() {
        let found = module.lookup(symbol.name);
        if symbol.is_exported() {
            assert_eq!(found, Some(symbol));
        } else {
            assert_eq!(found, None, "local {} must not be found", symbol.name);
        }
    }
    assert_eq!(
        module.section_at(DATA + 0x80).map(|s| s.kind),
        Some(SectionKind::Data)
    );
    assert_eq!(
        module.section_at(DATA + 0x100),
        None,
        "the gap after .data belongs to no section"
    );
}

#[test]
fn header_enums_round_trip() {
    for &platform in Platform::ALL {
        for &arch in Arch::ALL {
            let mut b = ModuleBuilder::new();
            b.platform = platform;
            b.arch = arch;
            b.flags = ModuleFlags(0);
            b.source_hash = u64::MAX;
            let bytes = b.write().unwrap();
            let module = Module::parse(&bytes).unwrap();
            let header = module.header();
            assert_eq!(
                (
                    header.platform,
                    header.arch,
                    header.flags,
                    header.source_hash
                ),
                (platform, arch, ModuleFlags(0), u64::MAX)
            );
            assert_eq!((header.image_size, header.entry_point), (0, None));
            assert_eq!(bytes[6], platform.as_raw());
            assert_eq!(bytes[7], arch.as_raw());
        }
    }
}

#[test]
fn an_empty_module_is_a_bare_header() {
    let bytes = ModuleBuilder::new().write().unwrap();
    assert_eq!(
        bytes.len(),
        128,
        "no sections: the file is the header alone"
    );
    let module = Module::parse(&bytes).unwrap();
    assert!(module.sections().is_empty());
    assert_eq!(module.lookup("anything"), None);
    module.verify_hash().unwrap();
}

#[test]
fn writer_layout_follows_the_specification() {
    let bytes = full_module();
    let (header, _) = raw::Header::ref_from_prefix(&bytes[..]).unwrap();
    assert_eq!(&header.magic, b"SMF\0");
    assert_eq!(
        header.section_table_offset.get(),
        128,
        "the section table follows the header"
    );
    assert!(header.reserved.iter().all(|&b| b == 0));
    let count = header.section_count.get() as usize;
    let entries = <[raw::SectionHeader]>::ref_from_bytes(&bytes[128..128 + 64 * count]).unwrap();

    let module = Module::parse(&bytes).unwrap();
    let kinds: Vec<SectionKind> = module.sections().iter().map(|s| s.kind).collect();
    use SectionKind::*;
    assert_eq!(
        kinds,
        [
            Code, RoData, RelRo, Data, Bss, EhFrame, StrTab, SymTab, Hash, Imports, Reloc, Needed,
            InitArray, FiniArray, TypeInfo, Version, SrcMap
        ],
        "loaded sections in builder order, then the string table, then the other tables"
    );

    // Tables follow the section table, each 8-aligned and packed in table order.
    let mut cursor = 128 + 64 * count as u64;
    for (entry, section) in entries
        .iter()
        .zip(module.sections())
        .filter(|(_, s)| !s.kind.is_loaded())
    {
        cursor = cursor.next_multiple_of(8);
        assert_eq!(
            entry.file_offset.get(),
            cursor,
            "{} payload offset",
            section.name
        );
        assert_eq!(
            (entry.vaddr.get(), entry.mem_size.get(), entry.align.get()),
            (0, 0, 8)
        );
        assert_eq!(entry.flags.get(), 0);
        cursor += entry.file_size.get();
    }
    // Loaded payloads follow at page-aligned file offsets, in table order; bss has none.
    for (entry, section) in entries
        .iter()
        .zip(module.sections())
        .filter(|(_, s)| s.kind.is_loaded())
    {
        if section.kind == Bss {
            assert_eq!((entry.file_offset.get(), entry.file_size.get()), (0, 0));
            continue;
        }
        assert_eq!(
            entry.file_offset.get(),
            cursor.next_multiple_of(PAGE_SIZE),
            "{} payload offset",
            section.name
        );
        assert_eq!(entry.file_offset.get() % PAGE_SIZE, 0);
        assert_eq!(entry.vaddr.get() % PAGE_SIZE, 0);
        cursor = entry.file_offset.get() + entry.file_size.get();
    }
    assert_eq!(
        bytes.len() as u64,
        cursor,
        "the file ends with the last payload"
    );

    // The string table: offset 0 is the empty string, names are stored once and NUL-terminated.
    let strtab = module.table_section(StrTab).unwrap().data;
    assert_eq!(strtab[0], 0);
    assert_eq!(*strtab.last().unwrap(), 0);
    for name in ["main", "puts", "libc.so.6", "ANSWER"] {
        let needle = [b"\0", name.as_bytes(), b"\0"].concat();
        assert_eq!(
            strtab
                .windows(needle.len())
                .filter(|w| *w == &needle[..])
                .count(),
            1,
            "{name} stored once"
        );
    }
}

#[test]
fn shared_names_are_stored_once() {
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 1,
        align: 1,
        data: vec![0xc3],
    });
    b.add_symbol(Symbol {
        name: "shared",
        kind: SymbolKind::Function,
        binding: Binding::Local,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: 1,
        type_id: 0,
        version: 0,
    });
    b.add_import(Import {
        name: "shared",
        kind: ImportKind::Function,
        binding: Binding::Weak,
        type_id: 0,
        version: 0,
    });
    b.add_needed("shared");
    let bytes = b.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(
        module.table_section(SectionKind::StrTab).unwrap().data,
        b"\0shared\0"
    );
    assert_eq!(module.symbols().to_vec().unwrap()[0].name, "shared");
    assert_eq!(module.imports()[0].name, "shared");
    assert_eq!(module.needed(), &["shared"]);
}

#[test]
fn writing_is_deterministic() {
    assert_eq!(full_module(), full_module());
}

#[test]
fn the_builder_refuses_inconsistent_descriptions() {
    // A relocation into code would make the loader write a code page.
    let mut b = full_builder();
    b.add_reloc(Reloc {
        offset: CODE,
        kind: RelocKind::Relative64,
        import: None,
        addend: 0,
    });
    let message = b.write().unwrap_err().to_string();
    assert!(
        message.contains("cannot build module") && message.contains("relocations may not write"),
        "{message}"
    );

    let mut b = full_builder();
    assert!(b.set_opaque(SectionKind::Code, vec![1]).is_err());
    assert!(b.set_opaque(SectionKind::SymTab, vec![1]).is_err());

    let mut b = ModuleBuilder::new();
    b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: "sixteen-bytes-xx",
        vaddr: 0,
        mem_size: 1,
        align: 1,
        data: vec![0xc3],
    });
    assert!(
        b.write()
            .unwrap_err()
            .to_string()
            .contains("at most 15 bytes")
    );

    let mut b = ModuleBuilder::new();
    b.add_section(LoadedSection {
        kind: SectionKind::SymTab,
        name: ".symtab",
        vaddr: 0,
        mem_size: 0,
        align: 8,
        data: vec![],
    });
    assert!(
        b.write()
            .unwrap_err()
            .to_string()
            .contains("not a loaded section kind")
    );
}

#[test]
fn the_builder_refuses_a_function_at_the_end_of_its_code() {
    let symbol = |name, kind, section, value| Symbol {
        name,
        kind,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(section),
        value,
        size: 0,
        type_id: 0,
        version: 0,
    };
    // .text is 0x0..0x1040: a function of size 0 at 0x1040 has no code to run.
    let mut b = full_builder();
    b.add_symbol(symbol("dangling", SymbolKind::Function, 0, CODE + 0x1040));
    let message = b.write().unwrap_err().to_string();
    assert!(
        message.contains("cannot build module")
            && message.contains("symbol 12 (dangling)")
            && message.contains("function address 0x1040 is the end of section 0 (0x0..0x1040)"),
        "{message}"
    );
    // End markers of size 0 are data, and stay legal at the end of any loaded section.
    let mut b = full_builder();
    b.add_symbol(symbol("__stop_text", SymbolKind::Data, 0, CODE + 0x1040));
    b.add_symbol(symbol("_end", SymbolKind::Data, 4, BSS + 0x1800));
    let bytes = b.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    assert_eq!(module.lookup("__stop_text").unwrap().value, 0x1040);
    assert_eq!(module.lookup("_end").unwrap().value, BSS + 0x1800);
}

#[test]
fn image_layout_places_sections_on_pages() {
    let mut layout = ImageLayout::new();
    assert_eq!(layout.place(6).unwrap(), 0);
    assert_eq!(layout.place(0x1000).unwrap(), 0x1000);
    assert_eq!(layout.place(1).unwrap(), 0x2000);
    assert_eq!(layout.size(), 0x3000);
    assert!(layout.place(u64::MAX).is_err());
}

#[test]
fn an_empty_opaque_table_is_kept() {
    let mut b = ModuleBuilder::new();
    b.set_opaque(SectionKind::Version, Vec::new()).unwrap();
    b.set_opaque(SectionKind::TypeInfo, common::small_type_table())
        .unwrap();
    b.set_opaque(SectionKind::Version, vec![]).unwrap(); // set again: moves to the end
    let bytes = b.write().unwrap();
    let module = Module::parse(&bytes).unwrap();
    let tables: Vec<_> = module
        .sections()
        .iter()
        .map(|s| (s.kind, s.file_offset, s.file_size))
        .collect();
    assert_eq!(
        tables,
        [
            (SectionKind::TypeInfo, 0x100, 16 + 8 * 32),
            (SectionKind::Version, 0x210, 0)
        ]
    );
    assert_eq!(
        bytes.len(),
        0x210,
        "the file ends at the (empty) last payload"
    );
}
