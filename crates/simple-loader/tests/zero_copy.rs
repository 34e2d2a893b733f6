//! Zero-copy loading: section payloads mapped from the file, only relocated pages copied (by
//! the kernel), protections as for a copied image, and the cases that must not be mapped.
// Module files are mapped only on Unix; on Windows the loader copies them.
#![cfg(unix)]

mod common;
use common::{CODE_LEN, replace, return_constant};
use std::path::{Path, PathBuf};

use simple_loader::{LoadOptions, Module, load};
use smf_format::*;

/// `mov eax, 42; ret`
const RETURN_42: [u8; CODE_LEN] = return_constant(42);
const RETURN_7: [u8; CODE_LEN] = return_constant(7);

/// Where the test module keeps things (image offsets).
struct Layout {
    rodata: u64,
    relro: u64,
    data: u64,
    bss: u64,
}

/// Code (`answer`), 5,000 bytes of rodata (so its last page is partly padding), a relro
/// page of pointers (`relative64` to data, `abs64` to the host's `getpid`), data holding a
/// value and a `relative64` pointer, and two pages of bss.
fn module(code: [u8; CODE_LEN], reloadable: bool) -> (Vec<u8>, Layout) {
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = Platform::Linux;
    if reloadable {
        b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    }
    let mut layout = ImageLayout::new();
    let mut add = |b: &mut ModuleBuilder, kind, name, data: Vec<u8>, mem: u64| {
        let vaddr = layout.place(mem).unwrap();
        let index = b.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size: mem,
            align: 16,
            data,
        });
        (index, vaddr)
    };
    let (text, text_va) = add(
        &mut b,
        SectionKind::Code,
        ".text",
        code.to_vec(),
        CODE_LEN as u64,
    );
    let rodata_bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
    let (_, rodata) = add(&mut b, SectionKind::RoData, ".rodata", rodata_bytes, 5000);
    let (_, relro) = add(&mut b, SectionKind::RelRo, ".data.rel.ro", vec![0; 16], 16);
    let data_bytes: Vec<u8> = 0x1234_5678u64
        .to_le_bytes()
        .into_iter()
        .chain([0; 8])
        .collect();
    let (_, data) = add(&mut b, SectionKind::Data, ".data", data_bytes, 16);
    let (_, bss) = add(&mut b, SectionKind::Bss, ".bss", Vec::new(), 8192);
    b.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: text_va,
        size: CODE_LEN as u64,
        type_id: 0,
        version: 0,
    });
    let getpid = b.add_import(Import {
        name: "getpid",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    let reloc = |offset, kind, import, addend| Reloc {
        offset,
        kind,
        import,
        addend,
    };
    b.add_reloc(reloc(relro, RelocKind::Relative64, None, data as i64));
    b.add_reloc(reloc(relro + 8, RelocKind::Abs64, Some(getpid), 0));
    b.add_reloc(reloc(
        data + 8,
        RelocKind::Relative64,
        None,
        rodata as i64 + 4,
    ));
    let bytes = b.write().unwrap();
    (
        bytes,
        Layout {
            rodata,
            relro,
            data,
            bss,
        },
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every line of `/proc/self/maps`: (start, end, permissions, file offset, path).
fn process_maps() -> Vec<(usize, usize, String, u64, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, stop) = fields.next()?.split_once('-')?;
            let (start, stop) = (
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(stop, 16).ok()?,
            );
            let perms = fields.next()?.to_owned();
            let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
            let path = fields.nth(2).unwrap_or("").to_owned();
            Some((start, stop, perms, offset, path))
        })
        .collect()
}

/// The mappings inside the module's image: (start, end, permissions, path).
fn mappings(module: &Module) -> Vec<(usize, usize, String, String)> {
    let (base, end) = (module.base(), module.base() + module.image_len());
    process_maps()
        .into_iter()
        .filter(|&(start, stop, ..)| start < end && stop > base)
        .map(|(start, stop, perms, _, path)| (start, stop, perms, path))
        .collect()
}

fn read_u64(module: &Module, offset: u64) -> u64 {
    // SAFETY: the tests read only offsets inside readable sections of the module's image.
    unsafe { std::ptr::read_unaligned((module.base() + offset as usize) as *const u64) }
}

fn read_bytes(module: &Module, offset: u64, len: usize) -> Vec<u8> {
    // SAFETY: as above.
    unsafe { std::slice::from_raw_parts((module.base() + offset as usize) as *const u8, len) }
        .to_vec()
}

