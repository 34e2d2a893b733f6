//! What each fuzz target does with one input. Shared with the regression test
//! (`crates/smf/tests/fuzz_regressions.rs` includes this file), so that replaying a saved
//! input runs exactly the code the fuzzer ran. A finding is a panic (including the
//! assertions below), a crash, a hang or a huge allocation.

use simple_loader::{ImportResolver, LoadOptions, ModuleSource, load};
use smf_format::{Module, compute_module_hash, raw::MODULE_HASH_RANGE};

/// The reader and verifier on arbitrary bytes: parse, check the hash, and use every accessor
/// a loader or a tool would, including the `inspect` report. Also the signature-file parser.
pub fn reader(data: &[u8]) {
    let _ = smf_sign::ModuleSignature::parse(data);
    let parsed = Module::parse(data);
    // What the loader does with a mapped file: find the head, parse it alone. It must reach
    // the same verdict and describe the same module.
    if let Some(head) = smf_format::head_len(data) {
        assert!(head % smf_format::raw::PAGE_SIZE == 0 && head < data.len() as u64);
        let limits = smf_format::Limits::default();
        let from_head = Module::parse_head(&data[..head as usize], data.len() as u64, &limits);
        match (&parsed, &from_head) {
            (Ok(whole), Ok(part)) => {
                assert_eq!(whole.header(), part.header());
                assert_eq!(
                    format!("{:?}", whole.symbols()),
                    format!("{:?}", part.symbols())
                );
                assert_eq!(whole.imports(), part.imports());
                assert!(whole.relocations().iter().eq(part.relocations().iter()));
                assert_eq!(whole.relocated_ranges(), part.relocated_ranges());
                assert!(part.verify_hash().is_err(), "a head alone cannot be hashed");
            }
            (Err(_), Err(_)) => {}
            (whole, part) => panic!("whole file: {whole:?}; its head alone: {part:?}"),
        }
    }
    let Ok(module) = parsed else {
        return;
    };
    let _ = module.verify_hash();
    for symbol in module.symbols() {
        // An entry no load uses may be broken: it reads as an error naming it.
        let symbol = match symbol {
            Ok(symbol) => symbol,
            Err(e) => {
                assert!(e.to_string().contains("symbol"), "{e}");
                continue;
            }
        };
        if symbol.is_exported() {
            let found = module
                .lookup(symbol.name)
                .expect("exported symbols are found");
            assert_eq!(found.name, symbol.name);
        }
        if let Some(section) = symbol.section {
            let section = &module.sections()[section as usize];
            assert!(section.kind.is_loaded());
            assert!(symbol.value >= section.vaddr);
            assert!(symbol.value + symbol.size <= section.vaddr + section.mem_size);
        }
    }
    for reloc in module.relocations() {
        let target = module.section_at(reloc.offset).expect("in a section");
        assert!(target.kind.accepts_relocations());
        assert!(reloc.offset + 8 <= target.vaddr + target.mem_size);
    }
    let packed = module.relative_relocations();
    let mut previous = None;
    let mut count = 0;
    for offset in packed {
        let target = module.section_at(offset).expect("in a section");
        assert!(target.kind.accepts_relocations());
        assert!(offset % 8 == 0 && offset + 8 <= target.vaddr + target.mem_size);
        assert!(previous < Some(offset), "ascending, each word once");
        previous = Some(offset);
        count += 1;
    }
    assert_eq!(count, packed.len());
    // Runs of written pages: each starts and ends with a written word, and runs whose pages
    // touch are one, even across sections.
    for run in module.relocated_ranges() {
        assert!(run.start < run.end && run.end <= module.header().image_size);
        let first = module.section_at(run.start).expect("starts in a section");
        let last = module.section_at(run.end - 1).expect("ends in a section");
        assert!(first.kind.accepts_relocations() && last.kind.accepts_relocations());
    }
    for section in module.sections() {
        assert_eq!(section.data.len() as u64, section.file_size);
        assert!(section.vaddr + section.mem_size <= module.header().image_size);
    }
    let _ = (module.imports(), module.needed());
    let _ = (module.init_array(), module.fini_array());
    let mut report = String::new();
    smf_format::report::write_report(&module, &mut report).expect("a report of a valid module");
}

