//! Helpers shared by the integration tests: a module that uses every part of the format, and
//! byte patching through the raw structures of `smf_format::raw`.
#![allow(dead_code)] // Each test binary uses a different subset.

use smf_format::raw::{self, MODULE_HASH_RANGE};
use smf_format::*;
use zerocopy::FromBytes;

/// Image layout of [`full_module`]: one page-aligned range per loaded section.
pub const CODE: u64 = 0x0000;
pub const RODATA: u64 = 0x2000;
pub const RELRO: u64 = 0x3000;
pub const DATA: u64 = 0x4000;
pub const BSS: u64 = 0x5000;
pub const EH_FRAME: u64 = 0x7000;
pub const IMAGE_SIZE: u64 = 0x8000;

/// Code: `main` at 0x00, `helper` at 0x10, `ctor` at 0x20, `dtor` at 0x30, each a `ret`.
pub fn code_bytes() -> Vec<u8> {
    let mut code = vec![0xcc; 0x1040];
    for offset in [0x00, 0x10, 0x20, 0x30] {
        code[offset] = 0xc3;
    }
    code
}

/// The symbols of [`full_module`]: every kind, binding and visibility.
pub fn full_symbols() -> Vec<Symbol<'static>> {
    let s = |name, kind, binding, visibility, section, value, size| Symbol {
        name,
        kind,
        binding,
        visibility,
        section,
        value,
        size,
        type_id: 0,
        version: 0,
    };
    vec![
        s(
            "main",
            SymbolKind::Function,
            Binding::Global,
            Visibility::Default,
            Some(0),
            CODE,
            1,
        ),
        s(
            "helper",
            SymbolKind::Function,
            Binding::Local,
            Visibility::Hidden,
            Some(0),
            CODE + 0x10,
            1,
        ),
        s(
            "weak_fn",
            SymbolKind::Function,
            Binding::Weak,
            Visibility::Protected,
            Some(0),
            CODE + 0x20,
            1,
        ),
        s(
            "table",
            SymbolKind::Data,
            Binding::Global,
            Visibility::Default,
            Some(1),
            RODATA,
            0x20,
        ),
        s(
            "vtable",
            SymbolKind::Data,
            Binding::Global,
            Visibility::Default,
            Some(2),
            RELRO,
            0x18,
        ),
        s(
            "counter",
            SymbolKind::Data,
            Binding::Weak,
            Visibility::Default,
            Some(3),
            DATA + 8,
            8,
        ),
        s(
            "zeroes",
            SymbolKind::Data,
            Binding::Local,
            Visibility::Default,
            Some(4),
            BSS,
            0x1800,
        ),
        s(
            "Point",
            SymbolKind::Type,
            Binding::Global,
            Visibility::Default,
            None,
            0x1111,
            16,
        ),
        s(
            "Show",
            SymbolKind::Trait,
            Binding::Global,
            Visibility::Default,
            None,
            0x2222,
            0,
        ),
        s(
            "Worker",
            SymbolKind::Actor,
            Binding::Global,
            Visibility::Default,
            None,
            0x3333,
            0,
        ),
        s(
            "ANSWER",
            SymbolKind::Constant,
            Binding::Global,
            Visibility::Default,
            None,
            42,
            0,
        ),
        Symbol {
            type_id: 7,
            version: 3,
            ..s(
                "typed",
                SymbolKind::Data,
                Binding::Global,
                Visibility::Default,
                Some(3),
                DATA,
                8,
            )
        },
    ]
}

pub fn full_imports() -> Vec<Import<'static>> {
    vec![
        Import {
            name: "puts",
            kind: ImportKind::Function,
            binding: Binding::Global,
            type_id: 0,
            version: 0,
        },
        Import {
            name: "environ",
            kind: ImportKind::Data,
            binding: Binding::Weak,
            type_id: 5,
            version: 2,
        },
        Import {
            name: "maybe",
            kind: ImportKind::Any,
            binding: Binding::Weak,
            type_id: 0,
            version: 0,
        },
    ]
}