fn answer(module: &Module) -> i32 {
    // SAFETY: `answer` is `mov eax, imm32; ret`.
    let f = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
    f()
}

/// Everything a loaded test module must hold, however it was loaded.
fn check_contents(module: &Module, layout: &Layout, bytes: &[u8]) {
    let parsed = smf_format::Module::parse(bytes).unwrap();
    let rodata = parsed
        .loaded_sections()
        .find(|s| s.kind == SectionKind::RoData)
        .unwrap();
    assert_eq!(read_bytes(module, layout.rodata, 5000), rodata.data);
    assert_eq!(
        read_bytes(module, layout.rodata + 5000, 8192 - 5000),
        vec![0; 8192 - 5000],
        "the rest of the last page reads as zeros"
    );
    assert_eq!(
        read_u64(module, layout.relro),
        (module.base() as u64) + layout.data
    );
    // SAFETY: only the address is taken.
    let getpid = libc::getpid as *const () as u64;
    assert_eq!(read_u64(module, layout.relro + 8), getpid);
    assert_eq!(read_u64(module, layout.data), 0x1234_5678);
    assert_eq!(
        read_u64(module, layout.data + 8),
        module.base() as u64 + layout.rodata + 4
    );
    assert_eq!(read_bytes(module, layout.bss, 8192), vec![0; 8192]);
    assert_eq!(answer(module), 42);
    for (start, end, perms, _) in mappings(module) {
        assert!(
            !(perms.contains('w') && perms.contains('x')),
            "{start:#x}..{end:#x} is {perms}"
        );
    }
}

#[test]
fn payloads_are_mapped_from_the_file_and_only_relocated_pages_are_copied() {
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, layout) = module(RETURN_42, false);
    let path = write(dir.path(), "m.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);

    let maps = mappings(&module);
    let at = |offset: u64| {
        let address = module.base() + offset as usize;
        maps.iter()
            .find(|(start, end, _, _)| (*start..*end).contains(&address))
            .cloned()
            .unwrap()
    };
    let path_text = path.display().to_string();
    // Code and read-only data are the file's pages, private, with their final protection.
    let (_, _, perms, file) = at(0);
    assert_eq!(
        (perms.as_str(), file.as_str()),
        ("r-xp", path_text.as_str())
    );
    let (_, _, perms, file) = at(layout.rodata);
    assert_eq!(
        (perms.as_str(), file.as_str()),
        ("r--p", path_text.as_str())
    );
    // Relocated pages: still file mappings (private copies made by the kernel), read-only
    // again for relro, writable for data.
    let (_, _, perms, _) = at(layout.relro);
    assert_eq!(perms, "r--p");
    let (_, _, perms, _) = at(layout.data);
    assert_eq!(perms, "rw-p");
    // Bss is the reservation's anonymous memory.
    let (_, _, perms, file) = at(layout.bss);
    assert_eq!((perms.as_str(), file.as_str()), ("rw-p", ""));
    // The file itself is untouched by relocation.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// `.rodata`'s index, and the file offset just past its payload, in `bytes`.
fn rodata_end(bytes: &[u8]) -> (usize, usize) {
    let parsed = smf_format::Module::parse(bytes).unwrap();
    let rodata = parsed
        .loaded_sections()
        .find(|s| s.kind == SectionKind::RoData)
        .unwrap();
    (
        rodata.index as usize,
        (rodata.file_offset + rodata.file_size) as usize,
    )
}

/// Writes the module hash of `bytes` into its header.
fn rehash(bytes: &mut [u8]) {
    let hash = compute_module_hash(bytes).unwrap();
    bytes[0x30..0x50].copy_from_slice(&hash);
}

#[test]
fn other_bytes_after_a_payload_inside_its_section_are_not_mapped_into_the_image() {
    // A reader accepts bytes no payload holds; the image must still read zeros where a
    // section's `mem_size` goes past its payload. Make `.rodata` end at its page end (its
    // `mem_size`, the u64 at 0x20 of its section entry), put other bytes in the file right
    // after its payload, and fix the module hash.
    let (mut bytes, layout) = module(RETURN_42, false);
    let (index, after) = rodata_end(&bytes);
    let table = u64::from_le_bytes(bytes[0x10..0x18].try_into().unwrap()) as usize;
    let entry = table + index * size_of::<smf_format::raw::SectionHeader>();
    bytes[entry + 0x20..entry + 0x28].copy_from_slice(&8192u64.to_le_bytes());
    bytes[after..after + 100].fill(0xee);
    rehash(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tail.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);
}

#[test]
fn bytes_past_a_section_in_its_last_page_are_the_file_s_as_for_a_shared_library() {
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    // Past `mem_size` the page belongs to no section: it is mapped as the file holds it,
    // as the system loader maps a segment's last page, and the section is still mapped
    // from the file.
    let (mut bytes, layout) = module(RETURN_42, false);
    let (_, after) = rodata_end(&bytes);
    bytes[after..after + 100].fill(0xee);
    rehash(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "past.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    assert_eq!(answer(&module), 42);
    assert_eq!(
        read_bytes(&module, layout.rodata, 5000),
        bytes[after - 5000..after]
    );
    assert_eq!(
        read_bytes(&module, layout.rodata + 5000, 100),
        vec![0xee; 100]
    );
    let rodata = module.base() + layout.rodata as usize;
    let maps = mappings(&module);
    let (_, _, perms, file) = maps
        .iter()
        .find(|(start, end, _, _)| (*start..*end).contains(&rodata))
        .unwrap();
    assert_eq!(
        (perms.as_str(), file.as_str()),
        ("r--p", path.display().to_string().as_str())
    );
}

#[test]
fn map_file_off_copies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, layout) = module(RETURN_42, false);
    let path = write(dir.path(), "copied.smf", &bytes);
    let options = LoadOptions::default().with_map_file(false);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &options, None) }.unwrap();
    check_contents(&module, &layout, &bytes);
    assert!(
        mappings(&module)
            .iter()
            .all(|(_, _, _, file)| file.is_empty()),
        "{:?}",
        mappings(&module)
    );
}

