//! Loader tests on modules written with the format crate's builder: memory layout,
//! protections, relocations, import resolution and the errors of each failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use simple_loader::{LoadError, LoadOptions, Registry, load};
use smf_format::*;

mod common;
use common::{HOST, OTHER, load_word, return_constant};

const RETURN_42: [u8; common::CODE_LEN] = return_constant(42);

/// The tests of this binary run on parallel threads. The one that counts the process's
/// mappings and resident memory runs alone: another test loading a module meanwhile would
/// add mappings it did not make.
static MAPPINGS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MAPPINGS.read().unwrap_or_else(PoisonError::into_inner)
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    MAPPINGS.write().unwrap_or_else(PoisonError::into_inner)
}

/// A library with: `answer` (code), `counter` (data, 8 bytes), `self_ptr` (relro slot
/// pointing at `counter`), `host_ptr` (relro slot holding the import `host_value` + 8),
/// `weak_ptr` (data slot holding the weak import `absent_thing`), a bss array, and rodata.
fn library(arch: Arch, strong_import: &str) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = arch;
    b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    let mut layout = ImageLayout::new();
    let mut add = |b: &mut ModuleBuilder, kind, name, data: Vec<u8>, mem: u64| {
        let vaddr = layout.place(mem).unwrap();
        (
            b.add_section(LoadedSection {
                kind,
                name,
                vaddr,
                mem_size: mem,
                align: 16,
                data,
            }),
            vaddr,
        )
    };
    let (text, text_va) = add(
        &mut b,
        SectionKind::Code,
        ".text",
        RETURN_42.to_vec(),
        RETURN_42.len() as u64,
    );
    let (_, ro_va) = add(
        &mut b,
        SectionKind::RoData,
        ".rodata",
        b"hello\0".to_vec(),
        6,
    );
    let (relro, relro_va) = add(&mut b, SectionKind::RelRo, ".data.rel.ro", vec![0; 16], 16);
    let (data, data_va) = add(
        &mut b,
        SectionKind::Data,
        ".data",
        7u64.to_le_bytes().into_iter().chain([0; 8]).collect(),
        16,
    );
    let (bss, bss_va) = add(&mut b, SectionKind::Bss, ".bss", Vec::new(), 1 << 20);
    let sym = |name, kind, section, value, size| Symbol {
        name,
        kind,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(section),
        value,
        size,
        type_id: 0,
        version: 1,
    };
    b.add_symbol(sym(
        "answer",
        SymbolKind::Function,
        text,
        text_va,
        RETURN_42.len() as u64,
    ));
    b.add_symbol(sym("self_ptr", SymbolKind::Data, relro, relro_va, 8));
    b.add_symbol(sym("host_ptr", SymbolKind::Data, relro, relro_va + 8, 8));
    b.add_symbol(sym("counter", SymbolKind::Data, data, data_va, 8));
    b.add_symbol(sym("weak_ptr", SymbolKind::Data, data, data_va + 8, 8));
    b.add_symbol(sym("big", SymbolKind::Data, bss, bss_va, 1 << 20));
    let host = b.add_import(Import {
        name: strong_import,
        kind: ImportKind::Data,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    let weak = b.add_import(Import {
        name: "absent_thing",
        kind: ImportKind::Any,
        binding: Binding::Weak,
        type_id: 0,
        version: 0,
    });
    b.add_reloc(Reloc {
        offset: relro_va,
        kind: RelocKind::Relative64,
        import: None,
        addend: data_va as i64,
    });
    b.add_reloc(Reloc {
        offset: relro_va + 8,
        kind: RelocKind::Abs64,
        import: Some(host),
        addend: 8,
    });
    b.add_reloc(Reloc {
        offset: data_va + 8,
        kind: RelocKind::Abs64,
        import: Some(weak),
        addend: 0,
    });
    let _ = ro_va;
    b.write().unwrap()
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

static HOST_VALUE: [u64; 4] = [1, 2, 3, 4];

fn registry_with_host() -> Registry {
    let registry = Registry::new();
    // SAFETY: HOST_VALUE is a static, valid for the whole test.
    unsafe { registry.define("host_value", HOST_VALUE.as_ptr() as usize) };
    registry
}

#[test]
fn relocations_resolve_against_base_host_and_weak_imports() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();

    // SAFETY: `answer` is `int answer(void)`.
    let answer = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
    assert_eq!(answer(), 42);

    let counter = module.data("counter").unwrap();
    let read = |name: &str| {
        let p = module.data(name).unwrap().as_ptr::<u64>().unwrap();
        // SAFETY: each symbol is 8 readable bytes inside the mapped image.
        unsafe { p.read() }
    };
    assert_eq!(read("counter"), 7);
    assert_eq!(
        read("self_ptr"),
        counter.address() as u64,
        "Relative64 must hold base + addend"
    );
    assert_eq!(
        read("host_ptr"),
        HOST_VALUE.as_ptr() as u64 + 8,
        "Abs64 must hold the host definition + addend"
    );
    assert_eq!(
        read("weak_ptr"),
        0,
        "an unresolved weak import resolves to 0"
    );
}

#[test]
#[cfg_attr(windows, ignore = "reads /proc/self/maps")]
fn sections_get_their_protection_and_no_page_is_writable_and_executable() {
    let _shared = shared();
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();
    let base = module.base();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let perms_at = |address: usize| -> String {
        maps.lines()
            .find_map(|line| {
                let (range, rest) = line.split_once(' ')?;
                let (lo, hi) = range.split_once('-')?;
                let (lo, hi) = (
                    usize::from_str_radix(lo, 16).ok()?,
                    usize::from_str_radix(hi, 16).ok()?,
                );
                (lo <= address && address < hi).then(|| rest[..4].to_owned())
            })
            .unwrap_or_else(|| panic!("{address:#x} is not mapped"))
    };
    let file = module.file();
    for section in file.loaded_sections() {
        let expected = match section.kind {
            SectionKind::Code => "r-xp",
            SectionKind::Data | SectionKind::Bss => "rw-p",
            _ => "r--p",
        };
        assert_eq!(
            perms_at(base + section.vaddr as usize),
            expected,
            "{} section",
            section.kind
        );
    }
    for line in maps.lines() {
        assert!(
            !line.split(' ').nth(1).unwrap().starts_with("rwx"),
            "writable and executable mapping: {line}"
        );
    }
}

#[test]
fn unresolved_strong_import_names_the_symbol() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(
        dir.path(),
        "lib.smf",
        &library(HOST, "no_such_symbol_anywhere"),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { Registry::new().load(&path) }.unwrap_err();
    assert!(matches!(error, LoadError::UnresolvedImport { .. }));
    let message = error.to_string();
    assert!(
        message.contains("no_such_symbol_anywhere") && message.contains("lib.smf"),
        "{message}"
    );
}

#[test]
fn wrong_architecture_is_refused() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "other.smf", &library(OTHER, "host_value"));
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let message = unsafe { load(&path, &LoadOptions::default(), None) }
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("other.smf") && message.contains(&format!("built for {OTHER}")),
        "{message}"
    );
}