/// Relocations in the order they are added; the writer stores them sorted by offset.
pub fn full_relocs() -> Vec<Reloc> {
    vec![
        Reloc {
            offset: DATA + 0x10,
            kind: RelocKind::Relative64,
            import: None,
            addend: (CODE + 0x10) as i64,
        },
        Reloc {
            offset: RELRO,
            kind: RelocKind::Abs64,
            import: Some(0),
            addend: 0,
        },
        Reloc {
            offset: RELRO + 8,
            kind: RelocKind::Abs64,
            import: Some(2),
            addend: -8,
        },
        Reloc {
            offset: RELRO + 0x10,
            kind: RelocKind::Relative64,
            import: None,
            addend: RODATA as i64,
        },
        Reloc {
            offset: DATA + 0x18,
            kind: RelocKind::Abs64,
            import: Some(1),
            addend: 0x7fff_ffff_ffff,
        },
    ]
}

/// A module that uses every section kind, every symbol kind and binding, weak and global
/// imports, both relocation kinds, needed libraries, constructors, destructors, the opaque
/// tables and an entry point.
pub fn full_builder() -> ModuleBuilder<'static> {
    let mut b = ModuleBuilder::new();
    b.flags = ModuleFlags::PIC
        .union(ModuleFlags::RELOADABLE)
        .union(ModuleFlags::DEBUG_INFO);
    b.source_hash = 0xfeed_face_cafe_beef;
    b.entry_point = Some(CODE);
    let sections = [
        (SectionKind::Code, ".text", CODE, 0x1040, 16, code_bytes()),
        (
            SectionKind::RoData,
            ".rodata",
            RODATA,
            0x20,
            8,
            (0..0x20).collect(),
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
        (
            SectionKind::EhFrame,
            ".eh_frame",
            EH_FRAME,
            0x14,
            8,
            vec![
                0x10, 0, 0, 0, 0xe5, 0xe5, 0xe5, 0xe5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
    ];
    for (i, (kind, name, vaddr, mem_size, align, data)) in sections.into_iter().enumerate() {
        let index = b.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size,
            align,
            data,
        });
        assert_eq!(index, i as u32);
    }
    for symbol in full_symbols() {
        b.add_symbol(symbol);
    }
    for import in full_imports() {
        b.add_import(import);
    }
    for reloc in full_relocs() {
        b.add_reloc(reloc);
    }
    b.add_needed("libc.so.6");
    b.add_needed("libm.so.6");
    b.add_init(CODE + 0x20);
    b.add_init(CODE + 0x10);
    b.add_fini(CODE + 0x30);
    b.set_opaque(SectionKind::TypeInfo, small_type_table())
        .unwrap();
    // Version 3, which the symbol `typed` names, is 1.2.0.
    let mut versions = Versions::new(Version::new(1, 2, 3));
    for minor in 0..3 {
        versions.index_of(Version::new(1, minor, 0));
    }
    b.set_versions(&versions).unwrap();
    b.set_opaque(SectionKind::SrcMap, full_source_map())
        .unwrap();
    b
}

/// The source map of the full module: two functions of `full.c` in its code.
pub fn full_source_map() -> Vec<u8> {
    let mut map = SourceMapBuilder::new();
    let file = map.file("full.c");
    map.add_sequence(
        &[(CODE, file, 3, 1), (CODE + 0x10, file, 4, 0)],
        CODE + 0x20,
    );
    map.encode().unwrap()
}

pub fn full_module() -> Vec<u8> {
    full_builder().write().expect("the full module is valid")
}

/// The index in the section table of the first section of `kind`, from the parsed `bytes`.
pub fn section_index(bytes: &[u8], kind: SectionKind) -> usize {
    let module = Module::parse(bytes).expect("base module parses");
    module
        .sections()
        .iter()
        .position(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} section"))
}

