//! Compressed payloads (FORMAT.md, *Compressed payloads*): what the writer produces, and the
//! declared sizes the reader checks before anything is decompressed.

use smf_format::*;

/// Code that compresses (a `ret` sled) and data that compresses (a counting pattern), and a
/// bss section, which has no payload to compress.
fn builder(compression: Compression) -> ModuleBuilder<'static> {
    let mut b = ModuleBuilder::new();
    b.compression = compression;
    let mut layout = ImageLayout::new();
    let code = vec![0xc3; 0x3000];
    let data: Vec<u8> = (0..0x2800u32).map(|i| (i / 16) as u8).collect();
    let at = layout.place(code.len() as u64).unwrap();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: at,
        mem_size: code.len() as u64,
        align: 16,
        data: code,
    });
    let at = layout.place(0x3000).unwrap();
    b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: at,
        mem_size: 0x3000,
        align: 8,
        data,
    });
    let at = layout.place(0x1000).unwrap();
    b.add_section(LoadedSection {
        kind: SectionKind::Bss,
        name: ".bss",
        vaddr: at,
        mem_size: 0x1000,
        align: 8,
        data: Vec::new(),
    });
    // Enough local symbols for the symbol and string tables to compress.
    for name in LOCALS.iter() {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Data,
            binding: Binding::Local,
            visibility: Visibility::Default,
            section: Some(text + 1),
            value: 0x3000,
            size: 8,
            type_id: 0,
            version: 0,
        });
    }
    b.add_symbol(Symbol {
        name: "f",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: 1,
        type_id: 0,
        version: 0,
    });
    b
}

static LOCALS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    (0..300)
        .map(|i| &*Box::leak(format!("local_counter_{i}").into_boxed_str()))
        .collect()
});

const ZSTD: Compression = Compression::All { level: 19 };

/// File offset of section `index`'s table entry.
fn entry(index: usize) -> usize {
    0x80 + 64 * index
}