#[test]
fn a_reloadable_module_is_read_so_its_file_can_be_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, layout) = module(RETURN_42, true);
    let path = write(dir.path(), "r.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);
    assert!(
        mappings(&module)
            .iter()
            .all(|(_, _, _, file)| file.is_empty())
    );
    // What a rebuild does to the file (std::fs::write truncates and writes in place): the
    // loaded version keeps its code.
    let (next, _) = module_with(RETURN_7);
    std::fs::write(&path, next).unwrap();
    assert_eq!(answer(&module), 42);
}

fn module_with(code: [u8; CODE_LEN]) -> (Vec<u8>, Layout) {
    module(code, true)
}

#[test]
fn pages_between_relocated_words_are_neither_copied_nor_allocated() {
    // A data section of 1 MiB, its first page in the file, relocated at its two ends (one
    // packed relocation each): the two pages written are copied or allocated, and the
    // megabyte between them stays untouched.
    const SIZE: u64 = 0x10_0000;
    let mut builder = ModuleBuilder::new();
    builder.arch = common::HOST;
    let mut layout = ImageLayout::new();
    let data = layout.place(SIZE).unwrap();
    let mut payload = vec![0u8; 0x1000];
    payload[..8].copy_from_slice(&0x10u64.to_le_bytes());
    builder.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: data,
        mem_size: SIZE,
        align: 8,
        data: payload,
    });
    builder.add_relative(data);
    builder.add_relative(data + SIZE - 8);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "sparse.smf", &builder.write().unwrap());
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    let base = module.base() as u64;
    assert_eq!(read_u64(&module, data), base + 0x10);
    assert_eq!(
        read_u64(&module, data + SIZE - 8),
        base,
        "a word past the file reads 0"
    );

    let pages = (SIZE / 4096) as usize;
    let mut resident = vec![0u8; pages];
    // SAFETY: the range is the module's data section, mapped for as long as `module` lives;
    // mincore only reports which of its pages are in memory.
    let rc = unsafe {
        libc::mincore(
            (module.base() + data as usize) as *mut libc::c_void,
            SIZE as usize,
            resident.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let in_memory: Vec<usize> = (0..pages).filter(|&p| resident[p] & 1 != 0).collect();
    assert_eq!(in_memory, [0, pages - 1]);
}

/// The parts of `path`'s mappings outside the module's image (what the loader keeps of the
/// file to read its tables): (start, end, permissions, file offset). A mapping that runs on
/// into the image is cut at its start: the kernel lists adjacent mappings of consecutive
/// file pages with the same permissions as one, which the file's head and the image's first
/// pages are under qemu's user-mode emulator (it maps the guest's code without execute
/// permission).
fn file_view(module: &Module, path: &Path) -> Vec<(usize, usize, String, u64)> {
    let (base, end) = (module.base(), module.base() + module.image_len());
    let path = path.display().to_string();
    let mut parts = Vec::new();
    for (start, stop, perms, offset, file) in process_maps() {
        if file != path {
            continue;
        }
        if start < base {
            parts.push((start, stop.min(base), perms.clone(), offset));
        }
        if stop > end {
            let from = start.max(end);
            parts.push((from, stop, perms, offset + (from - start) as u64));
        }
    }
    parts
}

#[test]
fn only_the_header_and_tables_stay_mapped_beside_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, layout) = module(RETURN_42, false);
    let path = write(dir.path(), "head.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);
    let head = head_len(&bytes).unwrap() as usize;
    assert_eq!(head, 4096, "the test module's tables fit in its first page");
    let view = file_view(&module, &path);
    assert_eq!(view.len(), 1, "{view:?}");
    let (start, end, perms, offset) = &view[0];
    assert_eq!((end - start, perms.as_str(), *offset), (head, "r--p", 0));
}

