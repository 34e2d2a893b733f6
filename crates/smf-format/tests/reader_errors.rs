//! Invalid inputs: each test patches one structure of a valid module (through the raw structs,
//! recomputing the module hash so that only the targeted rule is broken) and checks that the
//! reader rejects it with a message naming what is wrong.

mod common;

use common::*;
use smf_format::raw::{self, NONE};
use smf_format::*;

fn base() -> Vec<u8> {
    full_module()
}

#[test]
fn base_module_is_valid() {
    Module::parse(&base()).unwrap().verify_hash().unwrap();
}

// ---- Header ------------------------------------------------------------------------------

#[test]
fn empty_input() {
    let error = expect_err(&[], &["truncated", "header", "0x80", "0x0"]);
    assert!(matches!(
        error,
        Error::Truncated {
            what: "header",
            needed: 128,
            size: 0
        }
    ));
}

#[test]
fn three_bytes() {
    expect_err(b"SMF", &["truncated", "header needs 0x80 bytes", "has 0x3"]);
}

#[test]
fn wrong_magic() {
    let bad = patched(&base(), |b| b[..4].copy_from_slice(b"SMG\0"));
    let error = expect_err(&bad, &["not an SMF module", "534d4600", "found 534d4700"]);
    assert!(matches!(error, Error::NotSmf { .. }));
    // A short file with the wrong magic is reported as such, not as truncated.
    expect_err(b"MZ\x90\0\x03", &["not an SMF module", "found 4d5a9000"]);
}

#[test]
fn elf_magic() {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    expect_err(&elf, &["ELF", "smf pack"]);
    let mut elf = base();
    elf[..4].copy_from_slice(b"\x7fELF");
    expect_err(&elf, &["this is an ELF file"]);
}

#[test]
fn truncated_header() {
    let bytes = base();
    expect_err(
        &bytes[..127],
        &["truncated", "header needs 0x80 bytes but the file has 0x7f"],
    );
    expect_err(&bytes[..4], &["truncated", "header"]);
}

#[test]
fn unknown_version() {
    let bad = patched(&base(), |b| header_mut(b).version_major = 2);
    let error = expect_err(&bad, &["unsupported SMF version 2.0", "1.x"]);
    assert!(matches!(
        error,
        Error::UnsupportedVersion { major: 2, minor: 0 }
    ));
    let bad = patched(&base(), |b| header_mut(b).version_major = 0);
    expect_err(&bad, &["unsupported SMF version 0.0"]);
    // Any minor version of major 1 is read.
    let newer = patched(&base(), |b| header_mut(b).version_minor = 7);
    assert_eq!(Module::parse(&newer).unwrap().header().version_minor, 7);
}

#[test]
fn unknown_platform_arch_and_flags() {
    expect_err(
        &patched(&base(), |b| header_mut(b).platform = 4),
        &["header", "unknown platform 4"],
    );
    expect_err(
        &patched(&base(), |b| header_mut(b).arch = 2),
        &["header", "unknown architecture 2"],
    );
    expect_err(
        &patched(&base(), |b| header_mut(b).flags = 0x2fu32.into()),
        &["header", "unknown flags 0x20"],
    );
}

#[test]
fn compressed_flag() {
    let bad = patched(&base(), |b| {
        header_mut(b).flags = (header_mut(b).flags.get() | ModuleFlags::COMPRESSED.0).into()
    });
    // Compressed payloads are supported; the flag without one is inconsistent.
    let error = expect_err(&bad, &["header", "COMPRESSED", "no section is compressed"]);
    assert!(matches!(error, Error::Malformed { .. }));
}

#[test]
fn reserved_header_bytes() {
    for at in [0x51, 0x67, 0x7f] {
        let bad = patched(&base(), |b| b[at] = 1);
        expect_err(&bad, &["header", "reserved bytes 0x51..0x80 are not zero"]);
    }
    // 0x50 is the page order: 8 KiB pages leave this 4 KiB module's sections misaligned.
    let bad = patched(&base(), |b| b[0x50] = 1);
    expect_err(&bad, &["not page-aligned"]);
}

#[test]
fn image_size_not_a_page_multiple() {
    let bad = patched(&base(), |b| {
        header_mut(b).image_size = (IMAGE_SIZE + 0x10).into()
    });
    expect_err(
        &bad,
        &[
            "header",
            "image size 0x8010 is not a multiple of the page size",
        ],
    );
}

#[test]
fn entry_point_outside_code() {
    // In .data, in the gap after .text, and past the image.
    for entry in [DATA, 0x1040, 0x10_0000] {
        let bad = patched(&base(), |b| header_mut(b).entry_point = entry.into());
        expect_err(
            &bad,
            &[
                "header",
                &format!("entry point {entry:#x} is not inside a code section"),
            ],
        );
    }
    // The last byte of .text is inside.
    let ok = patched(&base(), |b| header_mut(b).entry_point = 0x103fu64.into());
    assert_eq!(
        Module::parse(&ok).unwrap().header().entry_point,
        Some(0x103f)
    );
}

#[test]
fn entry_point_without_executable_flag() {
    let bad = patched(&base(), |b| {
        let h = header_mut(b);
        h.flags = (h.flags.get() & !ModuleFlags::EXECUTABLE.0).into();
        h.entry_point = 0x10u64.into();
    });
    expect_err(
        &bad,
        &["entry point 0x10 set but the module is not EXECUTABLE"],
    );
}