fn field(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn set(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// The file with its compressed tables decompressed, as a reader parses it.
fn expanded(bytes: &[u8]) -> Vec<u8> {
    expand_tables(bytes, &Limits::default())
        .unwrap()
        .unwrap_or_else(|| bytes.to_vec())
}

fn parse_error(bytes: &[u8]) -> String {
    let bytes = match expand_tables(bytes, &Limits::default()) {
        Ok(expanded) => expanded.unwrap_or_else(|| bytes.to_vec()),
        Err(e) => return e.to_string(),
    };
    match Module::parse(&bytes) {
        Ok(_) => panic!("parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn compressed_payloads_read_back_as_written() {
    let plain = builder(Compression::None).write().unwrap();
    let bytes = builder(ZSTD).write().unwrap();
    assert!(
        bytes.len() * 4 < plain.len(),
        "{} vs {}",
        bytes.len(),
        plain.len()
    );
    // The tables are compressed too: a parse asks for them to be expanded first.
    let refused = Module::parse(&bytes).unwrap_err().to_string();
    assert!(refused.contains("expand_tables"), "{refused}");
    let full = expanded(&bytes);
    assert!(full.len() > bytes.len(), "the tables were compressed");
    let (a, b) = (
        Module::parse(&plain).unwrap(),
        Module::parse(&full).unwrap(),
    );
    assert_eq!(compute_module_hash(&bytes).unwrap(), b.header().module_hash);
    assert!(b.header().flags.contains(ModuleFlags::COMPRESSED));
    assert_eq!(a.lookup("f"), b.lookup("f"));
    for kind in [SectionKind::StrTab, SectionKind::SymTab, SectionKind::Hash] {
        let (x, y) = (
            a.table_section(kind).unwrap(),
            b.table_section(kind).unwrap(),
        );
        assert_eq!(x.data, y.data, "{kind}");
    }
    assert!(!a.header().flags.contains(ModuleFlags::COMPRESSED));
    for (x, y) in a.loaded_sections().zip(b.loaded_sections()) {
        assert_eq!(y.is_compressed(), x.kind != SectionKind::Bss, "{}", y.name);
        assert_eq!(x.payload().unwrap(), y.payload().unwrap(), "{}", y.name);
        assert_eq!(x.file_size, y.initialised_size());
        assert_eq!((x.vaddr, x.mem_size), (y.vaddr, y.mem_size));
    }
    // Payloads are read where they lie: no head, and a parse from a head is refused.
    assert_eq!(head_len(&bytes), None);
    assert!(head_len(&plain).is_some());
    let err = Module::parse_head(&full[..0x200], full.len() as u64, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("compressed"), "{err}");
}

#[test]
fn compress_data_keeps_code_mapped() {
    let bytes = expanded(
        &builder(Compression::AllButCode { level: 3 })
            .write()
            .unwrap(),
    );
    let module = Module::parse(&bytes).unwrap();
    let code = module
        .sections()
        .iter()
        .find(|s| s.kind == SectionKind::Code)
        .unwrap();
    let data = module
        .sections()
        .iter()
        .find(|s| s.kind == SectionKind::Data)
        .unwrap();
    assert!(!code.is_compressed() && data.is_compressed());
    assert_eq!(code.file_offset % 0x1000, 0, "code stays mappable");
    assert_eq!(code.flags, SectionKind::Code.protection());
    assert_eq!(data.flags.0, SectionKind::Data.protection().0 | 0x8);
}

#[test]
fn incompressible_payloads_stay_as_they_are() {
    let mut b = ModuleBuilder::new();
    b.compression = ZSTD;
    // Bytes of a fixed-seed generator: zstd cannot save an eighth of them.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..0x1000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    b.add_section(LoadedSection {
        kind: SectionKind::RoData,
        name: ".rodata",
        vaddr: 0,
        mem_size: 0x1000,
        align: 8,
        data: data.clone(),
    });
    let bytes = expanded(&b.write().unwrap());
    let module = Module::parse(&bytes).unwrap();
    assert!(!module.header().flags.contains(ModuleFlags::COMPRESSED));
    assert_eq!(module.loaded_sections().next().unwrap().data, &data[..]);
}

#[test]
fn declared_sizes_are_checked_before_decompressing() {
    let bytes = builder(ZSTD).write().unwrap();
    let data = entry(1);
    let payload = field(&bytes, data + 8) as usize;
    assert_eq!(field(&bytes, payload + 8), 0x2800, "raw_size of .data");

    // Larger than the section's memory size: the bytes would spill into the next section.
    let mut b = bytes.clone();
    set(&mut b, payload + 8, &0x3001u64.to_le_bytes());
    let e = parse_error(&b);
    assert!(
        e.contains("decompressed size 0x3001") && e.contains(".data"),
        "{e}"
    );

    // Within the section, but not what the frame says it holds.
    let mut b = bytes.clone();
    set(&mut b, payload + 8, &0x2000u64.to_le_bytes());
    let e = parse_error(&b);
    assert!(e.contains("content size 0x2800 differs"), "{e}");

    // Unknown algorithm, reserved word.
    let mut b = bytes.clone();
    set(&mut b, payload, &2u32.to_le_bytes());
    assert!(parse_error(&b).contains("unknown compression algorithm 2"));
    let mut b = bytes.clone();
    set(&mut b, payload + 4, &1u32.to_le_bytes());
    assert!(parse_error(&b).contains("reserved word"));

    // The frame must fill the payload exactly: one byte less is a truncated frame.
    let mut b = bytes.clone();
    let size = field(&b, data + 16);
    set(&mut b, data + 16, &(size - 1).to_le_bytes());
    assert!(
        parse_error(&b).contains("zstd frame"),
        "{}",
        parse_error(&b)
    );

    // Not a frame at all.
    let mut b = bytes.clone();
    set(&mut b, payload + 16, &[0; 4]);
    assert!(parse_error(&b).contains("not a zstd frame"));

    // Shorter than the header.
    let mut b = bytes.clone();
    set(&mut b, data + 16, &8u64.to_le_bytes());
    assert!(parse_error(&b).contains("shorter than its 16-byte header"));
}

#[test]
fn the_flags_must_agree() {
    let bytes = builder(ZSTD).write().unwrap();
    // A compressed section in a module not flagged COMPRESSED.
    let mut b = bytes.clone();
    let flags = u32::from_le_bytes(b[8..12].try_into().unwrap());
    set(&mut b, 8, &(flags & !0x10).to_le_bytes());
    assert!(parse_error(&b).contains("in a module flagged COMPRESSED"));
    // A flagged module whose sections are not compressed.
    let mut b = builder(Compression::None).write().unwrap();
    let flags = u32::from_le_bytes(b[8..12].try_into().unwrap());
    set(&mut b, 8, &(flags | 0x10).to_le_bytes());
    assert!(parse_error(&b).contains("no section is compressed"));
    // The flag on bss.
    for index in [2] {
        let mut b = bytes.clone();
        let at = entry(index) + 4;
        let f = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        set(&mut b, at, &(f | 0x8).to_le_bytes());
        assert!(
            parse_error(&b).contains("only for the payload of a loaded section"),
            "section {index}: {}",
            parse_error(&b)
        );
    }
}

#[test]
fn a_decompression_bomb_is_refused_by_the_limit() {
    // 64 MiB of zeros compress to a few kilobytes.
    let mut b = ModuleBuilder::new();
    b.compression = ZSTD;
    b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: 0,
        mem_size: 64 << 20,
        align: 8,
        data: vec![0; 64 << 20],
    });
    let bytes = b.write().unwrap();
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let limits = Limits::default().with_max_decompressed_size(16 << 20);
    let bytes = expanded(&bytes);
    match Module::parse_with_limits(&bytes, &limits) {
        Err(Error::LimitExceeded { value, limit, .. }) => {
            assert_eq!((value, limit), (64 << 20, 16 << 20));
        }
        other => panic!("{other:?}"),
    }
    // Under the default limit it parses, and decompresses to exactly the declared bytes.
    let module = Module::parse(&bytes).unwrap();
    let section = module.loaded_sections().next().unwrap();
    let compressed = section.compressed().unwrap();
    assert_eq!(compressed.raw_size, 64 << 20);
    let mut short = vec![0; 1 << 20];
    assert!(compressed.decompress_into(&mut short).is_err());
}

