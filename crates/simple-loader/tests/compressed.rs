//! Modules with compressed payloads (FORMAT.md, *Compressed payloads*): decompressed into
//! the image, under the same hash rule as any module, and a damaged one refused.

mod common;

use simple_loader::{LoadError, LoadOptions, load};
use smf_format::*;

/// A module whose code (a function returning 42, then a page of padding) and data (a counting
/// pattern with a pointer to the code, rebased at load) compress well.
fn module(compression: Compression) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = simple_loader::HOST_PLATFORM;
    b.compression = compression;
    let mut code = common::return_constant(42).to_vec();
    code.resize(0x2000, 0);
    let mut data: Vec<u8> = (0..0x1800u32).map(|i| (i / 64) as u8).collect();
    data[..8].copy_from_slice(&0u64.to_le_bytes()); // image offset of `answer`
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 0x2000,
        align: 16,
        data: code,
    });
    let data_section = b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: 0x2000,
        mem_size: 0x3000,
        align: 8,
        data,
    });
    b.add_relative(0x2000);
    for (name, kind, section, value, size) in [
        (
            "answer",
            SymbolKind::Function,
            text,
            0,
            common::CODE_LEN as u64,
        ),
        ("table", SymbolKind::Data, data_section, 0x2000, 0x3000),
    ] {
        b.add_symbol(Symbol {
            name,
            kind,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(section),
            value,
            size,
            type_id: 0,
            version: 0,
        });
    }
    b.write().unwrap()
}

/// Loads `bytes` from a file, with the hash check on or off and the file mapped or read.
fn load_file(bytes: &[u8], options: &LoadOptions) -> Result<simple_loader::Module, LoadError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    std::fs::write(&path, bytes).unwrap();
    // SAFETY: a module this test built; its code is `mov eax, 42; ret` (or the aarch64 one).
    unsafe { load(&path, options, None) }
}

#[test]
fn a_compressed_module_loads_as_the_uncompressed_one() {
    let plain = module(Compression::None);
    for compression in [
        Compression::All { level: 19 },
        Compression::AllButCode { level: 3 },
    ] {
        let bytes = module(compression);
        let full = expand_tables(&bytes, &Limits::default()).unwrap().unwrap();
        let parsed = smf_format::Module::parse(&full).unwrap();
        assert!(parsed.header().flags.contains(ModuleFlags::COMPRESSED));
        let code = parsed
            .sections()
            .iter()
            .find(|s| s.kind == SectionKind::Code)
            .unwrap();
        assert_eq!(
            code.is_compressed(),
            matches!(compression, Compression::All { .. })
        );
        assert!(
            bytes.len() < plain.len(),
            "{compression:?}: {} bytes",
            bytes.len()
        );
        for options in [
            LoadOptions::default(),
            LoadOptions::default().with_verify_hash(true),
            LoadOptions::default().with_map_file(false),
        ] {
            let module = load_file(&bytes, &options).unwrap();
            // SAFETY: `answer` is `int answer(void)`.
            let answer = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
            assert_eq!(answer(), 42);
            let (_, table) = module.export("table").unwrap();
            // SAFETY: `table` is 0x3000 readable bytes of the loaded image.
            let image = unsafe { std::slice::from_raw_parts(table as *const u8, 0x3000) };
            let base = module.base() as u64;
            assert_eq!(image[..8], base.to_le_bytes(), "the pointer was rebased");
            let expected: Vec<u8> = (8..0x1800u32).map(|i| (i / 64) as u8).collect();
            assert_eq!(&image[8..0x1800], &expected[..], "{compression:?}");
            assert!(
                image[0x1800..].iter().all(|&b| b == 0),
                "zero past raw_size"
            );
        }
    }
}

#[test]
fn the_hash_covers_the_compressed_bytes() {
    let bytes = module(Compression::All { level: 19 });
    let full = expand_tables(&bytes, &Limits::default()).unwrap().unwrap();
    let parsed = smf_format::Module::parse(&full).unwrap();
    let data = parsed
        .sections()
        .iter()
        .find(|s| s.kind == SectionKind::Data)
        .unwrap();
    // A byte of the frame changed: the stored hash no longer matches.
    let at = data.file_offset as usize + data.file_size as usize - 2;
    let mut damaged = bytes.clone();
    damaged[at] ^= 0x40;
    let error = load_file(&damaged, &LoadOptions::default().with_verify_hash(true))
        .err()
        .expect("a damaged module loads");
    assert!(
        format!("{error:#}").contains("hash"),
        "not refused for its hash: {error:#}"
    );
    // With the hash made to match, the frame itself is damaged: refused before the module
    // is linked (a parse error), or by the decompression, never a crash or a partial image.
    let mut refused = 0;
    for at in data.file_offset as usize + 16..(data.file_offset + data.file_size) as usize {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5a;
        let hash = compute_module_hash(&damaged).unwrap();
        damaged[0x30..0x50].copy_from_slice(&hash);
        match load_file(&damaged, &LoadOptions::default().with_verify_hash(true)) {
            Err(e) => {
                let text = format!("{e:#}");
                assert!(
                    text.contains("zstd") || text.contains("decompress"),
                    "{text}"
                );
                refused += 1;
            }
            // zstd frames carry no checksum here: a changed literal decodes to other bytes.
            Ok(_) => {}
        }
    }
    assert!(refused > 0);
}