// ---- Section table -----------------------------------------------------------------------

#[test]
fn truncated_section_table() {
    let bytes = base();
    let cut = &bytes[..128 + 64 + 10];
    let error = expect_err(cut, &["truncated", "section table"]);
    assert!(matches!(
        error,
        Error::Truncated {
            what: "section table",
            size: 0xca,
            ..
        }
    ));
    // A section count so large that the table cannot fit, without overflowing.
    let bad = patched(&bytes, |b| header_mut(b).section_count = 1000u32.into());
    expect_err(&bad, &["section table needs 0xfa80 bytes"]);
    let bad = patched(&bytes, |b| {
        header_mut(b).section_table_offset = u64::MAX.into()
    });
    expect_err(&bad, &["truncated", "section table"]);
}

#[test]
fn section_table_over_the_header() {
    let bad = patched(&base(), |b| {
        header_mut(b).section_table_offset = 0x40u64.into()
    });
    expect_err(
        &bad,
        &["header", "section table offset 0x40 overlaps the header"],
    );
}

#[test]
fn section_file_range_past_eof() {
    let bytes = base();
    let len = bytes.len() as u64;
    let symtab = section_index(&bytes, SectionKind::SymTab);
    let bad = patched(&bytes, |b| section_mut(b, symtab).file_size = len.into());
    expect_err(
        &bad,
        &[
            &format!("section {symtab} (symtab .symtab)"),
            "runs past end of file",
            &format!("({len:#x} bytes)"),
        ],
    );
    // An offset that overflows when the size is added is reported the same way.
    let bad = patched(&bytes, |b| {
        section_mut(b, symtab).file_offset = (u64::MAX - 4).into()
    });
    expect_err(&bad, &["runs past end of file"]);
    // A loaded payload cut off by truncating the file.
    let text = &bytes[..bytes.len() - 1];
    let eh = section_index(&bytes, SectionKind::EhFrame);
    expect_err(
        text,
        &[
            &format!("section {eh} (eh_frame .eh_frame)"),
            "runs past end of file",
        ],
    );
}

#[test]
fn unknown_section_kind() {
    for kind in [0u32, 23, 0xffff_ffff] {
        let bad = patched(&base(), |b| section_mut(b, 0).kind = kind.into());
        expect_err(
            &bad,
            &["section 0", &format!("unknown section type {kind}")],
        );
    }
}

#[test]
fn section_flags_must_match_the_kind() {
    let bad = patched(&base(), |b| section_mut(b, 0).flags = 0x7u32.into());
    expect_err(
        &bad,
        &[
            "section 0 (code .text)",
            "flags RWX do not match the code kind (expected R-X)",
        ],
    );
    let data = section_index(&base(), SectionKind::Data);
    let bad = patched(&base(), |b| section_mut(b, data).flags = 0x7u32.into());
    expect_err(
        &bad,
        &["flags RWX do not match the data kind (expected RW-)"],
    );
    let relro = section_index(&base(), SectionKind::RelRo);
    let bad = patched(&base(), |b| section_mut(b, relro).flags = 0x3u32.into());
    expect_err(
        &bad,
        &["flags RW- do not match the relro kind (expected R--)"],
    );
    let strtab = section_index(&base(), SectionKind::StrTab);
    let bad = patched(&base(), |b| section_mut(b, strtab).flags = 0x1u32.into());
    expect_err(
        &bad,
        &["flags R-- do not match the strtab kind (expected ---)"],
    );
}

#[test]
fn section_names() {
    let bad = patched(&base(), |b| {
        section_mut(b, 0).name = *b".text\0x\0\0\0\0\0\0\0\0\0"
    });
    expect_err(
        &bad,
        &["section 0", "name has bytes after its NUL terminator"],
    );
    let bad = patched(&base(), |b| section_mut(b, 0).name[1] = 0xff);
    expect_err(&bad, &["section 0", "name is not valid UTF-8"]);
}

#[test]
fn section_alignment() {
    for align in [0u64, 3, 0x2000] {
        let bad = patched(&base(), |b| section_mut(b, 0).align = align.into());
        expect_err(
            &bad,
            &[
                "section 0 (code .text)",
                &format!("alignment {align:#x} is not a power of two up to the page size"),
            ],
        );
    }
}

#[test]
fn misaligned_vaddr() {
    let data = section_index(&base(), SectionKind::Data);
    let bad = patched(&base(), |b| {
        section_mut(b, data).vaddr = (DATA + 0x10).into()
    });
    expect_err(
        &bad,
        &[
            &format!("section {data} (data .data)"),
            "address 0x4010 is not page-aligned",
        ],
    );
}

#[test]
fn misaligned_file_offset_of_a_loaded_payload() {
    let bytes = base();
    let data = section_index(&bytes, SectionKind::Data);
    let bad = patched(&bytes, |b| {
        let s = section_mut(b, data);
        s.file_offset = (s.file_offset.get() + 8).into();
    });
    expect_err(
        &bad,
        &[
            &format!("section {data} (data .data)"),
            "is not page-aligned",
        ],
    );
}