#[test]
fn a_corrupt_frame_is_an_error_not_a_crash() {
    let bytes = builder(ZSTD).write().unwrap();
    let data = entry(1);
    let payload = field(&bytes, data + 8) as usize;
    let size = field(&bytes, data + 16) as usize;
    let mut failures = 0;
    for at in payload + 24..payload + size {
        let mut b = bytes.clone();
        b[at] ^= 0x55;
        // Either the reader refuses it, or decompressing does; never a panic or a wrong size.
        let Ok(b) = expand_tables(&b, &Limits::default()).map(|e| e.unwrap_or(b.clone())) else {
            failures += 1;
            continue;
        };
        let Ok(module) = Module::parse(&b) else {
            failures += 1;
            continue;
        };
        let section = module.sections()[1];
        match section.payload() {
            Ok(p) => assert_eq!(p.len(), 0x2800),
            Err(_) => failures += 1,
        }
    }
    assert!(failures > 0);
}

/// The payload of FORMAT.md's example: a 0x1000-byte data section, byte `i` = `i / 256`.
fn example_payload() -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.compression = Compression::All { level: 19 };
    b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: 0,
        mem_size: 0x1000,
        align: 8,
        data: (0..0x1000u32).map(|i| (i / 256) as u8).collect(),
    });
    let bytes = expanded(&b.write().unwrap());
    let module = Module::parse(&bytes).unwrap();
    let section = module.loaded_sections().next().unwrap();
    assert!(section.is_compressed());
    assert_eq!(section.flags.0, 0xb);
    section.data.to_vec()
}

/// `xxd` lines (no repeated-zero lines occur in a compressed payload this small).
fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk
            .chunks(2)
            .map(|pair| pair.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
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
        out.push_str(&format!("{:08x}: {:<39}  {text}\n", i * 16, hex.join(" ")));
    }
    out
}

#[test]
fn the_format_doc_example_is_what_the_writer_compresses() {
    const MARKER: &str = "<!-- compressed-example -->\n```text\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find(MARKER).expect("the example marker") + MARKER.len();
    let end = start + doc[start..].find("```").expect("a closed block");
    let actual = dump(&example_payload());
    if std::env::var_os("SMF_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{}{actual}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        actual,
        "docs/FORMAT.md's compressed example differs from the writer's output \
         (SMF_BLESS=1 rewrites it)"
    );
}