#[test]
fn corrupted_content_fails_the_hash_check_when_enabled() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = library(HOST, "host_value");
    let module = Module::parse(&bytes).unwrap();
    let ro = module
        .loaded_sections()
        .find(|s| s.kind == SectionKind::RoData)
        .unwrap()
        .file_offset as usize;
    bytes[ro] = b'j';
    let path = write_temp(dir.path(), "bad.smf", &bytes);
    let registry = Registry::with_options(LoadOptions::default().with_verify_hash(true));
    // SAFETY: HOST_VALUE is a static.
    unsafe { registry.define("host_value", HOST_VALUE.as_ptr() as usize) };
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { registry.load(&path) }.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("bad.smf") && message.contains("module hash mismatch"),
        "{message}"
    );

    // Off by default: the file is not read whole, and the changed byte goes unnoticed.
    let lenient = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert!(unsafe { lenient.load(&path) }.is_ok());
}

#[test]
fn handles_check_kind_and_size() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();
    // SAFETY: these calls fail before any handle is made.
    unsafe {
        let e = module
            .get::<extern "C" fn()>("counter")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`counter` is a data symbol, not a function"),
            "{e}"
        );
        let e = module.get::<u32>("answer").unwrap_err().to_string();
        assert!(e.contains("pointer-sized"), "{e}");
        let e = module
            .get::<extern "C" fn()>("missing")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no exported symbol `missing`"), "{e}");
    }
    let e = module.data("answer").unwrap_err().to_string();
    assert!(e.contains("is a func symbol, not a data"), "{e}");
    assert!(
        module
            .data("counter")
            .unwrap()
            .as_ptr::<[u64; 2]>()
            .is_none(),
        "a 16-byte view of an 8-byte symbol"
    );
}

#[test]
fn concurrent_loads_of_one_path_load_once() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = Arc::new(registry_with_host());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (registry, path) = (Arc::clone(&registry), path.clone());
            // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
            std::thread::spawn(move || unsafe { registry.load(&path) }.unwrap())
        })
        .collect();
    let modules: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(modules.iter().all(|m| Arc::ptr_eq(m, &modules[0])));
    assert_eq!(registry.modules().len(), 1);
    // A different spelling of the same path is the same module.
    let dotted = dir.path().join(".").join("lib.smf");
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert!(Arc::ptr_eq(
        &unsafe { registry.load(&dotted) }.unwrap(),
        &modules[0]
    ));
}