#[test]
fn overlapping_sections_in_the_image() {
    let bytes = base();
    let data = section_index(&bytes, SectionKind::Data);
    // Exactly on top of .rodata.
    let bad = patched(&bytes, |b| section_mut(b, data).vaddr = RODATA.into());
    expect_err(
        &bad,
        &[
            &format!("section {data} (data .data)"),
            "image range 0x2000..0x2100 shares pages with section 1",
        ],
    );
    // On the second page of .text, which ends mid-page at 0x1040: the page is shared.
    let bad = patched(&bytes, |b| section_mut(b, data).vaddr = 0x1000u64.into());
    expect_err(&bad, &["shares pages with section 0"]);
}

#[test]
fn overlapping_sections_in_the_file() {
    let bytes = base();
    let strtab = section_index(&bytes, SectionKind::StrTab);
    let symtab = section_index(&bytes, SectionKind::SymTab);
    let symtab_offset = payload_range(&bytes, SectionKind::SymTab).start as u64;
    let bad = patched(&bytes, |b| {
        section_mut(b, strtab).file_offset = 0x70u64.into()
    });
    expect_err(
        &bad,
        &[
            &format!("section {strtab} (strtab .strtab)"),
            "overlaps the header",
        ],
    );
    let bad = patched(&bytes, |b| {
        section_mut(b, strtab).file_offset = 0x100u64.into()
    });
    expect_err(&bad, &["overlaps the section table"]);
    // The hash table's entry comes after the symbol table's: it is the one reported.
    let hash = section_index(&bytes, SectionKind::Hash);
    let bad = patched(&bytes, |b| {
        section_mut(b, hash).file_offset = (symtab_offset + 8).into()
    });
    expect_err(
        &bad,
        &[
            &format!("section {hash} (hash .hash)"),
            &format!("overlaps section {symtab}"),
        ],
    );
    // Two loaded payloads on the same file page.
    let rodata = section_index(&bytes, SectionKind::RoData);
    let text_offset = payload_range(&bytes, SectionKind::Code).start as u64;
    let bad = patched(&bytes, |b| {
        section_mut(b, rodata).file_offset = text_offset.into()
    });
    expect_err(&bad, &["overlaps section 0"]);
}

#[test]
fn vaddr_outside_the_image() {
    let eh = section_index(&base(), SectionKind::EhFrame);
    let bad = patched(&base(), |b| {
        header_mut(b).image_size = (IMAGE_SIZE - 0x1000).into()
    });
    expect_err(
        &bad,
        &[
            &format!("section {eh} (eh_frame .eh_frame)"),
            "image range 0x7000+0x14 is outside the image (0x7000 bytes)",
        ],
    );
    let bad = patched(&base(), |b| section_mut(b, eh).vaddr = (!0xfffu64).into());
    expect_err(&bad, &["is outside the image"]);
}

#[test]
fn file_size_larger_than_memory_size() {
    let bad = patched(&base(), |b| section_mut(b, 0).mem_size = 0x1000u64.into());
    expect_err(
        &bad,
        &[
            "section 0 (code .text)",
            "file size 0x1040 exceeds memory size 0x1000",
        ],
    );
}

#[test]
fn bss_with_file_bytes() {
    let bytes = base();
    let bss = section_index(&bytes, SectionKind::Bss);
    let text_offset = payload_range(&bytes, SectionKind::Code).start as u64;
    let bad = patched(&bytes, |b| {
        let s = section_mut(b, bss);
        s.file_offset = text_offset.into();
        s.file_size = 0x10u64.into();
    });
    expect_err(
        &bad,
        &[
            &format!("section {bss} (bss .bss)"),
            "a bss section has no file bytes",
        ],
    );
}

#[test]
fn table_with_an_image_address() {
    let strtab = section_index(&base(), SectionKind::StrTab);
    let bad = patched(&base(), |b| section_mut(b, strtab).vaddr = 0x1000u64.into());
    expect_err(
        &bad,
        &["a table section has no image address or memory size"],
    );
    let bad = patched(&base(), |b| section_mut(b, strtab).mem_size = 1u64.into());
    expect_err(
        &bad,
        &["a table section has no image address or memory size"],
    );
}

#[test]
fn duplicate_table_kind() {
    let bytes = base();
    let srcmap = section_index(&bytes, SectionKind::SrcMap);
    let bad = patched(&bytes, |b| {
        section_mut(b, srcmap).kind = SectionKind::TypeInfo.as_raw().into()
    });
    expect_err(
        &bad,
        &[
            &format!("section {srcmap} (typeinfo .srcmap)"),
            "a second typeinfo section",
        ],
    );
    // Several loaded sections of one kind are allowed: only tables are unique.
    let rodata = section_index(&bytes, SectionKind::RoData);
    let ok = patched(&bytes, |b| {
        let s = section_mut(b, rodata);
        s.kind = SectionKind::EhFrame.as_raw().into();
    });
    assert_eq!(
        Module::parse(&ok)
            .unwrap()
            .loaded_sections()
            .filter(|s| s.kind == SectionKind::EhFrame)
            .count(),
        2
    );
}