#[test]
fn a_file_with_a_table_after_the_payloads_keeps_a_view_of_all_of_it() {
    // Another writer may put a table last; the loader then reads the tables from a view of
    // the whole file, and maps the payloads from the file as before.
    let (mut bytes, layout) = module(RETURN_42, false);
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    let strtab = parsed.table_section(SectionKind::StrTab).unwrap();
    let (index, range) = (
        strtab.index as usize,
        strtab.file_offset as usize..(strtab.file_offset + strtab.file_size) as usize,
    );
    let table = strtab.data.to_vec();
    drop(parsed);
    let offset = bytes.len().next_multiple_of(8);
    bytes.resize(offset, 0);
    bytes.extend_from_slice(&table);
    bytes[range].fill(0);
    // The section table's offset is the header's u64 at 0x10; an entry's file offset is its
    // u64 at 8 (docs/FORMAT.md).
    let table = u64::from_le_bytes(bytes[0x10..0x18].try_into().unwrap()) as usize;
    let at = table + index * size_of::<smf_format::raw::SectionHeader>() + 8;
    bytes[at..at + 8].copy_from_slice(&(offset as u64).to_le_bytes());
    let hash = compute_module_hash(&bytes).unwrap();
    bytes[0x30..0x50].copy_from_slice(&hash);
    assert_eq!(head_len(&bytes), None);

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "last.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);
    let mapped: usize = file_view(&module, &path)
        .iter()
        .map(|(start, end, _, _)| end - start)
        .sum();
    assert_eq!(mapped, bytes.len().next_multiple_of(4096));
    let code = mappings(&module)[0].clone();
    assert_eq!(
        (code.2.as_str(), code.3),
        ("r-xp", path.display().to_string())
    );
}

#[test]
fn bytes_after_the_last_payload_stay_out_of_the_image() {
    // File bytes past the last payload's page cannot become part of the image: the payloads
    // are then mapped from the file into a reservation of the image's size.
    let (mut bytes, layout) = module(RETURN_42, false);
    bytes.extend(std::iter::repeat_n(0xee, 9000));
    let hash = compute_module_hash(&bytes).unwrap();
    bytes[0x30..0x50].copy_from_slice(&hash);
    assert!(head_len(&bytes).is_some());
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "trailing.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    check_contents(&module, &layout, &bytes);
    let view: usize = file_view(&module, &path)
        .iter()
        .map(|(start, end, _, _)| end - start)
        .sum();
    assert_eq!(view, 4096, "the view is still the head alone");
    let code = mappings(&module)[0].clone();
    assert_eq!(
        (code.2.as_str(), code.3),
        ("r-xp", path.display().to_string())
    );
}

#[test]
fn without_zero_pages_the_image_is_the_rest_of_the_mapping_of_the_head() {
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    // Code and data only, each filling its pages from the file: the file is mapped once, and
    // the image starts right after the head.
    let mut builder = ModuleBuilder::new();
    builder.arch = common::HOST;
    let mut layout = ImageLayout::new();
    let text = layout.place(6).unwrap();
    let code = builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: text,
        mem_size: CODE_LEN as u64,
        align: 16,
        data: RETURN_42.to_vec(),
    });
    let data = layout.place(16).unwrap();
    builder.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: data,
        mem_size: 16,
        align: 8,
        data: vec![0; 16],
    });
    builder.add_relative(data + 8);
    builder.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(code),
        value: text,
        size: CODE_LEN as u64,
        type_id: 0,
        version: 0,
    });
    let bytes = builder.write().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "once.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&path, &LoadOptions::default(), None) }.unwrap();
    assert_eq!(answer(&module), 42);
    assert_eq!(read_u64(&module, data + 8), module.base() as u64);
    let view = file_view(&module, &path);
    assert_eq!(view.len(), 1, "{view:?}");
    assert_eq!(view[0].1, module.base(), "the image follows the head");
    let maps = mappings(&module);
    assert_eq!(
        maps.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(),
        ["r-xp", "rw-p"]
    );
}

