//! Imports resolved in what the process has loaded are remembered across loads only while the
//! dynamic linker's set of loaded objects is unchanged: a library unloaded and another
//! loaded in its place give the next load the new definition, and a name not found is
//! looked up again (a library made global later may define it).
#![cfg(unix)]

use std::ffi::{CString, c_void};
use std::path::Path;
use std::process::Command;

use simple_loader::{LoadOptions, load};
use smf_format::*;

mod common;
use common::HOST;

/// A module with one exported data symbol, `slots`: two words holding the addresses of the
/// imports `memo_value` (strong) and `memo_late` (weak).
fn importer() -> Vec<u8> {
    importer_of("memo_value")
}

/// [`importer`], with `value` the name of the strong import.
fn importer_of(value: &str) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = HOST;
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(16).unwrap();
    let data = b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr,
        mem_size: 16,
        align: 16,
        data: vec![0; 16],
    });
    b.add_symbol(Symbol {
        name: "slots",
        kind: SymbolKind::Data,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(data),
        value: vaddr,
        size: 16,
        type_id: 0,
        version: 1,
    });
    for (slot, (name, binding)) in [(value, Binding::Global), ("memo_late", Binding::Weak)]
        .into_iter()
        .enumerate()
    {
        let import = b.add_import(Import {
            name,
            kind: ImportKind::Data,
            binding,
            type_id: 0,
            version: 0,
        });
        b.add_reloc(Reloc {
            offset: vaddr + 8 * slot as u64,
            kind: RelocKind::Abs64,
            import: Some(import),
            addend: 0,
        });
    }
    b.write().unwrap()
}

/// Compiles `source` into the shared library `dir/name` with the C compiler the tests use
/// (`CC`, as for the aarch64 tests under qemu, or `cc`).
fn shared_library(dir: &Path, name: &str, source: &str) -> CString {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let so = dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .status()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(status.success(), "{cc} failed on {}", c.display());
    CString::new(so.into_os_string().into_encoded_bytes()).unwrap()
}

fn open(path: &CString, flags: i32) -> *mut c_void {
    // SAFETY: `path` is NUL-terminated; the libraries are this test's, without initialisers.
    unsafe { libc::dlopen(path.as_ptr(), flags) }
}

/// Whether the dynamic linker lists an object loaded from `path`. A library closed by its
/// last handle stays listed while another thread holds a reference to it (the loader pins
/// the library an import resolved into while it reads the symbol's type).
fn listed(path: &CString) -> bool {
    /// # Safety
    /// Called only by `dl_iterate_phdr` below, with `data` the pair passed there.
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `info` for the call, whose `dlpi_name` is
        // null or NUL-terminated; `data` is the `(path, found)` pair below.
        unsafe {
            let (path, found) = &mut *data.cast::<(&CString, bool)>();
            let name = (*info).dlpi_name;
            *found = !name.is_null() && std::ffi::CStr::from_ptr(name) == path.as_c_str();
            libc::c_int::from(*found)
        }
    }
    let mut search = (path, false);
    // SAFETY: `each` matches the callback type and only writes `search` through `data`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut search).cast()) };
    search.1
}

fn symbol(handle: *mut c_void, name: &std::ffi::CStr) -> u64 {
    // SAFETY: `handle` is open; the result is only compared as an address.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    assert!(!address.is_null());
    address as u64
}

/// Loads the importer and returns its two slots.
fn load_slots(module: &Path) -> [u64; 2] {
    // SAFETY: the test's own module: data and relocations only, no code.
    let module = unsafe { load(module, &LoadOptions::default(), None) }.unwrap();
    let slots = module.data("slots").unwrap().as_ptr::<[u64; 2]>().unwrap();
    // SAFETY: `slots` is 16 readable bytes of the loaded image.
    unsafe { slots.read() }
}