#[test]
fn limits() {
    let bytes = base();
    let strict = Limits::default();
    let cases: [(Limits, &str); 5] = [
        (
            strict.with_max_sections(16),
            "section count is 0x11, above the limit of 0x10",
        ),
        (
            strict.with_max_image_size(0x4000),
            "image size is 0x8000, above the limit of 0x4000",
        ),
        (
            strict.with_max_symbols(11),
            "symbol count is 0xc, above the limit of 0xb",
        ),
        (
            strict.with_max_imports(2),
            "import count is 0x3, above the limit of 0x2",
        ),
        (
            strict.with_max_relocations(4),
            "relocation count is 0x5, above the limit of 0x4",
        ),
    ];
    for (limits, message) in cases {
        let error = expect_err_with(&bytes, &limits, &[message]);
        assert!(matches!(error, Error::LimitExceeded { .. }));
    }
    // At the limit is fine.
    let exact = Limits::default()
        .with_max_sections(17)
        .with_max_image_size(IMAGE_SIZE)
        .with_max_symbols(12)
        .with_max_imports(3)
        .with_max_relocations(5)
        .with_max_name_len(9);
    Module::parse_with_limits(&bytes, &exact).unwrap();
    // The longest names: `libc.so.6` (9 bytes), and symbol 2, `weak_fn` (7).
    expect_err_with(
        &bytes,
        &exact.with_max_name_len(8),
        &["needed", "longer than the limit of 8 bytes"],
    );
    expect_err_with(
        &bytes,
        &exact.with_max_name_len(6),
        &["symbol 2", "longer than the limit of 6 bytes"],
    );
    let defaults = Limits::default();
    assert_eq!(
        (
            defaults.max_image_size,
            defaults.max_sections,
            defaults.max_symbols,
            defaults.max_imports,
            defaults.max_relocations,
            defaults.max_name_len,
        ),
        (4 << 30, 1024, 1 << 22, 1 << 20, 1 << 24, 1 << 16),
        "the defaults documented in docs/FORMAT.md"
    );
    // Each setter sets its own limit and no other.
    let set = Limits::default()
        .with_max_image_size(1)
        .with_max_sections(2)
        .with_max_symbols(3)
        .with_max_imports(4)
        .with_max_relocations(5)
        .with_max_name_len(6);
    assert_eq!(
        (
            set.max_image_size,
            set.max_sections,
            set.max_symbols,
            set.max_imports,
            set.max_relocations,
            set.max_name_len,
        ),
        (1, 2, 3, 4, 5, 6)
    );
}

#[test]
fn table_sizes_must_be_whole_entries() {
    let bytes = base();
    for (kind, entry) in [
        (SectionKind::SymTab, 40),
        (SectionKind::Imports, 24),
        (SectionKind::Reloc, 24),
        (SectionKind::Needed, 4),
        (SectionKind::InitArray, 8),
    ] {
        let index = section_index(&bytes, kind);
        let bad = patched(&bytes, |b| {
            let s = section_mut(b, index);
            s.file_size = (s.file_size.get() - 1).into();
        });
        expect_err(
            &bad,
            &[
                &format!("section {index} ({kind}"),
                &format!("is not a multiple of the {entry}-byte entry"),
            ],
        );
    }
}

// ---- String table ------------------------------------------------------------------------

#[test]
fn string_table_must_start_and_end_with_nul() {
    let bytes = base();
    let range = payload_range(&bytes, SectionKind::StrTab);
    let strtab = section_index(&bytes, SectionKind::StrTab);
    let bad = patched(&bytes, |b| b[range.end - 1] = b'x');
    expect_err(
        &bad,
        &[
            &format!("section {strtab} (strtab .strtab)"),
            "string table must start and end with a NUL byte",
        ],
    );
    let bad = patched(&bytes, |b| b[range.start] = b'x');
    expect_err(&bad, &["must start and end with a NUL byte"]);
    let bad = patched(&bytes, |b| section_mut(b, strtab).file_size = 0u64.into());
    expect_err(&bad, &["must start and end with a NUL byte"]);
}

#[test]
fn symbol_name_offset_outside_the_string_table() {
    let bytes = base();
    let len = payload_range(&bytes, SectionKind::StrTab).len() as u32;
    for offset in [len + 1, u32::MAX] {
        let bad = patched(&bytes, |b| {
            entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 2).name_offset = offset.into()
        });
        expect_err(
            &bad,
            &[
                "symbol 2",
                &format!("name offset {offset:#x} is outside the string table ({len:#x} bytes)"),
            ],
        );
    }
}

#[test]
fn symbol_name_offset_one_past_the_string_table() {
    // `strtab.get(offset..)` is `Some(&[])` for offset == len, so the offset passes the range
    // check and the message blames a missing terminator instead of the offset.
    let bytes = base();
    let len = payload_range(&bytes, SectionKind::StrTab).len() as u32;
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 2).name_offset = len.into()
    });
    expect_err(
        &bad,
        &[
            "symbol 2",
            &format!("name offset {len:#x} is outside the string table ({len:#x} bytes)"),
        ],
    );
}