#[test]
fn unload_keeps_memory_until_the_last_handle_and_reload_bumps_the_version() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let first = unsafe { registry.load(&path) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let same = unsafe { registry.reload(&path) }.unwrap();
    assert!(same.unchanged && same.version == 1, "same content: a no-op");
    // Same code, another source hash: a new version.
    let mut changed = library(HOST, "host_value");
    changed[0x28] ^= 1;
    let hash = compute_module_hash(&changed).unwrap();
    changed[smf_format::raw::MODULE_HASH_RANGE].copy_from_slice(&hash);
    std::fs::write(&path, &changed).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(!report.unchanged);
    let second = report.module;
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(
        report.kept,
        ["counter", "weak_ptr", "big"],
        "data and bss symbols carried over"
    );
    assert_eq!(registry.modules()[0].version, 2);
    // The old version is still usable through its Arc.
    // SAFETY: `answer` is `int answer(void)`.
    assert_eq!(
        unsafe { first.get::<extern "C" fn() -> i32>("answer") }.unwrap()(),
        42
    );
    assert!(registry.unload(&path).unwrap());
    assert!(!registry.unload(&path).unwrap());
    assert!(registry.modules().is_empty());
    // SAFETY: as above.
    assert_eq!(
        unsafe { second.get::<extern "C" fn() -> i32>("answer") }.unwrap()(),
        42
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = unsafe { registry.reload(&path) }.unwrap_err().to_string();
    assert!(e.contains("no module loaded from this path"), "{e}");
}

/// Resident bytes and number of mappings of this process.
fn footprint() -> (u64, usize) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident_pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        resident_pages * 4096,
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count(),
    )
}

#[test]
#[cfg_attr(windows, ignore = "reads /proc/self/statm and /proc/self/maps")]
fn ten_thousand_reloads_do_not_grow_memory() {
    let _alone = alone();
    if common::skip_under_emulator(
        "qemu-user's resident memory grows with each new page of code it translates",
    ) {
        return;
    }
    // In memory if possible: rewriting a file 10,000 times on ext4 waits for the disk.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let v1 = library(HOST, "host_value");
    let mut v2 = v1.clone();
    v2[0x28] ^= 1; // another source hash: a different version with the same code
    let hash = compute_module_hash(&v2).unwrap();
    v2[smf_format::raw::MODULE_HASH_RANGE].copy_from_slice(&hash);
    let path = write_temp(dir.path(), "lib.smf", &v1);
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: `int answer(void)`.
    let answer = unsafe { registry.current::<extern "C" fn() -> i32>(&path, "answer") }.unwrap();
    let reload = |i: usize| {
        std::fs::write(&path, if i % 2 == 0 { &v2 } else { &v1 }).unwrap();
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        let report = unsafe { registry.reload(&path) }.unwrap();
        assert!(!report.unchanged);
    };
    for i in 0..100 {
        reload(i);
    }
    let before = footprint();
    for i in 100..10_100 {
        reload(i);
        if i % 1000 == 0 {
            assert_eq!((*answer.pin())(), 42);
        }
    }
    registry.collect();
    let after = footprint();
    assert_eq!(registry.modules()[0].version, 10_101);
    assert!(
        after.1 <= before.1 + 16,
        "mappings grew from {} to {}",
        before.1,
        after.1
    );
    assert!(
        after.0 <= before.0 + (16 << 20),
        "resident memory grew from {} to {} bytes",
        before.0,
        after.0
    );
}

/// A reloadable module exporting `answer` (returns 42) of type `ty` (FORMAT.md's type syntax).
fn typed_answer(ty: &str, source_hash: u64) -> Vec<u8> {
    let mut types = smf_format::typeinfo::TypeTableBuilder::new();
    let type_id = smf_format::typeinfo::parse_type(&mut types, ty).unwrap();
    let mut b = ModuleBuilder::new();
    b.set_types(&types);
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    b.source_hash = source_hash;
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: RETURN_42.len() as u64,
        align: 16,
        data: RETURN_42.to_vec(),
    });
    b.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: RETURN_42.len() as u64,
        type_id,
        version: 1,
    });
    b.write().unwrap()
}

#[test]
fn a_reload_that_changes_the_type_of_a_linked_function_is_refused() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "typed.smf", &typed_answer("fn() -> i32", 1));
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // Nothing is linked to `answer` yet: its type may change.
    std::fs::write(&path, typed_answer("fn() -> i64", 2)).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert_eq!(unsafe { registry.reload(&path) }.unwrap().version, 2);
    // SAFETY: `int answer(void)`.
    let handle = unsafe { registry.current::<extern "C" fn() -> i32>(&path, "answer") }.unwrap();
    std::fs::write(&path, typed_answer("fn(i32) -> i64", 3)).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let e = unsafe { registry.reload(&path) }.unwrap_err().to_string();
    assert!(
        e.contains("typed.smf")
            && e.contains("`answer`")
            && e.contains("its type changed from fn() -> i64 to fn(i32) -> i64"),
        "{e}"
    );
    assert_eq!(registry.modules()[0].version, 2, "nothing switched");
    assert_eq!((*handle.pin())(), 42);
    // The same type with another body goes in.
    std::fs::write(&path, typed_answer("fn() -> i64", 4)).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert_eq!(unsafe { registry.reload(&path) }.unwrap().version, 3);
}