/// Writes the module hash of `data` into its header, so that a mutated file reaches the
/// structural checks and the loader instead of stopping at the hash check.
pub fn rehash(data: &mut [u8]) {
    if let Ok(hash) = compute_module_hash(data) {
        data[MODULE_HASH_RANGE].copy_from_slice(&hash);
    }
}

/// What [`loader`] did with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The reader refused it (after the hash was fixed).
    Rejected,
    /// Well-formed, but it has constructors, destructors, indirect-function resolvers
    /// (`irelative` relocations) or needed libraries: not loaded.
    Skipped,
    /// The loader refused it (wrong target, an import it cannot resolve, a memory error).
    Refused,
    /// Loaded, checked and dropped.
    Loaded,
}

/// The loader on structurally valid modules with mutated tables: the input, with its hash
/// fixed, is loaded (mapped, relocated, protected) and dropped, once from memory and once
/// from a file (whose payloads the loader maps from the file), with the same outcome. Module code never runs: inputs
/// with constructors, destructors or `irelative` relocations (whose resolvers the loader
/// calls) are skipped, and so are inputs that name native libraries (opening one runs its
/// initialisers).
pub fn loader(data: &[u8]) {
    load_outcome(data);
}

/// [`loader`], saying what happened.
pub fn load_outcome(data: &[u8]) -> LoadOutcome {
    let mut bytes = data.to_vec();
    rehash(&mut bytes);
    let Ok(module) = Module::parse(&bytes) else {
        return LoadOutcome::Rejected;
    };
    if !module.init_array().is_empty()
        || !module.fini_array().is_empty()
        || !module.needed().is_empty()
        || module
            .relocations()
            .iter()
            .any(|r| r.kind == smf_format::RelocKind::Irelative)
    {
        return LoadOutcome::Skipped;
    }
    let expected_len = module.header().image_size;
    drop(module);
    // Imports resolve against the process's own symbols (libc), looked up but never called.
    let resolver: &ImportResolver<'_> = &|_, _| Ok(None);
    let options = LoadOptions::default();
    // Every exported symbol with an address lies inside the mapped image.
    let check = |module: &simple_loader::Module| {
        let base = module.base();
        assert!(module.image_len() as u64 >= expected_len);
        for (_, symbol) in module.file().symbols().exported() {
            if symbol.section.is_some() {
                let (_, address) = module.export(symbol.name).expect("exported");
                assert!(address >= base && address - base <= module.image_len());
            }
        }
    };
    // The same module from a file too: a file's payloads are mapped straight from it
    // (zero-copy) where bytes in memory are copied. One at a time: a module with
    // a static thread-local block holds part of the C library's small reserve, and two
    // copies at once may not fit where one does.
    let file = std::env::temp_dir().join(format!("smf-fuzz-loader-{}.smf", std::process::id()));
    let from_file = std::fs::write(&file, &bytes).ok().map(|()| {
        // SAFETY: no code of the module runs (inputs with constructors, destructors, resolvers
        // or needed libraries were skipped above) and the file is not written while it is loaded.
        let loaded = unsafe { load(&file, &options, Some(resolver)) };
        if let Ok(module) = &loaded {
            check(module);
        }
        loaded.map(drop)
    });
    let source = ModuleSource::Bytes {
        bytes,
        name: "<fuzz>".into(),
    };
    // SAFETY: as above.
    let from_memory = unsafe { load(source, &options, Some(resolver)) };
    if let Ok(module) = &from_memory {
        check(module);
    }
    // The same bytes load or fail the same way, however they are held.
    match (from_memory, from_file) {
        (Ok(_), None | Some(Ok(()))) => LoadOutcome::Loaded,
        (Err(_), None | Some(Err(_))) => LoadOutcome::Refused,
        (Ok(_), Some(Err(error))) => panic!("loads from memory only; from a file: {error}"),
        (Err(error), Some(Ok(()))) => panic!("loads from a file only; from memory: {error}"),
    }
}

/// The packer on arbitrary ELF objects: it either refuses the input or produces a module that
/// the reader accepts, hash included.
pub fn packer(data: &[u8]) {
    let inputs = [smf_pack::Input {
        name: "fuzz.o".into(),
        data: data.to_vec(),
    }];
    let options = smf_pack::Options::default();
    if let Ok(bytes) = smf_pack::pack(&inputs, &options) {
        let module = Module::parse(&bytes).expect("the packer writes valid modules");
        module
            .verify_hash()
            .expect("the packer writes the module hash");
    }
}