#[test]
fn names_that_are_not_utf8_or_empty() {
    let bytes = base();
    let range = payload_range(&bytes, SectionKind::StrTab);
    // "main" is the first name, at offset 1.
    assert_eq!(&bytes[range.start + 1..range.start + 5], b"main");
    let bad = patched(&bytes, |b| b[range.start + 2] = 0xff);
    expect_err(&bad, &["symbol 0", "name at offset 0x1 is not valid UTF-8"]);
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).name_offset = 0u32.into()
    });
    expect_err(&bad, &["symbol 0", "empty name"]);
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Import>(b, SectionKind::Imports, 0).name_offset = 0u32.into()
    });
    expect_err(&bad, &["import 0", "empty name"]);
    let bad = patched(&bytes, |b| {
        b[payload_range(&bytes, SectionKind::Needed)][..4].copy_from_slice(&0u32.to_le_bytes())
    });
    expect_err(&bad, &["needed library 0", "empty name"]);
    let bad = patched(&bytes, |b| {
        b[payload_range(&bytes, SectionKind::Needed)][4..8].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    expect_err(&bad, &["needed library 1", "outside the string table"]);
}

#[test]
fn names_are_utf8_checked_one_by_one_when_the_table_is_not() {
    // "helper" (symbol 1, local) is at offset 6. Renamed to its suffix "elper", the byte
    // before it belongs to no name: it may be anything, though the table as a whole is then
    // not UTF-8.
    let bytes = base();
    let table = payload_range(&bytes, SectionKind::StrTab).start;
    assert_eq!(&bytes[table + 6..table + 12], b"helper");
    let renamed = patched(&bytes, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1);
        s.name_offset = 7u32.into();
        s.name_hash = fnv1a32(b"elper").into();
        b[table + 6] = 0xff;
    });
    let module = Module::parse(&renamed).unwrap();
    assert_eq!(module.symbols().to_vec().unwrap()[1].name, "elper");
}

#[test]
fn a_name_starting_inside_a_character_is_not_utf8() {
    // A valid table (so checked as a whole) with "hélpe" in place of "helper"; an offset
    // pointing at the second byte of "é" names no valid string.
    let bytes = base();
    let table = payload_range(&bytes, SectionKind::StrTab).start;
    let accented = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1).name_hash =
            fnv1a32("hélpe".as_bytes()).into();
        b[table + 6..table + 12].copy_from_slice("hélpe".as_bytes());
    });
    assert_eq!(
        Module::parse(&accented)
            .unwrap()
            .symbols()
            .to_vec()
            .unwrap()[1]
            .name,
        "hélpe"
    );
    let bad = patched(&accented, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1);
        s.name_offset = 8u32.into();
    });
    // Symbol 1 is local: no load uses it, so the file parses, and the entry reads as the
    // error; exported, it is refused at once.
    let module = Module::parse(&bad).unwrap();
    let error = module.symbol(1).unwrap().unwrap_err().to_string();
    for part in ["symbol 1", "name at offset 0x8 is not valid UTF-8"] {
        assert!(error.contains(part), "{error}");
    }
    assert!(module.symbols().to_vec().is_err());
    assert_eq!(module.symbols().valid().count(), module.symbols().len() - 1);
    let exported = patched(&bad, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1).binding = Binding::Global as u8;
    });
    expect_err(
        &exported,
        &["symbol 1", "name at offset 0x8 is not valid UTF-8"],
    );
}

#[test]
fn names_without_a_string_table() {
    // The string table of a module without opaque tables relabelled as one: names now point
    // into nothing.
    let mut b = ModuleBuilder::new();
    b.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    let bytes = b.write().unwrap();
    let strtab = section_index(&bytes, SectionKind::StrTab);
    let bad = patched(&bytes, |b| {
        section_mut(b, strtab).kind = SectionKind::SrcMap.as_raw().into()
    });
    expect_err(
        &bad,
        &[
            "import 0",
            "name offset 0x1 is outside the string table (0x0 bytes)",
        ],
    );
}

// ---- Symbols -----------------------------------------------------------------------------

#[test]
fn bad_symbol_name_hash() {
    let bad = patched(&base(), |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0);
        s.name_hash = (s.name_hash.get() ^ 1).into();
    });
    let wrong = fnv1a32(b"main") ^ 1;
    expect_err(
        &bad,
        &[
            "symbol 0 (main)",
            &format!("name hash {wrong:#010x} is not the FNV-1a hash of the name"),
        ],
    );
    // A local symbol's hash is never read, and not checked: symbol 1 ("helper") is local.
    let local = patched(&base(), |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1);
        s.name_hash = (s.name_hash.get() ^ 1).into();
    });
    let module = Module::parse(&local).unwrap();
    assert_eq!(
        module.symbols().to_vec().unwrap()[1].binding,
        Binding::Local
    );
}

#[test]
fn unknown_symbol_enums() {
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).kind = 9
    });
    expect_err(&bad, &["symbol 0 (main)", "unknown symbol kind 9"]);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).kind = 0
    });
    expect_err(&bad, &["unknown symbol kind 0"]);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).binding = 3
    });
    expect_err(&bad, &["symbol 0 (main)", "unknown binding 3"]);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).visibility = 3
    });
    expect_err(&bad, &["symbol 0 (main)", "unknown visibility 3"]);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).flags = 0x80
    });
    expect_err(
        &bad,
        &["symbol 0 (main)", "reserved flags 0x80 are not zero"],
    );
}

