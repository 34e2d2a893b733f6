//! Broken ELF input the packer must refuse with a message naming the file (and where it can,
//! the section, symbol or relocation), never with a panic, a wrap-around or a huge allocation:
//! the cases `errors.rs` does not cover — offsets and sizes that overflow when added, huge
//! counts, symbols and relocations against sections that do not exist, broken links between
//! sections, broken string tables.
//!
//! Built for Linux and for Windows, run under Wine (README, "Windows"): the system C
//! compiler (`cc`, a Linux program) is started through `smf_test_support::HostCommand`.

mod util;

use smf_pack::{Input, Options};
use util::*;

const SOURCE: &str = "int g = 1; static int zero[16]; int *pz = zero;\n\
                      int f(void) { return g + zero[3]; }";

fn object() -> Input {
    compile("obj.o", SOURCE, &[])
}

/// `input` with `bytes` written at `at`, named `name`.
fn patched(input: &Input, name: &str, at: usize, bytes: &[u8]) -> Input {
    let mut data = input.data.clone();
    data[at..at + bytes.len()].copy_from_slice(bytes);
    Input {
        name: name.into(),
        data,
    }
}

/// Packs and expects a refusal whose message starts with the file's name; returns it.
fn refused(input: Input) -> String {
    let name = input.name.clone();
    match smf_pack::pack(&[input], &Options::default()) {
        Ok(_) => panic!("{name}: packed, but the input is broken"),
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with(&format!("{name}: ")), "{message}");
            assert_eq!(message.lines().count(), 1, "{message}");
            message
        }
    }
}

/// File offset of the symbol-table entry of `name`.
fn elf_symbol_offset(input: &Input, name: &str) -> usize {
    use object::read::elf::{FileHeader, SectionHeader};
    let le = object::LittleEndian;
    let data = &input.data[..];
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(data).unwrap();
    let sections = header.sections(le, data).unwrap();
    let symbols = sections.symbols(le, data, object::elf::SHT_SYMTAB).unwrap();
    let (index, _) = symbols
        .iter()
        .enumerate()
        .find(|(_, s)| {
            use object::read::elf::Sym;
            s.name(le, symbols.strings()).ok() == Some(name.as_bytes())
        })
        .unwrap();
    let (_, symtab) = sections.section_by_name(le, b".symtab").unwrap();
    symtab.sh_offset(le) as usize + index * 24
}

// Field offsets inside an Elf64_Shdr.
const SH_NAME: usize = 0;
const SH_OFFSET: usize = 24;
const SH_SIZE: usize = 32;
const SH_LINK: usize = 40;
const SH_ADDRALIGN: usize = 48;
const SH_ENTSIZE: usize = 56;

#[test]
fn section_offsets_and_sizes_that_overflow() {
    let input = object();
    let text = elf_section_header_offset(&input, ".text");
    // offset + size wraps around u64.
    let message = refused(patched(
        &input,
        "wrap.o",
        text + SH_OFFSET,
        &(u64::MAX - 3).to_le_bytes(),
    ));
    assert!(message.contains(".text"), "{message}");
    let message = refused(patched(
        &input,
        "huge.o",
        text + SH_SIZE,
        &u64::MAX.to_le_bytes(),
    ));
    assert!(message.contains(".text"), "{message}");
    // The section header table itself past the end, or wrapping.
    for (name, value) in [("shoff.o", u64::MAX - 8), ("shoff2.o", 1 << 40)] {
        refused(patched(&input, name, 0x28, &value.to_le_bytes()));
    }
    // A section count far beyond what the file holds (e_shnum at 0x3c).
    refused(patched(&input, "shnum.o", 0x3c, &0xffffu16.to_le_bytes()));
    // A section-name string table index that does not exist (e_shstrndx at 0x3e).
    refused(patched(
        &input,
        "shstrndx.o",
        0x3e,
        &0xfffeu16.to_le_bytes(),
    ));
}

#[test]
fn huge_bss_and_alignment_never_allocate() {
    let input = object();
    let bss = elf_section_header_offset(&input, ".bss");
    // 2^62 bytes of zeros: the module image would be larger than any address space. The
    // image is all the inputs together, so the message names the module, not one object.
    let error = smf_pack::pack(
        &[patched(
            &input,
            "bigbss.o",
            bss + SH_SIZE,
            &(1u64 << 62).to_le_bytes(),
        )],
        &Options::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("image size is 0x4000000000") && error.contains("above the limit"),
        "{error}"
    );
    // An alignment of 2^63 or one that is not a power of two.
    let text = elf_section_header_offset(&input, ".text");
    for (name, align) in [
        ("align63.o", 1u64 << 63),
        ("align3.o", 3),
        ("alignmax.o", u64::MAX),
    ] {
        match smf_pack::pack(
            &[patched(
                &input,
                name,
                text + SH_ADDRALIGN,
                &align.to_le_bytes(),
            )],
            &Options::default(),
        ) {
            // An alignment the layout can honour may be accepted; it must then be valid.
            Ok(bytes) => {
                smf_format::Module::parse(&bytes).unwrap();
            }
            Err(error) => assert!(error.to_string().starts_with(name), "{error}"),
        }
    }
}