#[test]
fn a_type_change_is_reported_when_the_options_say_so() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "typed.smf", &typed_answer("fn() -> i32", 1));
    let registry = Registry::with_options(
        simple_loader::LoadOptions::default().with_type_changes(simple_loader::TypeChanges::Report),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: `int answer(void)`.
    let handle = unsafe { registry.current::<extern "C" fn() -> i32>(&path, "answer") }.unwrap();
    std::fs::write(&path, typed_answer("fn(*void) -> i32", 2)).unwrap();
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.version, 2);
    assert_eq!(report.type_changes.len(), 1, "{report}");
    assert!(
        report.to_string().contains(
            "type changed: answer: its type changed from fn() -> i32 to fn(*void) -> i32"
        ),
        "{report}"
    );
    assert_eq!((*handle.pin())(), 42);
    // Callers are linked to the new type now: the same type again is no change.
    std::fs::write(&path, typed_answer("fn(*void) -> i32", 3)).unwrap();
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(report.type_changes.is_empty(), "{report}");
}

#[test]
fn get_checked_compares_the_recorded_type_with_the_callers() {
    let _shared = shared();
    let bytes = typed_answer("fn() -> i32", 1);
    // SAFETY: a module this test built from its own sources.
    let module = unsafe {
        simple_loader::load(
            simple_loader::ModuleSource::Bytes {
                bytes,
                name: "typed".into(),
            },
            &Default::default(),
            None,
        )
    }
    .unwrap();
    // SAFETY: `int answer(void)`.
    let answer = unsafe { module.get_checked::<extern "C" fn() -> i32>("answer") }.unwrap();
    assert_eq!(answer(), 42);
    // SAFETY: refused before it could be called.
    let e = unsafe { module.get_checked::<extern "C" fn(i64) -> i32>("answer") }
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`answer` is not of the type expected: expected fn(i64) -> i32, the module has fn() -> i32"),
        "{e}"
    );
    assert_eq!(module.type_of("answer").unwrap().to_string(), "fn() -> i32");
}

/// A module whose only import, `name` of kind `kind`, fills a pointer in its data.
fn importer(name: &str, kind: ImportKind) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    let vaddr = ImageLayout::new().place(8).unwrap();
    let data = b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr,
        mem_size: 8,
        align: 8,
        data: vec![0; 8],
    });
    b.add_symbol(Symbol {
        name: "pointer",
        kind: SymbolKind::Data,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(data),
        value: vaddr,
        size: 8,
        type_id: 0,
        version: 1,
    });
    let import = b.add_import(Import {
        name,
        kind,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    b.add_reloc(Reloc {
        offset: vaddr,
        kind: RelocKind::Abs64,
        import: Some(import),
        addend: 0,
    });
    b.write().unwrap()
}

#[test]
#[cfg_attr(windows, ignore = "checks ELF symbol types of libc.so")]
fn native_imports_must_be_what_the_dynamic_linker_says() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let load_importer = |name: &str, kind: ImportKind| {
        let path = write_temp(
            dir.path(),
            &format!("{name}-{kind}.smf"),
            &importer(name, kind),
        );
        // SAFETY: the module has no code; it is not rewritten while loaded.
        unsafe { load(&path, &LoadOptions::default(), None) }.map(drop)
    };
    // libc's `environ` is an ELF object: calling it would jump into data.
    let message = load_importer("environ", ImportKind::Function)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`environ`")
            && message.contains("calls it as a function")
            && message.contains("libc.so")
            && message.contains("data symbol"),
        "{message}"
    );
    let message = load_importer("puts", ImportKind::Data)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`puts`") && message.contains("as data") && message.contains("libc.so"),
        "{message}"
    );
    // `strlen` is an IFUNC: the dynamic linker resolves it to an implementation that no
    // dynamic symbol names, in code all the same.
    let message = load_importer("strlen", ImportKind::Data)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`strlen`") && message.contains("as data"),
        "{message}"
    );
    load_importer("strlen", ImportKind::Function).unwrap();
    load_importer("puts", ImportKind::Function).unwrap();
    load_importer("environ", ImportKind::Data).unwrap();
    load_importer("environ", ImportKind::Any).unwrap();
    load_importer("puts", ImportKind::Any).unwrap();
}