#[test]
fn function_symbol_outside_code() {
    let bytes = base();
    let data = section_index(&bytes, SectionKind::Data);
    let bad = patched(&bytes, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0);
        s.section = (data as u32).into();
        s.value = DATA.into();
    });
    expect_err(
        &bad,
        &[
            "symbol 0 (main)",
            &format!("function lies in data section {data}, not in code"),
        ],
    );
    // In code, but past the end of .text.
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).value = 0x1040u64.into()
    });
    expect_err(
        &bad,
        &[
            "symbol 0 (main)",
            "range 0x1040+0x1 is outside section 0 (0x0..0x1040)",
        ],
    );
    // A size that overflows.
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).size = u64::MAX.into()
    });
    expect_err(&bad, &["symbol 0 (main)", "is outside section 0"]);
    // Without a section.
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).section = NONE.into()
    });
    expect_err(
        &bad,
        &[
            "symbol 0 (main)",
            "a func symbol must lie in a loaded section",
        ],
    );
    // In a table section, or in no section at all.
    let strtab = section_index(&bytes, SectionKind::StrTab) as u32;
    for index in [strtab, 999] {
        let bad = patched(&bytes, |b| {
            entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0).section = index.into()
        });
        expect_err(
            &bad,
            &[
                "symbol 0 (main)",
                &format!("section index {index} is not a loaded section"),
            ],
        );
    }
}

#[test]
fn function_of_size_zero_at_the_end_of_its_code() {
    // `Module::get` would hand out 0x1040, the first byte past .text (0x0..0x1040).
    let bytes = base();
    let bad = patched(&bytes, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0);
        s.value = 0x1040u64.into();
        s.size = 0u64.into();
    });
    expect_err(
        &bad,
        &[
            "symbol 0 (main)",
            "function address 0x1040 is the end of section 0 (0x0..0x1040), not inside it",
        ],
    );
    // The last byte of .text is inside, with or without a size.
    for size in [0u64, 1] {
        let ok = patched(&bytes, |b| {
            let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 0);
            s.value = 0x103fu64.into();
            s.size = size.into();
        });
        let module = Module::parse(&ok).unwrap();
        assert_eq!(
            (
                module.symbols().to_vec().unwrap()[0].value,
                module.symbols().to_vec().unwrap()[0].size
            ),
            (0x103f, size)
        );
    }
}

#[test]
fn data_of_size_zero_may_mark_the_end_of_its_section() {
    // `__stop_X` and `_end` style markers: symbol 5 (counter) moved to the end of .data
    // (0x4000..0x4100), and symbol 6 (zeroes) to the end of .bss.
    let bytes = base();
    let ok = patched(&bytes, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 5);
        s.value = (DATA + 0x100).into();
        s.size = 0u64.into();
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 6);
        s.value = (BSS + 0x1800).into();
        s.size = 0u64.into();
    });
    let module = Module::parse(&ok).unwrap();
    assert_eq!(module.symbols().to_vec().unwrap()[5].name, "counter");
    assert_eq!(module.symbols().to_vec().unwrap()[5].value, DATA + 0x100);
    assert_eq!(module.symbols().to_vec().unwrap()[6].value, BSS + 0x1800);
    // One byte further is outside.
    let bad = patched(&bytes, |b| {
        let s = entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 5);
        s.value = (DATA + 0x101).into();
        s.size = 0u64.into();
    });
    expect_err(
        &bad,
        &[
            "symbol 5 (counter)",
            "range 0x4101+0x0 is outside section 3 (0x4000..0x4100)",
        ],
    );
}

// ---- Imports -----------------------------------------------------------------------------

#[test]
fn bad_imports() {
    let bytes = base();
    let bad = patched(&bytes, |b| {
        let i = entry_mut::<raw::Import>(b, SectionKind::Imports, 1);
        i.name_hash = (i.name_hash.get().wrapping_add(1)).into();
    });
    expect_err(
        &bad,
        &[
            "import 1 (environ)",
            "name hash is not the FNV-1a hash of the name",
        ],
    );
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Import>(b, SectionKind::Imports, 1).kind = 3
    });
    expect_err(&bad, &["import 1 (environ)", "unknown import kind 3"]);
    for binding in [0, 3] {
        let bad = patched(&bytes, |b| {
            entry_mut::<raw::Import>(b, SectionKind::Imports, 1).binding = binding
        });
        expect_err(
            &bad,
            &[
                "import 1 (environ)",
                &format!("binding {binding} is not global or weak"),
            ],
        );
    }
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Import>(b, SectionKind::Imports, 1).reserved0[1] = 1
    });
    expect_err(
        &bad,
        &["import 1 (environ)", "reserved fields are not zero"],
    );
    let bad = patched(&bytes, |b| {
        entry_mut::<raw::Import>(b, SectionKind::Imports, 1).reserved1 = 1u32.into()
    });
    expect_err(&bad, &["reserved fields are not zero"]);
}

// ---- Relocations -------------------------------------------------------------------------

/// Index of the relocation at `offset` in the stored (sorted) table.
fn reloc_index(offset: u64) -> usize {
    let mut relocs = full_relocs();
    relocs.sort_by_key(|r| r.offset);
    relocs.iter().position(|r| r.offset == offset).unwrap()
}

#[test]
fn relocation_into_code() {
    let i = reloc_index(RELRO);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).offset = 0x100u64.into()
    });
    expect_err(
        &bad,
        &[
            &format!("relocation {i}"),
            "offset 0x100 lies in code section 0, which relocations may not write",
        ],
    );
}