#[test]
fn symbols_in_missing_sections_and_out_of_range_values() {
    let input = object();
    let g = elf_symbol_offset(&input, "g");
    // st_shndx (u16 at +6) naming a section that does not exist (below SHN_LORESERVE).
    let message = refused(patched(&input, "shndx.o", g + 6, &0xfeffu16.to_le_bytes()));
    assert!(
        message.contains("g") || message.contains("section"),
        "{message}"
    );
    // st_value far outside its section, and a value + size that wraps.
    let message = refused(patched(
        &input,
        "value.o",
        g + 8,
        &(u64::MAX - 1).to_le_bytes(),
    ));
    assert!(message.contains("value.o"), "{message}");
    // st_name outside the string table.
    refused(patched(
        &input,
        "stname.o",
        g,
        &0xffff_fff0u32.to_le_bytes(),
    ));
}

#[test]
fn broken_links_and_entry_sizes() {
    let input = object();
    let symtab = elf_section_header_offset(&input, ".symtab");
    let rela = elf_section_header_offset(&input, ".rela.text");
    // The symbol table's string table (sh_link) does not exist.
    refused(patched(
        &input,
        "strlink.o",
        symtab + SH_LINK,
        &999u32.to_le_bytes(),
    ));
    // The relocation section's symbol table (sh_link) does not exist, or is not a symbol
    // table (section 1 is usually .text).
    refused(patched(
        &input,
        "relalink.o",
        rela + SH_LINK,
        &999u32.to_le_bytes(),
    ));
    // Entry sizes of 0 (a division by zero for a naive reader) and of 1.
    for (name, header) in [("symentsize.o", symtab), ("relaentsize.o", rela)] {
        for size in [0u64, 1, u64::MAX] {
            let result = smf_pack::pack(
                &[patched(
                    &input,
                    name,
                    header + SH_ENTSIZE,
                    &size.to_le_bytes(),
                )],
                &Options::default(),
            );
            if let Err(error) = result {
                assert!(error.to_string().starts_with(name), "{error}");
            }
        }
    }
    // A section name offset outside the section-name string table.
    let text = elf_section_header_offset(&input, ".text");
    refused(patched(
        &input,
        "shname.o",
        text + SH_NAME,
        &0xffff_fff0u32.to_le_bytes(),
    ));
    // A string table that is not NUL-terminated: its last byte overwritten.
    let strtab = elf_section_header_offset(&input, ".strtab");
    let offset = u64::from_le_bytes(input.data[strtab + SH_OFFSET..][..8].try_into().unwrap());
    let size = u64::from_le_bytes(input.data[strtab + SH_SIZE..][..8].try_into().unwrap());
    let result = smf_pack::pack(
        &[patched(
            &input,
            "strtab.o",
            (offset + size - 1) as usize,
            b"x",
        )],
        &Options::default(),
    );
    if let Err(error) = result {
        assert!(error.to_string().starts_with("strtab.o"), "{error}");
    }
}

#[test]
fn relocations_with_overflowing_offsets_and_addends() {
    let input = object();
    let rela = elf_section_header_offset(&input, ".rela.text");
    let entries =
        u64::from_le_bytes(input.data[rela + SH_OFFSET..][..8].try_into().unwrap()) as usize;
    // r_offset so large that offset + field width wraps.
    let message = refused(patched(
        &input,
        "roff.o",
        entries,
        &(u64::MAX - 1).to_le_bytes(),
    ));
    assert!(message.contains("roff.o: section .text"), "{message}");
    // Addends at the extremes: the result must not fit the 32-bit field, and the packer
    // must say so rather than truncate.
    for (name, addend) in [("addmin.o", i64::MIN), ("addmax.o", i64::MAX)] {
        let message = refused(patched(&input, name, entries + 16, &addend.to_le_bytes()));
        assert!(message.contains("relocation"), "{message}");
    }
    // An unknown relocation type (r_type is the low half of r_info at +8).
    let message = refused(patched(
        &input,
        "rtype.o",
        entries + 8,
        &0xeeu32.to_le_bytes(),
    ));
    assert!(message.contains("rtype.o: section .text"), "{message}");
}