/// The `typeinfo` reader on arbitrary bytes (a section's payload): whatever parses must
/// print, compare, copy and describe without panicking, every type must be the same as
/// itself and as its copy, and a copy must print as the original.
pub fn typeinfo(data: &[u8]) {
    use smf_format::typeinfo::{Match, OwnedType, TypeInfo, compare};
    let Ok(types) = TypeInfo::parse(data) else {
        return;
    };
    // Bounded so that a large table is not quadratic work for the fuzzer.
    for id in 0..=types.len().min(64) + 1 {
        let text = types.display(id);
        let _ = types.describe_record(id);
        let _ = types.records_reached(id);
        if let Some(t) = types.get(id) {
            let _ = types.members(&t).count();
        }
        assert_eq!(
            compare(&types, id, &types, id, Match::Exact),
            Ok(()),
            "{text}"
        );
        let copy = OwnedType::copy_of(&types, id);
        let (table, copied) = copy.view();
        // (An anonymous struct is named by its id, which the copy renumbers.)
        if !text.contains('#') {
            assert_eq!(table.display(copied), text);
        }
        assert_eq!(
            compare(&types, id, &table, copied, Match::Exact),
            Ok(()),
            "{text}"
        );
    }
}

/// The source-map reader on arbitrary bytes (a `srcmap` table alone): whatever
/// `SourceMap::parse` accepts must read back consistently: rows strictly ascending, the last
/// an end row, each row with a source found by a lookup at its own address, with a file name.
pub fn srcmap(data: &[u8]) {
    let Ok(map) = smf_format::SourceMap::parse(data) else {
        return;
    };
    let mut previous: Option<smf_format::SourceRow> = None;
    let mut count = 0u64;
    for row in map.rows() {
        assert!(
            previous.is_none_or(|p| p.address < row.address),
            "ascending"
        );
        if !row.is_end() {
            let found = map
                .lookup(row.address)
                .expect("a row with a source is found");
            assert_eq!((found.line, found.column), (row.line, row.column));
            assert_eq!(Some(found.file), map.file(row.file));
        } else {
            assert_eq!(map.lookup(row.address), None);
        }
        previous = Some(row);
        count += 1;
    }
    assert_eq!(count, u64::from(map.row_count()));
    assert!(
        previous.is_none_or(|last| last.is_end()),
        "the last row is an end row"
    );
    let _ = map.lookup(0);
    let _ = map.lookup(u64::MAX);
    let mut report = String::new();
    let _ = smf_format::srcmap::write_source_lines(Some(&map), &mut report);
}

/// Compressed payloads and tables on arbitrary bytes: decompress the tables as a reader
/// does, parse, and decompress every compressed payload, which must give exactly its
/// declared size or an error.
pub fn compressed(data: &[u8]) {
    let limits = smf_format::Limits::default().with_max_decompressed_size(64 << 20);
    let Ok(expanded) = smf_format::expand_tables(data, &limits) else {
        return;
    };
    let bytes = expanded.as_deref().unwrap_or(data);
    let Ok(module) = Module::parse_with_limits(bytes, &limits) else {
        return;
    };
    for section in module.sections() {
        if let Some(compressed) = section.compressed() {
            assert!(compressed.raw_size <= section.mem_size);
            if let Ok(payload) = compressed.decompress() {
                assert_eq!(payload.len() as u64, compressed.raw_size);
            }
        }
    }
}

/// The version table parser on arbitrary bytes; every range it accepts prints as text that
/// parses back to it, and every version index below the count is there.
pub fn versions(data: &[u8]) {
    let Ok(table) = smf_format::VersionTable::parse(data) else {
        return;
    };
    let _ = (table.name(), table.module_version());
    for i in 0..table.version_count() as u32 {
        assert!(table.version(i).is_some());
    }
    for dependency in table.dependencies() {
        assert!(!dependency.name.is_empty());
        let text = dependency.req.to_string();
        assert_eq!(text.parse::<smf_format::VersionReq>(), Ok(dependency.req));
        let _ = dependency.req.matches(&table.module_version());
    }
}