/// A module whose `irelative` relocations call a resolver that returns the word at
/// `impl_ptr`, a relro slot holding the address of `answer` through a `relative64`. The
/// `irelative` word comes first in the table (relocations are sorted by offset), so a loader
/// that applied it in table order, before the `relative64`, would store 0.
fn indirect_function_module() -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    let mut layout = ImageLayout::new();
    let text_va = layout.place(0x20).unwrap();
    let relro_va = layout.place(16).unwrap();
    let data_va = layout.place(8).unwrap();
    let mut code = vec![0xcc; 0x20];
    code[..RETURN_42.len()].copy_from_slice(&RETURN_42);
    // resolver at 0x10: returns the word at impl_ptr
    let resolver = load_word(text_va + 0x10, relro_va + 8);
    code[0x10..0x10 + resolver.len()].copy_from_slice(&resolver);
    let section = |kind, name, vaddr, data: Vec<u8>| LoadedSection {
        kind,
        name,
        vaddr,
        mem_size: data.len() as u64,
        align: 16,
        data,
    };
    let text = b.add_section(section(SectionKind::Code, ".text", text_va, code));
    let relro = b.add_section(section(
        SectionKind::RelRo,
        ".data.rel.ro",
        relro_va,
        vec![0; 16],
    ));
    let data = b.add_section(section(SectionKind::Data, ".data", data_va, vec![0; 8]));
    let sym = |name, kind, section, value| Symbol {
        name,
        kind,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(section),
        value,
        size: 8,
        type_id: 0,
        version: 0,
    };
    b.add_symbol(sym("answer", SymbolKind::Function, text, text_va));
    b.add_symbol(sym("chosen_relro", SymbolKind::Data, relro, relro_va));
    b.add_symbol(sym("chosen_data", SymbolKind::Data, data, data_va));
    b.add_reloc(Reloc {
        offset: relro_va + 8,
        kind: RelocKind::Relative64,
        import: None,
        addend: text_va as i64,
    });
    for offset in [relro_va, data_va] {
        b.add_reloc(Reloc {
            offset,
            kind: RelocKind::Irelative,
            import: None,
            addend: (text_va + 0x10) as i64,
        });
    }
    b.write().unwrap()
}

#[test]
fn irelative_words_hold_what_the_resolver_returns_after_the_other_relocations() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let bytes = indirect_function_module();
    let path = write_temp(dir.path(), "ifunc.smf", &bytes);
    for options in [
        LoadOptions::default(),
        LoadOptions::default().with_map_file(false),
    ] {
        // SAFETY: a module this test built; its resolver only reads its own relro.
        let module = unsafe { load(&path, &options, None) }.unwrap();
        let answer = module.export("answer").unwrap().1 as u64;
        for name in ["chosen_relro", "chosen_data"] {
            let p = module.data(name).unwrap().as_ptr::<u64>().unwrap();
            // SAFETY: each symbol is 8 readable bytes inside the mapped image.
            let word = unsafe { p.read() };
            assert_eq!(
                word, answer,
                "{name}: the resolver must run once relocated and return `answer`"
            );
        }
    }
}

#[test]
fn a_registry_unloads_a_module_by_handle() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();
    assert!(registry.resolve("answer").is_some());
    assert!(registry.unload_module(&module));
    assert!(registry.resolve("answer").is_none(), "its exports stay");
    assert!(registry.modules().is_empty());
    assert!(
        !registry.unload_module(&module),
        "unloaded twice by its handle"
    );
    // A module another registry loaded is not one of its own.
    let another = registry_with_host();
    // SAFETY: as above.
    let other = unsafe { another.load(&path) }.unwrap();
    assert!(!registry.unload_module(&other));
    assert!(another.unload_module(&other));
}

#[test]
fn a_registry_unloads_by_its_own_path_without_the_file() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &library(HOST, "host_value"));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();
    let kept = module.path().unwrap().to_owned();
    drop(module);
    // The path the registry reports needs no file system look-up: the file may be gone.
    std::fs::remove_file(&path).unwrap();
    assert!(registry.unload(&kept).unwrap());
    assert!(registry.modules().is_empty());
}

/// A module exporting `answer` at image offset 0, whose source map gives that code the line
/// `f.c:7`. With `broken`, the map's last row (the end of the sequence) lies past the image:
/// validating the map refuses it, but reading it unchecked still answers a lookup.
fn module_with_source_map(broken: bool) -> Vec<u8> {
    let table = |end: u64| {
        let mut map = SourceMapBuilder::new();
        let file = map.file("f.c");
        map.add_sequence(&[(0, file, 7, 0)], end);
        map.encode().unwrap()
    };
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: RETURN_42.len() as u64,
        align: 16,
        data: RETURN_42.to_vec(),
    });
    b.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: RETURN_42.len() as u64,
        type_id: 0,
        version: 0,
    });
    b.set_opaque(SectionKind::SrcMap, table(0x800)).unwrap();
    let mut bytes = b.write().unwrap();
    if broken {
        // Written over the valid table: the writer would refuse it.
        let past = table(0x3000);
        let module = Module::parse(&bytes).unwrap();
        assert!(module.header().image_size < 0x3000);
        let section = module.table_section(SectionKind::SrcMap).unwrap();
        assert_eq!(
            section.data.len(),
            past.len(),
            "the same size, only the end moved"
        );
        let at = section.file_offset as usize;
        drop(module);
        bytes[at..at + past.len()].copy_from_slice(&past);
        bytes = rehash(bytes);
    }
    bytes
}

/// `bytes` with its module hash recomputed.
fn rehash(mut bytes: Vec<u8>) -> Vec<u8> {
    let hash = compute_module_hash(&bytes).unwrap();
    let at = bytes
        .windows(32)
        .position(|w| w == Module::parse(&bytes).unwrap().header().module_hash)
        .unwrap();
    bytes[at..at + 32].copy_from_slice(&hash);
    bytes
}

