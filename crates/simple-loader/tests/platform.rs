//! A loader refuses modules built for another operating system before it maps or resolves
//! anything, and says which system the module is for (docs/FORMAT.md, "Windows modules").

mod common;

use simple_loader::Registry;
use smf_format::{
    Binding, ImageLayout, LoadedSection, ModuleBuilder, Platform, SectionKind, Symbol, SymbolKind,
    Visibility,
};

/// A module exporting `answer`, for `platform`, with an import nothing defines: a loader that
/// got as far as resolving imports would fail on that instead.
fn module(platform: Platform) -> Vec<u8> {
    let mut builder = ModuleBuilder::new();
    builder.arch = common::HOST;
    builder.platform = platform;
    let code = common::return_constant(42).to_vec();
    let vaddr = ImageLayout::new().place(code.len() as u64).unwrap();
    let text = builder.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size: code.len() as u64,
        align: 16,
        data: code,
    });
    builder.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: vaddr,
        size: common::CODE_LEN as u64,
        type_id: 0,
        version: 0,
    });
    builder.add_import(smf_format::Import {
        name: "no_such_function_anywhere",
        kind: smf_format::ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    builder.write().unwrap()
}

#[test]
fn modules_for_another_operating_system_are_refused_by_name() {
    let (own, other) = if cfg!(windows) {
        (Platform::Windows, Platform::Linux)
    } else {
        (Platform::Linux, Platform::Windows)
    };
    let registry = Registry::new();
    // SAFETY: the module is refused before any of its code could run.
    let error = unsafe { registry.load_bytes("other.sme", module(other)) }.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "other.sme: built for {other}, but this loader runs on {}",
            std::env::consts::OS
        )
    );
    // The same module for this system gets past the platform check, to its import.
    // SAFETY: the module's only code returns 42; it fails to link before any of it runs.
    let error = unsafe { registry.load_bytes("own.sme", module(own)) }.unwrap_err();
    assert!(
        error.to_string().contains("no_such_function_anywhere"),
        "{error}"
    );
}