#[test]
fn an_empty_table_past_the_head_loads_mapped_as_it_loads_copied() {
    // One packed relative relocation gives a relr table; make it empty and point it at the
    // end of the file (FORMAT.md asks only that file ranges lie inside the file).
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = Platform::Linux;
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(16).unwrap();
    b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr,
        mem_size: 16,
        align: 8,
        data: vec![1; 16],
    });
    b.add_relative(vaddr);
    let mut bytes = b.write().unwrap();
    let table = u64::from_le_bytes(bytes[0x10..0x18].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(bytes[0x0c..0x10].try_into().unwrap()) as usize;
    let entry = (0..count)
        .map(|i| table + i * 64)
        .find(|&e| u32::from_le_bytes(bytes[e..e + 4].try_into().unwrap()) == 19)
        .expect("a relr table");
    let end = bytes.len() as u64;
    bytes[entry + 8..entry + 16].copy_from_slice(&end.to_le_bytes());
    bytes[entry + 16..entry + 24].copy_from_slice(&0u64.to_le_bytes());
    rehash(&mut bytes);

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty-relr.smf", &bytes);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let copied = unsafe { load(&path, &LoadOptions::default().with_map_file(false), None) };
    assert!(copied.is_ok(), "{:?}", copied.err());
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let mapped = unsafe { load(&path, &LoadOptions::default(), None) };
    assert!(mapped.is_ok(), "{:?}", mapped.err());

    let whole = smf_format::Module::parse(&bytes);
    assert!(whole.is_ok(), "{whole:?}");
    let head = head_len(&bytes).expect("still the writer's layout") as usize;
    let part = smf_format::Module::parse_head(&bytes[..head], end, &Limits::default());
    assert!(part.is_ok(), "parse accepts, parse_head: {part:?}");
}

#[test]
fn a_reloadable_module_is_mapped_when_asked_and_each_reload_maps_the_new_file() {
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    for verify_hash in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, layout) = module(RETURN_42, true);
        let path = write(dir.path(), "r.smf", &bytes);
        let options = LoadOptions::default()
            .with_map_reloadable(true)
            .with_verify_hash(verify_hash);
        let registry = simple_loader::Registry::with_options(options);
        // SAFETY: a module this test built from its own sources, replaced only by renames.
        let first = unsafe { registry.load(&path) }.unwrap();
        check_contents(&first, &layout, &bytes);
        let code_file = |module: &Module| {
            let code = module.base();
            mappings(module)
                .into_iter()
                .find(|(start, end, _, _)| (*start..*end).contains(&code))
                .map(|(_, _, perms, file)| (perms, file))
                .unwrap()
        };
        let path_text = std::fs::canonicalize(&path).unwrap().display().to_string();
        assert_eq!(code_file(&first), ("r-xp".to_owned(), path_text.clone()));

        // The same content again: nothing to do, told by the module hash.
        replace(&path, &bytes);
        // SAFETY: as above.
        let same = unsafe { registry.reload(&path) }.unwrap();
        assert!(same.unchanged, "verify_hash {verify_hash}");

        let (next, _) = module_with(RETURN_7);
        replace(&path, &next);
        // SAFETY: as above.
        let report = unsafe { registry.reload(&path) }.unwrap();
        assert!(!report.unchanged);
        assert_eq!(report.changed, ["answer"]);
        assert_eq!(answer(&report.module), 7);
        assert_eq!(code_file(&report.module).0, "r-xp");
        assert!(code_file(&report.module).1.starts_with(&path_text));
        // The first version maps the file it was loaded from, which the rename left intact.
        assert_eq!(answer(&first), 42);

        // A damaged file: refused with the check on, and the running version stays.
        if verify_hash {
            let mut damaged = bytes.clone();
            let (_, end) = rodata_end(&damaged);
            damaged[end - 1] ^= 1;
            replace(&path, &damaged);
            // SAFETY: as above.
            let error = unsafe { registry.reload(&path) }.unwrap_err();
            assert!(
                matches!(
                    error,
                    simple_loader::LoadError::Format {
                        source: smf_format::Error::HashMismatch { .. },
                        ..
                    }
                ),
                "{error:?}"
            );
            assert_eq!(answer(&report.module), 7);
        }
    }
}