#[test]
fn a_source_map_is_validated_when_first_read_not_at_every_load() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let good = write_temp(dir.path(), "good.smf", &module_with_source_map(false));
    let broken = write_temp(dir.path(), "broken.smf", &module_with_source_map(true));
    let options = LoadOptions::default();

    // SAFETY: modules this test built from its own sources; the files are never rewritten.
    let module = unsafe { load(&good, &options, None) }.unwrap();
    let location = simple_loader::symbolize(module.base()).unwrap();
    assert_eq!(location.symbol.as_deref(), Some("answer"));
    let source = location.source.expect("the valid map gives the line");
    assert_eq!((source.file.as_str(), source.line), ("f.c", 7));

    // A load does not read the map: a broken one loads, and gives no source lines (it is
    // never read unchecked), the function still named from the symbol table.
    // SAFETY: as above.
    let module = unsafe { load(&broken, &options, None) }.unwrap();
    // SAFETY: `answer` is `int answer(void)`.
    let answer = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
    assert_eq!(answer(), 42);
    let location = simple_loader::symbolize(module.base()).unwrap();
    assert_eq!(location.symbol.as_deref(), Some("answer"));
    assert_eq!(location.source, None, "a broken source map is not read");
    drop(module);

    // The debugger's object is made at load from the map: that load validates it, and
    // refuses the module, naming what is wrong.
    // SAFETY: as above.
    let refused = unsafe { load(&broken, &options.clone().with_debugger(true), None) };
    let error = refused.map(|_| ()).unwrap_err();
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(source) = cause {
        message += &format!(": {source}");
        cause = source.source();
    }
    assert!(
        message.contains("srcmap: row address 0x3000 is past the image"),
        "{message}"
    );
}

#[test]
#[cfg_attr(windows, ignore = "reads /proc/self/maps")]
fn zero_pages_are_made_in_room_mapped_with_the_file_not_by_moving_it() {
    let _shared = shared();
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    // The library without its RELOADABLE flag, so that it is mapped and split as a module
    // normally is: its image has 1 MiB of zero pages past the file.
    let mut bytes = library(HOST, "host_value");
    let flags = 8..12;
    let value =
        u32::from_le_bytes(bytes[flags.clone()].try_into().unwrap()) & !ModuleFlags::RELOADABLE.0;
    bytes[flags].copy_from_slice(&value.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "lib.smf", &rehash(bytes));
    let registry = registry_with_host();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { registry.load(&path) }.unwrap();
    assert!(!module.is_reloadable());
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let range = |line: &str| {
        let (start, end) = line.split_whitespace().next()?.split_once('-')?;
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        ))
    };
    // The head: the mapping of the file from offset 0.
    let head = maps
        .lines()
        .find(|l| {
            l.ends_with(&*path.to_string_lossy()) && l.split_whitespace().nth(2) == Some("00000000")
        })
        .and_then(range)
        .unwrap_or_else(|| panic!("no mapping of the file's head in\n{maps}"));
    assert_eq!(
        module.base(),
        head.1,
        "the image was made where the file was mapped, right after its head"
    );
    let big = module.data("big").unwrap();
    let word = big.as_ptr::<u64>().unwrap();
    // SAFETY: `big` is 1 MiB of writable zero pages inside the mapped image.
    unsafe {
        assert_eq!(word.read(), 0);
        word.write(5);
        assert_eq!(word.read(), 5);
    }
}

/// A reloadable module of exported functions, each `common::CODE_LEN` bytes at its own
/// 16-byte slot: (name, code, fingerprint if it records one).
fn exporting(functions: &[(&str, [u8; common::CODE_LEN], Option<u64>)], hash: u64) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    b.source_hash = hash;
    let mut data = vec![0u8; 16 * functions.len()];
    for (i, (_, body, _)) in functions.iter().enumerate() {
        data[16 * i..16 * i + body.len()].copy_from_slice(body);
    }
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: data.len() as u64,
        align: 16,
        data,
    });
    for (i, &(name, body, fingerprint)) in functions.iter().enumerate() {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(text),
            value: 16 * i as u64,
            size: body.len() as u64,
            type_id: 0,
            version: 0,
        });
        if let Some(fingerprint) = fingerprint {
            b.add_fingerprint(i as u32, fingerprint);
        }
    }
    b.write().unwrap()
}

/// `steady` returns 42, `bytes` is `code` (never called), `marked` returns 42; `fingerprints`
/// gives (name, fingerprint) for those that record one.
fn fingerprinted(code: [u8; common::CODE_LEN], fingerprints: &[(&str, u64)], hash: u64) -> Vec<u8> {
    let fingerprint = |name: &str| fingerprints.iter().find(|(n, _)| *n == name).map(|f| f.1);
    exporting(
        &[
            ("steady", RETURN_42, fingerprint("steady")),
            ("bytes", code, fingerprint("bytes")),
            ("marked", RETURN_42, fingerprint("marked")),
        ],
        hash,
    )
}