#[test]
fn a_remembered_import_is_forgotten_when_the_loaded_objects_change() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("importer.smf");
    std::fs::write(&module, importer()).unwrap();
    let first = shared_library(dir.path(), "libmemo1.so", "long memo_value = 1;\n");
    // Another layout, so that the definition cannot land where the first one was.
    let second = shared_library(
        dir.path(),
        "libmemo2.so",
        "char memo_pad[1 << 16] = {1};\nlong memo_value = 2;\n",
    );
    let late = shared_library(dir.path(), "libmemo3.so", "long memo_late = 3;\n");

    let one = open(&first, libc::RTLD_NOW | libc::RTLD_GLOBAL);
    assert!(!one.is_null());
    let defined = symbol(one, c"memo_value");
    // The first load looks the names up; the second finds them remembered.
    assert_eq!(load_slots(&module), [defined, 0]);
    assert_eq!(load_slots(&module), [defined, 0]);

    // SAFETY: nothing refers to the library any more: the modules that imported from it are
    // unloaded.
    assert_eq!(unsafe { libc::dlclose(one) }, 0);
    assert!(
        open(&first, libc::RTLD_NOW | libc::RTLD_NOLOAD).is_null(),
        "the first library is still loaded"
    );
    let two = open(&second, libc::RTLD_NOW | libc::RTLD_GLOBAL);
    assert!(!two.is_null());
    let redefined = symbol(two, c"memo_value");
    assert_ne!(redefined, defined);
    let [value, _] = load_slots(&module);
    assert_eq!(value, redefined, "the unloaded library's address was used");
    // SAFETY: `memo_value` is a `long` of the open second library.
    assert_eq!(unsafe { *(value as *const i64) }, 2);

    // Opened local, `memo_late` is not in the global scope; made global (which loads no
    // object, so the count does not change), it is, and the next load finds it.
    let three = open(&late, libc::RTLD_NOW | libc::RTLD_LOCAL);
    assert!(!three.is_null());
    assert_eq!(load_slots(&module), [redefined, 0]);
    let promoted = open(
        &late,
        libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_GLOBAL,
    );
    assert_eq!(promoted, three);
    let [_, found] = load_slots(&module);
    assert_eq!(found, symbol(three, c"memo_late"));
    // SAFETY: `memo_late` is a `long` of the open third library.
    assert_eq!(unsafe { *(found as *const i64) }, 3);
}

/// Loads on several threads while another replaces the library that defines their import,
/// over and over: a load that begins after a library was unloaded and its replacement
/// loaded, and ends before the next change, binds the replacement's definition, never an
/// answer written down under an earlier set of loaded objects.
#[test]
fn loads_alongside_unloads_bind_the_library_loaded_when_they_began() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("importer.smf");
    // A name of this test's own, so that the other test's libraries do not define it.
    std::fs::write(&module, importer_of("memo_churn")).unwrap();
    // Two layouts, so that the definitions cannot land at one address.
    let libraries = [
        shared_library(dir.path(), "libchurn1.so", "long memo_churn = 1;\n"),
        shared_library(
            dir.path(),
            "libchurn2.so",
            "char churn_pad[1 << 16] = {1};\nlong memo_churn = 2;\n",
        ),
    ];
    // Even (and not 0) while a library is open and `current` is its definition; odd while
    // one changes.
    let state = AtomicU64::new(0);
    let current = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let checked = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !done.load(SeqCst) {
                    let before = state.load(SeqCst);
                    let expected = current.load(SeqCst);
                    // SAFETY: as in `load_slots`; while no library defines the import, the
                    // load is refused.
                    let loaded = unsafe { load(&module, &LoadOptions::default(), None) };
                    if before > 0 && before.is_multiple_of(2) && state.load(SeqCst) == before {
                        let loaded = loaded.unwrap();
                        let slots = loaded.data("slots").unwrap().as_ptr::<u64>();
                        // SAFETY: `slots` is 16 readable bytes of the loaded image.
                        let value = unsafe { slots.unwrap().read() };
                        assert_eq!(value, expected, "bound a library unloaded before the load");
                        checked.fetch_add(1, SeqCst);
                    }
                }
            });
        }
        let mut open_handle: *mut c_void = std::ptr::null_mut();
        for round in 0..100 {
            state.fetch_add(1, SeqCst);
            if !open_handle.is_null() {
                // SAFETY: the loaded importers hold only the address, which nothing reads
                // after the module that holds it is dropped.
                assert_eq!(unsafe { libc::dlclose(open_handle) }, 0);
                // Until a load that pinned it lets go, the library is still loaded.
                let closed = &libraries[(round + 1) % 2];
                while listed(closed) {
                    std::thread::yield_now();
                }
            }
            let library = &libraries[round % 2];
            open_handle = open(library, libc::RTLD_NOW | libc::RTLD_GLOBAL);
            assert!(!open_handle.is_null());
            current.store(symbol(open_handle, c"memo_churn"), SeqCst);
            state.fetch_add(1, SeqCst);
            // Let loads begin and end under this library.
            let seen = checked.load(SeqCst);
            let start = std::time::Instant::now();
            while checked.load(SeqCst) < seen + 3 && start.elapsed().as_secs() < 1 {
                std::thread::yield_now();
            }
        }
        done.store(true, SeqCst);
    });
    assert!(checked.load(SeqCst) >= 100, "too few loads were checked");
}
