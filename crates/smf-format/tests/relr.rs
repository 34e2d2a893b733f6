//! The `relr` table (FORMAT.md, *Packed relative relocations*): what the writer packs, what
//! the reader decodes, and the rules it enforces.

mod common;

use common::*;
use smf_format::*;

const CODE_SIZE: u64 = 0x1000;
const RELRO_SIZE: u64 = 0x2000;

/// A module with a code page, a relro section of `RELRO_SIZE` bytes and a data section
/// after it, with packed relocations at `relro + offset` for each of `offsets`. Returns the
/// bytes and the relro section's image offset.
fn module_with(offsets: &[u64]) -> (Vec<u8>, u64) {
    let mut builder = ModuleBuilder::new();
    let mut layout = ImageLayout::new();
    let code = layout.place(CODE_SIZE).unwrap();
    builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: code,
        mem_size: CODE_SIZE,
        align: 16,
        data: vec![0xc3; CODE_SIZE as usize],
    });
    let relro = layout.place(RELRO_SIZE).unwrap();
    // Each word holds the image offset it points to: here, into the code.
    let mut data = vec![0u8; RELRO_SIZE as usize];
    for (i, word) in data.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(code + i as u64 % CODE_SIZE).to_le_bytes());
    }
    builder.add_section(LoadedSection {
        kind: SectionKind::RelRo,
        name: ".data.rel.ro",
        vaddr: relro,
        mem_size: RELRO_SIZE,
        align: 8,
        data,
    });
    let data = layout.place(0x100).unwrap();
    builder.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: data,
        mem_size: 0x100,
        align: 8,
        data: vec![0; 0x100],
    });
    for &offset in offsets {
        builder.add_relative(relro + offset);
    }
    (builder.write().unwrap(), relro)
}

fn words(bytes: &[u8]) -> Vec<u64> {
    let module = Module::parse(bytes).unwrap();
    module
        .relative_relocations()
        .words()
        .iter()
        .map(|w| w.get())
        .collect()
}

/// Overwrites the relr table's words (same count) and rehashes.
fn with_words(bytes: &[u8], new: &[u64]) -> Vec<u8> {
    let range = payload_range(bytes, SectionKind::Relr);
    assert_eq!(range.len(), new.len() * 8, "same number of words");
    patched(bytes, |b| {
        for (word, value) in b[range].chunks_exact_mut(8).zip(new) {
            word.copy_from_slice(&value.to_le_bytes());
        }
    })
}

#[test]
fn runs_become_bitmaps_and_gaps_new_offset_words() {
    let (bytes, relro) = module_with(&[0x10, 0x0, 0x8, 0x10, 0x400]);
    // 0x0, then a bitmap for 0x8 (bit 1) and 0x10 (bit 2); 0x400 is past the 63 words that
    // bitmap covers (0x8..0x200) and the next one's reach, so it gets its own offset word.
    assert_eq!(words(&bytes), [relro, 0b111, relro + 0x400]);
    let module = Module::parse(&bytes).unwrap();
    let offsets: Vec<u64> = module.relative_relocations().iter().collect();
    assert_eq!(offsets, [relro, relro + 8, relro + 0x10, relro + 0x400]);
    assert_eq!(
        module.relative_relocations().len(),
        4,
        "the duplicate is dropped"
    );
    let written = relro..relro + 0x408;
    assert_eq!(module.relocated_ranges(), std::slice::from_ref(&written));
}

#[test]
fn every_word_of_a_section_round_trips() {
    // 1024 consecutive words: one offset word, then bitmaps of 63 words each.
    let all: Vec<u64> = (0..RELRO_SIZE / 8).map(|i| i * 8).collect();
    let (bytes, relro) = module_with(&all);
    let stored = words(&bytes);
    assert_eq!(stored.len(), 1 + (1023usize).div_ceil(63));
    assert_eq!(stored[1], u64::MAX, "a full bitmap");
    let module = Module::parse(&bytes).unwrap();
    let decoded: Vec<u64> = module.relative_relocations().iter().collect();
    let expected: Vec<u64> = all.iter().map(|o| relro + o).collect();
    assert_eq!(decoded, expected);
    // Every 3rd word, and scattered words far apart.
    let sparse: Vec<u64> = (0..RELRO_SIZE / 8)
        .filter(|i| i % 3 == 0 || i % 97 == 5)
        .map(|i| i * 8)
        .collect();
    let (bytes, relro) = module_with(&sparse);
    let module = Module::parse(&bytes).unwrap();
    let decoded: Vec<u64> = module.relative_relocations().iter().collect();
    let expected: Vec<u64> = sparse.iter().map(|o| relro + o).collect();
    assert_eq!(decoded, expected);
    assert_eq!(module.relative_relocations().len(), sparse.len());
}