/// Exports are matched by name, not by name hash: `costarring` and `liquid`, and `altarage`
/// and `zinke`, have the same FNV-1a hash. Each list of the report is in its version's table
/// order.
#[test]
fn a_reload_matches_exports_by_name_where_their_hashes_collide() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let v1 = exporting(
        &[
            ("costarring", RETURN_42, Some(1)),
            ("declinate", RETURN_42, Some(2)),
            ("altarage", RETURN_42, Some(3)),
            ("gone", RETURN_42, Some(4)),
        ],
        1,
    );
    let v2 = exporting(
        &[
            ("liquid", RETURN_42, Some(5)),
            ("costarring", RETURN_42, Some(1)),
            ("declinate", RETURN_42, Some(22)),
            ("zinke", RETURN_42, Some(3)),
            ("new", RETURN_42, None),
        ],
        2,
    );
    let path = write_temp(dir.path(), "collide.smf", &v1);
    let registry = Registry::new();
    // SAFETY: a reloadable module this test built: read into memory at each load (the
    // default), so writing its file anew while it runs changes nothing it uses.
    unsafe { registry.load(&path) }.unwrap();
    std::fs::write(&path, v2).unwrap();
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.added, ["liquid", "zinke", "new"], "{report}");
    assert_eq!(report.removed, ["altarage", "gone"], "{report}");
    assert_eq!(report.changed, ["declinate"], "{report}");
    // The registry's index of exports follows: every export of the new version is found (at
    // its new place in the table), none that went.
    for name in ["liquid", "costarring", "declinate", "zinke", "new"] {
        assert!(registry.resolve(name).is_some(), "{name}");
    }
    for name in ["altarage", "gone"] {
        assert_eq!(registry.resolve(name), None, "{name}");
    }
}

/// A name another module exports too: the reload updates its own entry of the export index
/// and leaves the other's.
#[test]
fn a_reload_updates_the_export_index_beside_another_provider() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let other = write_temp(
        dir.path(),
        "other.smf",
        &exporting(&[("shared_name", RETURN_42, None)], 7),
    );
    // Mine returns 7 where the other's returns 42.
    let seven = return_constant(7);
    let path = write_temp(
        dir.path(),
        "mine.smf",
        &exporting(
            &[
                ("shared_name", seven, Some(1)),
                ("mine", RETURN_42, Some(2)),
            ],
            1,
        ),
    );
    let registry = Registry::new();
    // SAFETY: reloadable modules this test built: read into memory at each load (the
    // default), so writing their files anew while they run changes nothing they use.
    let first = unsafe { registry.load(&other) }.unwrap();
    // SAFETY: as above.
    unsafe { registry.load(&path) }.unwrap();
    let call = |address: usize| {
        // SAFETY: every function of these modules is `int (void)`, and the registry holds
        // the module `address` is in.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(address) };
        f()
    };
    assert_eq!(call(registry.resolve("shared_name").unwrap()), 42);
    std::fs::write(
        &path,
        exporting(
            &[
                ("mine", RETURN_42, Some(2)),
                ("shared_name", seven, Some(3)),
            ],
            2,
        ),
    )
    .unwrap();
    // SAFETY: as above.
    unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(
        call(registry.resolve("shared_name").unwrap()),
        42,
        "load order first"
    );
    drop(first);
    registry.unload(&other).unwrap();
    let mine = registry
        .resolve("shared_name")
        .expect("the reloaded module's");
    assert_eq!(call(mine), 7);
    assert!(registry.resolve("mine").is_some());
}

#[test]
fn a_reload_compares_fingerprints_where_both_versions_record_them() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let all = |bytes, marked| [("steady", 1), ("bytes", bytes), ("marked", marked)];
    let path = write_temp(
        dir.path(),
        "fingerprinted.smf",
        &fingerprinted(RETURN_42, &all(2, 3), 1),
    );
    let registry = Registry::new();
    // SAFETY: a reloadable module this test built: read into memory at each load (the
    // default), so writing its file anew while it runs changes nothing it uses.
    unsafe { registry.load(&path) }.unwrap();
    // Other bytes under the same fingerprint: the writer vouches that it behaves alike. The
    // same bytes under another fingerprint: changed.
    let mut other = RETURN_42;
    other[0] ^= 0xff;
    std::fs::write(&path, fingerprinted(other, &all(2, 30), 2)).unwrap();
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.changed, ["marked"], "{report}");
    // A version without fingerprints is compared by its bytes.
    std::fs::write(&path, fingerprinted(RETURN_42, &[], 3)).unwrap();
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.changed, ["bytes"], "{report}");
    // SAFETY: `int steady(void)`.
    let steady = unsafe { registry.current::<extern "C" fn() -> i32>(&path, "steady") }.unwrap();
    assert_eq!((*steady.pin())(), 42);
}