/// File offset of the section table entry `index`.
pub fn section_entry_offset(bytes: &[u8], index: usize) -> usize {
    let (header, _) = raw::Header::ref_from_prefix(bytes).unwrap();
    header.section_table_offset.get() as usize + index * size_of::<raw::SectionHeader>()
}

/// Recomputes the module hash, so that a patched file differs from a valid one only in the
/// structure a test targets.
pub fn rehash(bytes: &mut [u8]) {
    let hash = compute_module_hash(bytes).unwrap();
    bytes[MODULE_HASH_RANGE].copy_from_slice(&hash);
}

/// A copy of `base` with `edit` applied and the module hash recomputed.
pub fn patched(base: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = base.to_vec();
    edit(&mut bytes);
    if bytes.len() >= size_of::<raw::Header>() {
        rehash(&mut bytes);
    }
    bytes
}

pub fn header_mut(bytes: &mut [u8]) -> &mut raw::Header {
    raw::Header::mut_from_prefix(bytes).unwrap().0
}

pub fn section_mut(bytes: &mut [u8], index: usize) -> &mut raw::SectionHeader {
    let at = section_entry_offset(bytes, index);
    raw::SectionHeader::mut_from_prefix(&mut bytes[at..])
        .unwrap()
        .0
}

/// The file range of the payload of the first section of `kind`.
pub fn payload_range(bytes: &[u8], kind: SectionKind) -> core::ops::Range<usize> {
    let index = section_index(bytes, kind);
    let at = section_entry_offset(bytes, index);
    let (entry, _) = raw::SectionHeader::ref_from_prefix(&bytes[at..]).unwrap();
    let start = entry.file_offset.get() as usize;
    start..start + entry.file_size.get() as usize
}

/// The `index`th entry of the table section of `kind`, viewed as `T`.
pub fn entry_mut<T>(bytes: &mut [u8], kind: SectionKind, index: usize) -> &mut T
where
    T: FromBytes + zerocopy::IntoBytes + zerocopy::KnownLayout,
{
    let range = payload_range(bytes, kind);
    let at = range.start + index * size_of::<T>();
    assert!(
        at + size_of::<T>() <= range.end,
        "{kind} has no entry {index}"
    );
    T::mut_from_prefix(&mut bytes[at..]).unwrap().0
}

/// Parses `bytes`, which must fail, and checks the message names every one of `needles`.
#[track_caller]
pub fn expect_err(bytes: &[u8], needles: &[&str]) -> Error {
    expect_err_with(bytes, &Limits::default(), needles)
}

#[track_caller]
pub fn expect_err_with(bytes: &[u8], limits: &Limits, needles: &[&str]) -> Error {
    let error = match Module::parse_with_limits(bytes, limits) {
        Ok(_) => panic!("expected an error mentioning {needles:?}, but the module parsed"),
        Err(error) => error,
    };
    let message = error.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "error message {message:?} does not mention {needle:?}"
        );
    }
    error
}

/// A module of `count` type symbols named by `name_of`; types need no section.
pub fn type_symbols(count: usize, name_of: impl Fn(usize) -> String, binding: Binding) -> Vec<u8> {
    let names: &'static [String] = Box::leak(
        (0..count)
            .map(name_of)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let mut b = ModuleBuilder::new();
    for name in names {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Type,
            binding,
            visibility: Visibility::Default,
            section: None,
            value: 0,
            size: 0,
            type_id: 0,
            version: 0,
        });
    }
    b.write().unwrap()
}

/// A `typeinfo` table of eight integer types (ids 1 to 8), which the symbols and imports of
/// [`full_builder`] name.
#[allow(dead_code)]
pub fn small_type_table() -> Vec<u8> {
    let mut types = smf_format::typeinfo::TypeTableBuilder::new();
    for size in [1, 2, 4, 8] {
        types.int(size, true);
        types.int(size, false);
    }
    types.encode()
}
