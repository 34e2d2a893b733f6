//! The source map of docs/FORMAT.md (*Source map*): its worked example against the builder,
//! and the module-level rules of `Module::source_map`.
//!
//! `SMF_BLESS=1 cargo test -p smf-format --test srcmap_format` rewrites the dump from the
//! builder's output; review the table of the prose after it, which decodes the bytes.

use std::path::PathBuf;

use smf_format::*;

const MARKER: &str = "<!-- srcmap-example -->";

/// The table of the worked example, built as docs/FORMAT.md shows.
fn worked_example() -> Vec<u8> {
    let mut map = SourceMapBuilder::new();
    map.rows_per_block = 2;
    let c = map.file("m.c");
    let h = map.file("m.h");
    map.add_sequence(&[(0x10, c, 3, 1), (0x14, c, 4, 5), (0x20, h, 10, 0)], 0x28);
    map.encode().unwrap()
}

/// `xxd` without `-a`: 16 bytes a line in groups of two, the offset, the printable characters.
fn xxd(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::new();
        for (j, b) in chunk.iter().enumerate() {
            if j > 0 && j % 2 == 0 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x}"));
        }
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!("{:08x}: {hex:<39}  {text}\n", i * 16));
    }
    out
}

#[test]
fn the_worked_example_matches_the_builder() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let marker = doc
        .find(MARKER)
        .expect("no srcmap-example marker in docs/FORMAT.md");
    let open = marker + doc[marker..].find("```text\n").unwrap() + "```text\n".len();
    let close = open + doc[open..].find("```").unwrap();
    let bytes = worked_example();
    assert_eq!(bytes.len(), 0x55);
    let dump = xxd(&bytes);
    if std::env::var_os("SMF_BLESS").is_some() {
        let mut doc = doc.clone();
        doc.replace_range(open..close, &dump);
        std::fs::write(&path, doc).unwrap();
        return;
    }
    assert_eq!(
        &doc[open..close],
        dump,
        "docs/FORMAT.md's srcmap dump is stale"
    );
    // What the prose says of it.
    let map = SourceMap::parse(&bytes).unwrap();
    let at = |a| map.lookup(a).map(|l| l.to_string());
    assert_eq!(at(0x10).as_deref(), Some("m.c:3:1"));
    assert_eq!(at(0x1f).as_deref(), Some("m.c:4:5"));
    assert_eq!(at(0x24).as_deref(), Some("m.h:10"));
    assert_eq!(at(0x28), None);
    assert_eq!(at(0x0f), None);
}

fn module_with(srcmap: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut builder = ModuleBuilder::new();
    let code = vec![0xc3; 0x40];
    builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 0x40,
        align: 16,
        data: code,
    });
    builder.set_opaque(SectionKind::SrcMap, srcmap)?;
    builder.write()
}

#[test]
fn a_module_carries_its_source_map() {
    let bytes = module_with(worked_example()).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let map = module.source_map().unwrap().unwrap();
    assert_eq!(map.lookup(0x14).unwrap().to_string(), "m.c:4:5");
    assert_eq!(map.file_count(), 2);

    let mut builder = ModuleBuilder::new();
    builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 0x10,
        align: 16,
        data: vec![0xc3; 0x10],
    });
    let bytes = builder.write().unwrap();
    assert!(
        Module::parse(&bytes)
            .unwrap()
            .source_map()
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_writer_refuses_a_bad_source_map() {
    let mut bad = worked_example();
    bad[0x0c] = 5; // row_count
    let error = module_with(bad).unwrap_err().to_string();
    assert!(
        error.contains("srcmap header: row_count is 5, the blocks hold 4"),
        "{error}"
    );
}

#[test]
fn rows_past_the_image_are_refused() {
    let mut map = SourceMapBuilder::new();
    let f = map.file("f.c");
    map.add_sequence(&[(0x10, f, 1, 0)], 0x2000);
    let table = map.encode().unwrap();
    // Written by hand: the writer would refuse it.
    let good = module_with(worked_example()).unwrap();
    let module = Module::parse(&good).unwrap();
    let section = module.table_section(SectionKind::SrcMap).unwrap();
    let (offset, size) = (section.file_offset as usize, section.data.len());
    assert!(table.len() <= size);
    let mut bytes = good.clone();
    bytes[offset..offset + table.len()].copy_from_slice(&table);
    // Shrink the section entry to the new table.
    let header = bytes
        .chunks(64)
        .position(|entry| {
            entry.starts_with(&9u32.to_le_bytes()) && entry[8..16] == (offset as u64).to_le_bytes()
        })
        .unwrap()
        * 64;
    bytes[header + 16..header + 24].copy_from_slice(&(table.len() as u64).to_le_bytes());
    let module = Module::parse(&bytes).unwrap();
    let error = module.source_map().unwrap_err().to_string();
    assert_eq!(
        error,
        "srcmap: row address 0x2000 is past the image (image_size 0x1000)"
    );
}