/// A reloadable module with `locals` local symbols of one byte each in `.rodata` (after its
/// first 64 bytes, which no symbol covers) and the exported 8-byte `label` in `.data`;
/// `source_hash` tells versions apart.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn many_locals(locals: u64, source_hash: u64) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    b.source_hash = source_hash;
    let mut layout = ImageLayout::new();
    let ro_size = 64 + locals;
    let ro_va = layout.place(ro_size).unwrap();
    let ro = b.add_section(LoadedSection {
        kind: SectionKind::RoData,
        name: ".rodata",
        vaddr: ro_va,
        mem_size: ro_size,
        align: 16,
        data: vec![1; ro_size as usize],
    });
    let data_va = layout.place(8).unwrap();
    let data = b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: data_va,
        mem_size: 8,
        align: 8,
        data: vec![0; 8],
    });
    let names: Vec<String> = (0..locals).map(|i| format!("local_{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Data,
            binding: Binding::Local,
            visibility: Visibility::Default,
            section: Some(ro),
            value: ro_va + 64 + i as u64,
            size: 1,
            type_id: 0,
            version: 1,
        });
    }
    b.add_symbol(Symbol {
        name: "label",
        kind: SymbolKind::Data,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(data),
        value: data_va,
        size: 8,
        type_id: 0,
        version: 1,
    });
    b.write().unwrap()
}

/// Points the `label` of `many_locals`' module loaded from `path` at `offset` bytes into its
/// `.rodata`, as its code would store an address there.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn point_label_into_rodata(registry: &Registry, path: &Path, offset: usize) {
    let module = registry.get(path).unwrap();
    let (_, label) = module.export("label").unwrap();
    let rodata = module.base() + module.file().sections()[0].vaddr as usize;
    // SAFETY: `label` is the module's 8-byte, 8-aligned data symbol, writable, and nothing
    // else runs the module's code.
    unsafe { (label as *mut u64).write((rodata + offset) as u64) };
}

/// Bytes of heap in use (glibc's count).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2().uordblks }
}

/// A replaced version kept mapped, because data carried over points into it where no
/// symbol of the new version corresponds, keeps nothing of what reloads arrange its symbols
/// into: here every version's `label` points into its own `.rodata` (as a string literal's
/// address would), so each reload keeps the version before mapped, a chain of versions of
/// 4,000 symbols each. What each kept version holds on the heap stays far below what an
/// arrangement of its symbols takes (tens of bytes per symbol).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn versions_kept_mapped_keep_no_arrangement_of_their_symbols() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let versions = [many_locals(4000, 1), many_locals(4000, 2)];
    let path = dir.path().join("chain.smf");
    common::replace(&path, &versions[0]);
    // Mapped, so that each version's head (its symbol table) is the file's pages, not heap.
    let registry = Registry::with_options(LoadOptions::default().with_map_reloadable(true));
    // SAFETY: a module this test built, without code; its file is replaced by renames.
    unsafe { registry.load(&path) }.unwrap();
    let reload = |i: usize| {
        point_label_into_rodata(&registry, &path, 0);
        common::replace(&path, &versions[(i + 1) % 2]);
        // SAFETY: as above.
        let report = unsafe { registry.reload(&path) }.unwrap();
        assert!(report.retains_old, "{report}");
    };
    for i in 0..4 {
        reload(i);
    }
    let before = heap_in_use();
    let count = 16;
    for i in 4..4 + count {
        reload(i);
    }
    let per_version = heap_in_use().saturating_sub(before) / count;
    // Arranged, each of these versions took about 200 KB; without, about 3 KB. The bound
    // leaves room for what other tests of this binary allocate meanwhile.
    assert!(
        per_version < 64 << 10,
        "each version kept mapped holds {per_version} bytes of heap"
    );
}

/// Versions whose local symbols all store the same name hash (which no load checks; a writer
/// may store no real hash for locals) reload without their table of locals by name taking
/// time quadratic in their number: none of them is found by name, so a pointer into one keeps
/// the version it points into mapped. With honest hashes the same pointer moves.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn locals_that_all_store_one_hash_are_not_found_by_name() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    // Every local's stored name hash (offset 4 of each 40-byte entry) made 0.
    let crowd = |mut bytes: Vec<u8>| {
        let symtab = {
            let parsed = Module::parse(&bytes).unwrap();
            let s = parsed
                .sections()
                .iter()
                .find(|s| s.kind == SectionKind::SymTab)
                .unwrap();
            s.file_offset as usize..(s.file_offset + s.file_size) as usize
        };
        for entry in bytes[symtab].chunks_exact_mut(40) {
            if entry[9] == Binding::Local.as_raw() {
                entry[4..8].copy_from_slice(&[0; 4]);
            }
        }
        rehash(bytes)
    };
    let honest = [many_locals(4000, 1), many_locals(4000, 2)];
    let crowded = honest.clone().map(crowd);
    for (versions, moves) in [(&honest, true), (&crowded, false)] {
        let path = dir.path().join("locals.smf");
        common::replace(&path, &versions[0]);
        let registry = Registry::with_options(LoadOptions::default().with_map_reloadable(true));
        // SAFETY: modules this test built, without code; files are replaced by renames.
        unsafe { registry.load(&path) }.unwrap();
        // At `local_5`, a local data symbol of one byte.
        point_label_into_rodata(&registry, &path, 64 + 5);
        common::replace(&path, &versions[1]);
        // SAFETY: as above.
        let report = unsafe { registry.reload(&path) }.unwrap();
        assert_eq!(report.retains_old, !moves, "{report}");
    }
}
