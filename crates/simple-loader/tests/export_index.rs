//! The registry's export index: resolution in load order, kept right across unloads and
//! reloads, names that share a hash, and a thousand modules.

mod common;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use simple_loader::{Module, Registry};
use smf_format::{
    Binding, ImageLayout, LoadedSection, ModuleBuilder, ModuleFlags, SectionKind, Symbol,
    SymbolKind, Visibility, fnv1a32,
};

/// A module exporting one function per name (returning `value`), and a local symbol.
fn module(names: &[&str], value: u16, reloadable: bool) -> Vec<u8> {
    let mut code = Vec::new();
    for _ in names {
        code.extend_from_slice(&common::return_constant(value));
        code.resize(code.len().next_multiple_of(16), 0);
    }
    code.extend_from_slice(&common::return_constant(0));
    code.resize(code.len().next_multiple_of(16), 0);
    let mut builder = ModuleBuilder::new();
    builder.platform = simple_loader::HOST_PLATFORM;
    builder.arch = common::HOST;
    if reloadable {
        builder.flags = builder.flags.union(ModuleFlags::RELOADABLE);
    }
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(code.len() as u64).unwrap();
    let mem_size = code.len() as u64;
    let text = builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size,
        align: 16,
        data: code,
    });
    let symbol = |name, binding, value| Symbol {
        name,
        kind: SymbolKind::Function,
        binding,
        visibility: Visibility::Default,
        section: Some(text),
        value,
        size: common::CODE_LEN as u64,
        type_id: 0,
        version: 0,
    };
    builder.add_symbol(symbol("local_helper", Binding::Local, mem_size - 16));
    for (i, name) in names.iter().enumerate() {
        builder.add_symbol(symbol(name, Binding::Global, vaddr + 16 * i as u64));
    }
    builder.write().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    // A new file, renamed over the old one: a loaded module may still map the old file.
    let partial = dir.join(format!("{name}.partial"));
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

fn call(address: usize) -> u32 {
    // SAFETY: every exported function of these modules is `mov eax, imm32; ret`.
    let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> u32>(address) };
    f()
}

fn address_in(module: &Arc<Module>, name: &str) -> usize {
    module.export(name).unwrap().1
}

#[test]
fn first_module_in_load_order_wins_and_unload_uncovers_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
    let a = unsafe {
        registry.load(&write(
            dir.path(),
            "a.smf",
            &module(&["shared", "only_a"], 1, false),
        ))
    }
    .unwrap();
    let b_path = write(
        dir.path(),
        "b.smf",
        &module(&["shared", "only_b"], 2, false),
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let b = unsafe { registry.load(&b_path) }.unwrap();
    let c_path = write(dir.path(), "c.smf", &module(&["shared"], 3, false));
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let c = unsafe { registry.load(&c_path) }.unwrap();

    assert_eq!(registry.resolve("shared"), Some(address_in(&a, "shared")));
    assert_eq!(registry.resolve("only_b"), Some(address_in(&b, "only_b")));
    assert_eq!(
        registry.resolve("local_helper"),
        None,
        "local symbols are not exported"
    );
    assert_eq!(registry.resolve("nothing"), None);

    assert!(registry.unload(&dir.path().join("a.smf")).unwrap());
    assert_eq!(registry.resolve("shared"), Some(address_in(&b, "shared")));
    assert_eq!(registry.resolve("only_a"), None);
    assert_eq!(call(registry.resolve("shared").unwrap()), 2);

    assert!(registry.unload(&b_path).unwrap());
    assert_eq!(registry.resolve("shared"), Some(address_in(&c, "shared")));
    assert!(registry.unload(&c_path).unwrap());
    assert_eq!(registry.resolve("shared"), None);

    // Loaded again, after the others: last in load order, and alone.
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let b_again = unsafe { registry.load(&b_path) }.unwrap();
    assert_eq!(
        registry.resolve("shared"),
        Some(address_in(&b_again, "shared"))
    );
    drop((a, b, c));
}