#[test]
fn the_writer_refuses_an_unaligned_offset() {
    let mut builder = ModuleBuilder::new();
    builder.add_relative(0x1004);
    let error = builder.write().unwrap_err().to_string();
    assert!(error.contains("0x1004 is not 8-byte aligned"), "{error}");
}

#[test]
fn the_report_lists_each_relocated_word_with_its_target() {
    let (bytes, relro) = module_with(&[0x0, 0x8]);
    let module = Module::parse(&bytes).unwrap();
    let mut out = String::new();
    report::write_report(&module, &mut out).unwrap();
    assert!(
        out.contains("Packed relative relocations (2, in 2 relr words):"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{:#010x} .data.rel.ro     relative64  base + 0x1",
            relro + 8
        )),
        "{out}"
    );
}

#[test]
fn a_bitmap_needs_an_offset_before_it() {
    let (bytes, _) = module_with(&[0x0, 0x8]);
    let bad = with_words(&bytes, &[0b11, 0b11]);
    expect_err(
        &bad,
        &["relr", "word 0", "a bitmap word must follow an offset word"],
    );
}

#[test]
fn offsets_are_aligned_and_ascending() {
    let (bytes, relro) = module_with(&[0x0, 0x400]);
    let bad = with_words(&bytes, &[relro + 4, relro + 0x400]);
    expect_err(
        &bad,
        &[
            "word 0",
            &format!("offset {:#x} is not a multiple of 8", relro + 4),
        ],
    );
    let bad = with_words(&bytes, &[relro + 0x400, relro]);
    expect_err(
        &bad,
        &[
            "word 1",
            &format!(
                "offset {relro:#x} does not come after {:#x}, the word before",
                relro + 0x400
            ),
        ],
    );
    // The same word twice would add the base twice.
    let bad = with_words(&bytes, &[relro, relro]);
    expect_err(&bad, &["word 1", "does not come after"]);
    // An offset word inside the range a bitmap already covered.
    let (bytes, relro) = module_with(&[0x0, 0x10, 0x400]);
    let bad = with_words(&bytes, &[relro, 0b101, relro + 0x8]);
    expect_err(&bad, &["word 2", "does not come after"]);
}

#[test]
fn relocated_words_lie_in_writable_data() {
    let (bytes, relro) = module_with(&[0x0, 0x400]);
    // In the code section.
    let bad = with_words(&bytes, &[0, relro + 0x400]);
    expect_err(
        &bad,
        &[
            "word 0",
            "lies in code section 0, which relocations may not write",
        ],
    );
    // Past the end of the data section (inside its page, outside the section).
    let (bytes, relro) = module_with(&[0x0]);
    let beyond = relro + RELRO_SIZE + 0x100;
    let bad = with_words(&bytes, &[beyond]);
    expect_err(
        &bad,
        &[
            "word 0",
            &format!("offset {beyond:#x}..{:#x} is not inside", beyond + 8),
        ],
    );
    // A bitmap whose bits run from relro into the data section after it: each word is
    // checked, and the ones in data are accepted too.
    let (bytes, relro) = module_with(&[RELRO_SIZE - 16, 0x0]);
    let data = relro + RELRO_SIZE;
    let straddling = with_words(&bytes, &[relro + RELRO_SIZE - 16, 0b11 | (1 << 3)]);
    let module = Module::parse(&straddling).unwrap();
    let decoded: Vec<u64> = module.relative_relocations().iter().collect();
    assert_eq!(decoded, [data - 16, data - 8, data + 8]);
    // One run: the two sections' written pages are next to each other.
    let written = data - 16..data + 16;
    assert_eq!(module.relocated_ranges(), std::slice::from_ref(&written));
}

#[test]
fn a_bitmap_may_not_run_past_writable_data() {
    // A word at the end of the data section after relro, then one bit past its end.
    let (bytes, relro) = module_with(&[0x0, 0x400]);
    let data = relro + RELRO_SIZE;
    let bad = with_words(&bytes, &[data + 0xf0, 0b11 | (1 << 3)]);
    expect_err(
        &bad,
        &[
            "word 1",
            &format!(
                "offset {:#x}..{:#x} is not inside one data, relro or tls section",
                data + 0x108,
                data + 0x110
            ),
        ],
    );
}

#[test]
fn offsets_near_the_top_of_the_address_space_are_refused() {
    let (bytes, relro) = module_with(&[0x0, 0x400]);
    let top = u64::MAX - 7;
    let bad = with_words(&bytes, &[relro, top]);
    expect_err(&bad, &["word 1", &format!("offset {top:#x} overflows")]);
    // A bitmap after an offset whose next word would overflow has nowhere to point.
    let bad = with_words(&bytes, &[top, 0b11]);
    expect_err(&bad, &["word 0", "overflows"]);
}
