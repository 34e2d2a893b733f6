//! The page size a module is laid out for (header byte 0x50, `page_order`): written by the
//! builder, checked by the reader against every page rule (docs/FORMAT.md, *Page size*).

use smf_format::*;

/// A module with code and data laid out for `page_size`-byte pages.
fn module(page_size: u64) -> Result<Vec<u8>, Error> {
    let mut builder = ModuleBuilder::new();
    builder.arch = Arch::Aarch64;
    builder.page_size = page_size;
    let mut layout = ImageLayout::with_page_size(page_size);
    for (kind, name, data) in [
        (SectionKind::Code, ".text", vec![0xc0, 0x03, 0x5f, 0xd6]),
        (SectionKind::Data, ".data", vec![1; 0x1800]),
    ] {
        let vaddr = layout.place(data.len() as u64)?;
        builder.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size: data.len() as u64,
            align: 16,
            data,
        });
    }
    builder.write()
}

#[test]
fn a_64k_module_records_its_page_size_and_aligns_to_it() {
    let bytes = module(0x10000).unwrap();
    assert_eq!(bytes[0x50], 4, "page_order");
    let parsed = Module::parse(&bytes).unwrap();
    assert_eq!(parsed.header().page_size, 0x10000);
    assert_eq!(parsed.header().image_size, 0x20000);
    let placed: Vec<(u64, u64)> = parsed
        .loaded_sections()
        .map(|s| (s.vaddr, s.file_offset))
        .collect();
    assert_eq!(placed, [(0, 0x10000), (0x10000, 0x20000)]);
    assert_eq!(head_len(&bytes), Some(0x10000));
}

#[test]
fn old_modules_are_4k_modules() {
    let bytes = module(0x1000).unwrap();
    assert_eq!(bytes[0x50], 0);
    let parsed = Module::parse(&bytes).unwrap();
    assert_eq!(parsed.header().page_size, 0x1000);
    assert_eq!(
        parsed
            .loaded_sections()
            .map(|s| s.vaddr)
            .collect::<Vec<_>>(),
        [0, 0x1000]
    );
}

#[test]
fn the_reader_checks_sections_against_the_recorded_page_size() {
    // A 4 KiB module claiming 16 KiB pages: its image size and data address are off.
    let mut bytes = module(0x1000).unwrap();
    bytes[0x50] = 2;
    let error = Module::parse(&bytes).unwrap_err().to_string();
    assert!(
        error.contains("image size 0x3000 is not a multiple of the page size (0x4000)"),
        "{error}"
    );
    bytes[0x50] = 5;
    let error = Module::parse(&bytes).unwrap_err().to_string();
    assert!(error.contains("page order 5 is above 4"), "{error}");
    // A 64 KiB module read as a 4 KiB one is a valid 4 KiB module: 64 KiB boundaries are 4 KiB
    // boundaries.
    let mut bytes = module(0x10000).unwrap();
    bytes[0x50] = 0;
    assert_eq!(Module::parse(&bytes).unwrap().header().page_size, 0x1000);
}

#[test]
fn the_writer_refuses_page_sizes_the_format_cannot_record() {
    for page_size in [0, 0x800, 0x3000, 0x20000] {
        let error = module(page_size).unwrap_err().to_string();
        assert!(error.contains("page size"), "{page_size:#x}: {error}");
    }
}