#[test]
fn names_that_share_a_hash_are_told_apart() {
    // Found by search: two names with the same FNV-1a hash.
    let (one, other) = ("sym122789", "sym339192");
    assert_eq!(fnv1a32(one.as_bytes()), fnv1a32(other.as_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
    let first =
        unsafe { registry.load(&write(dir.path(), "one.smf", &module(&[one], 1, false))) }.unwrap();
    assert_eq!(registry.resolve(other), None, "same hash, other name");
    // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
    let second =
        unsafe { registry.load(&write(dir.path(), "other.smf", &module(&[other], 2, false))) }
            .unwrap();
    assert_eq!(registry.resolve(one), Some(address_in(&first, one)));
    assert_eq!(registry.resolve(other), Some(address_in(&second, other)));
    assert!(registry.unload(&dir.path().join("one.smf")).unwrap());
    assert_eq!(registry.resolve(one), None);
    assert_eq!(registry.resolve(other), Some(address_in(&second, other)));
}

#[test]
fn a_reload_updates_the_index_and_keeps_the_load_order() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    let path = write(dir.path(), "r.smf", &module(&["kept", "dropped"], 1, true));
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
    let later = unsafe {
        registry.load(&write(
            dir.path(),
            "later.smf",
            &module(&["kept", "added", "dropped"], 9, false),
        ))
    }
    .unwrap();
    assert_eq!(call(registry.resolve("kept").unwrap()), 1);

    write(dir.path(), "r.smf", &module(&["kept", "added"], 2, true));
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert!(!report.unchanged);
    // The reloaded module is still first in load order.
    assert_eq!(call(registry.resolve("kept").unwrap()), 2);
    assert_eq!(call(registry.resolve("added").unwrap()), 2);
    // It no longer exports `dropped`: the next module in load order does.
    assert_eq!(
        registry.resolve("dropped"),
        Some(address_in(&later, "dropped"))
    );
}

#[test]
fn a_thousand_modules_each_resolve_to_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    let names: Vec<String> = (0..1000).map(|i| format!("m{i}_f")).collect();
    let modules: Vec<Arc<Module>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let bytes = module(&[name.as_str(), "common"], i as u16, false);
            // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
            unsafe { registry.load(&write(dir.path(), &format!("m{i}.smf"), &bytes)) }.unwrap()
        })
        .collect();
    for (i, (name, module)) in names.iter().zip(&modules).enumerate() {
        let address = registry.resolve(name).unwrap();
        assert_eq!(address, address_in(module, name));
        assert_eq!(call(address), i as u32);
    }
    assert_eq!(call(registry.resolve("common").unwrap()), 0);
    assert_eq!(registry.modules().len(), 1000);
}

#[test]
fn host_definitions_win_and_a_new_definition_replaces_the_old() {
    let (one, other) = ("sym122789", "sym339192");
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new();
    // SAFETY: the module's code is this program's own test code; its file is never rewritten in place.
    let module = unsafe {
        registry.load(&write(
            dir.path(),
            "m.smf",
            &module(&["shared", one], 1, false),
        ))
    }
    .unwrap();
    assert_eq!(
        registry.resolve("shared"),
        Some(address_in(&module, "shared"))
    );
    // SAFETY: the addresses are only compared, never called.
    unsafe {
        registry.define("shared", 0x1000);
        registry.define(other, 0x2000);
    }
    assert_eq!(registry.resolve("shared"), Some(0x1000), "the host wins");
    assert_eq!(registry.resolve(other), Some(0x2000));
    assert_eq!(
        registry.resolve(one),
        Some(address_in(&module, one)),
        "a host name with the same hash is another name"
    );
    // SAFETY: as above.
    unsafe { registry.define("shared", 0x3000) };
    assert_eq!(registry.resolve("shared"), Some(0x3000));
}