#[test]
fn relocation_into_read_only_sections() {
    let bytes = base();
    let i = reloc_index(RELRO);
    for (vaddr, kind) in [
        (RODATA, SectionKind::RoData),
        (BSS, SectionKind::Bss),
        (EH_FRAME, SectionKind::EhFrame),
    ] {
        let index = section_index(&bytes, kind);
        let bad = patched(&bytes, |b| {
            entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).offset = vaddr.into()
        });
        expect_err(
            &bad,
            &[&format!(
                "lies in {kind} section {index}, which relocations may not write"
            )],
        );
    }
}

#[test]
fn relocation_outside_any_section() {
    let i = reloc_index(RELRO);
    // Straddling the end of .data.rel.ro (0x18 bytes), in a gap, past the image, overflowing.
    for offset in [RELRO + 0x14, RELRO + 0x100, IMAGE_SIZE, u64::MAX - 3] {
        let bad = patched(&base(), |b| {
            entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).offset = offset.into()
        });
        let needle = if offset > u64::MAX - 8 {
            format!("offset {offset:#x} overflows")
        } else {
            format!(
                "offset {offset:#x}..{:#x} is not inside one data, relro or tls section",
                offset + 8
            )
        };
        expect_err(&bad, &[&format!("relocation {i}"), &needle]);
    }
    // The last eight bytes of .data (0x100 in memory, only 0x20 in the file) are fine.
    let ok = patched(&base(), |b| {
        entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).offset = (DATA + 0xf8).into()
    });
    Module::parse(&ok).unwrap();
}

#[test]
fn relocation_import_index_out_of_range() {
    let i = reloc_index(RELRO);
    for index in [3u32, NONE] {
        let bad = patched(&base(), |b| {
            entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).import = index.into()
        });
        expect_err(
            &bad,
            &[
                &format!("relocation {i}"),
                &format!("import index {index} is out of range (3 imports)"),
            ],
        );
    }
}

#[test]
fn relative_relocation_naming_an_import() {
    let i = reloc_index(DATA + 0x10);
    let bad = patched(&base(), |b| {
        entry_mut::<raw::Reloc>(b, SectionKind::Reloc, i).import = 0u32.into()
    });
    expect_err(
        &bad,
        &[
            &format!("relocation {i}"),
            "relative64 relocation names import 0; it must hold 0xffffffff",
        ],
    );
}

#[test]
fn unknown_relocation_kind() {
    for kind in [0u32, 7, 0x101] {
        let bad = patched(&base(), |b| {
            entry_mut::<raw::Reloc>(b, SectionKind::Reloc, 0).kind = kind.into()
        });
        expect_err(
            &bad,
            &["relocation 0", &format!("unknown relocation kind {kind}")],
        );
    }
}

// ---- Constructors and destructors --------------------------------------------------------

/// The full module made a Windows one with `count` TLS callbacks, each at `CODE + 0x10`.
fn windows_module_with_tls_callbacks(count: usize) -> Vec<u8> {
    let mut b = full_builder();
    b.platform = Platform::Windows;
    for _ in 0..count {
        b.add_tls_callback(CODE + 0x10);
    }
    b.write().unwrap()
}

#[test]
fn tls_callbacks_only_in_windows_modules_and_inside_code() {
    let module = windows_module_with_tls_callbacks(1);
    assert_eq!(
        Module::parse(&module).unwrap().tls_callbacks(),
        [CODE + 0x10]
    );
    for platform in [Platform::Linux, Platform::Any] {
        let bad = patched(&module, |b| header_mut(b).platform = platform.as_raw());
        expect_err(
            &bad,
            &[
                "tls_callbacks",
                "TLS callbacks exist in Windows modules only",
                &platform.to_string(),
            ],
        );
    }
    let bad = patched(&module, |b| {
        b[payload_range(&module, SectionKind::TlsCallbacks)][..8]
            .copy_from_slice(&DATA.to_le_bytes())
    });
    expect_err(
        &bad,
        &["tls_callbacks entry 0", "is not inside a code section"],
    );
}

#[test]
fn init_and_fini_entries_outside_code() {
    let bytes = base();
    let bad = patched(&bytes, |b| {
        b[payload_range(&bytes, SectionKind::InitArray)][8..16].copy_from_slice(&DATA.to_le_bytes())
    });
    expect_err(
        &bad,
        &[
            "init_array entry 1",
            "offset 0x4000 is not inside a code section",
        ],
    );
    let bad = patched(&bytes, |b| {
        b[payload_range(&bytes, SectionKind::FiniArray)][..8]
            .copy_from_slice(&u64::MAX.to_le_bytes())
    });
    expect_err(
        &bad,
        &["fini_array entry 0", "is not inside a code section"],
    );
    // The end of .text (0x0..0x1040) is past the code; its last byte is inside.
    for kind in [SectionKind::InitArray, SectionKind::FiniArray] {
        let bad = patched(&bytes, |b| {
            b[payload_range(&bytes, kind)][..8].copy_from_slice(&0x1040u64.to_le_bytes())
        });
        expect_err(
            &bad,
            &[
                &format!("{kind} entry 0"),
                "offset 0x1040 is not inside a code section",
            ],
        );
        let ok = patched(&bytes, |b| {
            b[payload_range(&bytes, kind)][..8].copy_from_slice(&0x103fu64.to_le_bytes())
        });
        let module = Module::parse(&ok).unwrap();
        let offsets = match kind {
            SectionKind::InitArray => module.init_array(),
            _ => module.fini_array(),
        };
        assert_eq!(offsets[0], 0x103f);
    }
}

// ---- Hash ---------------------------------------------------------------------------------

#[test]
fn structure_is_checked_without_the_hash() {
    // `parse` checks structure only; `verify_hash` checks content against the header.
    let mut bytes = base();
    bytes[0x30] ^= 1;
    let module = Module::parse(&bytes).unwrap();
    let error = module.verify_hash().unwrap_err();
    assert!(matches!(error, Error::HashMismatch { .. }));
    assert!(
        error.to_string().contains("module hash mismatch"),
        "{error}"
    );
}

/// A `tls_callbacks` table in a module for another platform is refused even when it is empty
/// (the table, not only an entry, is Windows-only), and a count over the limit names the table.
#[test]
fn tls_callbacks_table_empty_elsewhere_or_too_long() {
    let module = windows_module_with_tls_callbacks(1);
    let index = section_index(&module, SectionKind::TlsCallbacks);
    let bad = patched(&module, |b| {
        header_mut(b).platform = Platform::Linux.as_raw();
        section_mut(b, index).file_size = 0u64.into();
    });
    expect_err(
        &bad,
        &[
            "tls_callbacks",
            "TLS callbacks exist in Windows modules only",
        ],
    );

    // 65 536 entries are read; one more, in bytes inserted after the table (a page, so that
    // the sections after it stay page-aligned), is refused, naming the table.
    let module = windows_module_with_tls_callbacks(65_536);
    assert_eq!(
        Module::parse(&module).unwrap().tls_callbacks().len(),
        65_536
    );
    let index = section_index(&module, SectionKind::TlsCallbacks);
    let end = payload_range(&module, SectionKind::TlsCallbacks).end;
    let bad = patched(&module, |b| {
        b.splice(end..end, [0u8; 0x1000]);
        for i in 0..header_mut(b).section_count.get() as usize {
            let s = section_mut(b, i);
            if s.file_offset.get() >= end as u64 {
                s.file_offset = (s.file_offset.get() + 0x1000).into();
            }
        }
        let s = section_mut(b, index);
        s.file_size = (s.file_size.get() + 8).into();
    });
    let error = expect_err(
        &bad,
        &["tls_callbacks entry count is 0x10001, above the limit of 0x10000"],
    );
    assert!(matches!(error, Error::LimitExceeded { .. }));
}

#[test]
fn placed_entries_are_read_without_their_names() {
    let bytes = base();
    let module = Module::parse(&bytes).unwrap();
    // Every entry that decodes and lies in a section is placed where it decodes to.
    let decoded: Vec<(usize, Placed)> = module
        .symbols()
        .valid()
        .filter_map(|(i, s)| {
            let (kind, binding) = (s.kind, s.binding);
            let (value, size, section) = (s.value, s.size, s.section?);
            Some((
                i,
                Placed {
                    kind,
                    binding,
                    section,
                    value,
                    size,
                },
            ))
        })
        .collect();
    assert!(decoded.iter().any(|(i, _)| *i == 1));
    assert_eq!(module.symbols().placed().collect::<Vec<_>>(), decoded);
    // Symbol 1 ("helper") is local, so no parse checks it: with a name that does not decode
    // it is still placed; past the end of the image, or of an unknown kind, it is not.
    let placed = |bytes: &[u8]| {
        let module = Module::parse(bytes).unwrap();
        let found = module.symbols().placed().any(|(i, _)| i == 1);
        (module.symbol(1).unwrap().is_ok(), found)
    };
    let nameless = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1).name_offset = u32::MAX.into();
    });
    assert_eq!(placed(&nameless), (false, true));
    let outside = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1).value = (u64::MAX - 1).into();
    });
    assert_eq!(placed(&outside), (false, false));
    let unknown = patched(&bytes, |b| {
        entry_mut::<raw::Symbol>(b, SectionKind::SymTab, 1).kind = 9;
    });
    assert_eq!(placed(&unknown), (false, false));
}

/// One pass over the table (`summaries`) and the reads of single entries (`placed_at`,
/// `stored_name_hash`) tell each entry as `placed` and the raw entries do.
#[test]
fn summaries_agree_with_placed_and_with_single_entries() {
    let bytes = base();
    let module = Module::parse(&bytes).unwrap();
    let symbols = module.symbols();
    let placed: Vec<(usize, Placed)> = symbols.placed().collect();
    let summaries: Vec<(usize, Summary)> = symbols.summaries().collect();
    assert_eq!(summaries.len(), symbols.len());
    for (i, summary) in &summaries {
        let symbol = module.symbol(*i).unwrap().unwrap();
        assert_eq!(summary.binding, Some(symbol.binding));
        assert_eq!(Some(summary.name_hash), symbols.stored_name_hash(*i));
        let expected = placed.iter().find(|(j, _)| j == i).map(|(_, p)| *p);
        assert_eq!(summary.placed, expected, "symbol {i}");
        assert_eq!(symbols.placed_at(*i), expected, "symbol {i}");
    }
    assert_eq!(symbols.placed_at(symbols.len()), None);
}
