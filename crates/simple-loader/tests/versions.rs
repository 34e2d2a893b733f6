//! Module versions in the registry (FORMAT.md, *Version table*): dependencies choose the
//! highest loaded version in their range and bind imports to it, a range nothing meets is an
//! error naming both sides, and reloads keep the versions others rely on.

mod common;

use simple_loader::{Current, LoadError, Registry, ReloadOptions};
use smf_format::*;

/// A reloadable module named `math` of `version`, exporting `int value(void)` returning
/// `returns`.
fn math(version: &str, returns: u16) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = simple_loader::HOST_PLATFORM;
    b.flags = b.flags.union(ModuleFlags::RELOADABLE);
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: common::CODE_LEN as u64,
        align: 16,
        data: common::return_constant(returns).to_vec(),
    });
    b.add_symbol(Symbol {
        name: "value",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: common::CODE_LEN as u64,
        type_id: 0,
        version: 0,
    });
    let mut versions = Versions::new(version.parse().unwrap());
    versions.name = Some("math".into());
    b.set_versions(&versions).unwrap();
    b.write().unwrap()
}

/// A module depending on `math` in `range`, whose data word `pointer` holds the address
/// its import `value` resolved to.
fn app(range: &str) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = simple_loader::HOST_PLATFORM;
    let data = b.add_section(LoadedSection {
        kind: SectionKind::Data,
        name: ".data",
        vaddr: 0,
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
        value: 0,
        size: 8,
        type_id: 0,
        version: 0,
    });
    let import = b.add_import(Import {
        name: "value",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    b.add_reloc(Reloc {
        offset: 0,
        kind: RelocKind::Abs64,
        import: Some(import),
        addend: 0,
    });
    let mut versions = Versions::new(Version::new(1, 0, 0));
    versions.require("math", range.parse().unwrap());
    b.set_versions(&versions).unwrap();
    b.write().unwrap()
}

/// What `app`'s `value` import resolved to, called.
fn call_import(module: &simple_loader::Module) -> i32 {
    let (_, pointer) = module.export("pointer").unwrap();
    // SAFETY: `pointer` is 8 readable bytes of the loaded module, holding a function
    // address of a module the registry keeps loaded.
    let function = unsafe { *(pointer as *const usize) };
    // SAFETY: `value` is `int value(void)` in every `math`.
    let value = unsafe { std::mem::transmute::<usize, extern "C" fn() -> i32>(function) };
    value()
}

#[test]
fn a_dependency_binds_to_the_highest_version_in_its_range() {
    let registry = Registry::new();
    // SAFETY: modules this test built; their code returns constants.
    unsafe {
        registry.load_bytes("math-1.smf", math("1.4.0", 1)).unwrap();
        registry.load_bytes("math-2.smf", math("2.1.0", 2)).unwrap();
        registry
            .load_bytes("math-2b.smf", math("2.0.5", 3))
            .unwrap();
    }
    // Load order alone would bind `value` to math 1.4.0, the first loaded (its trampoline:
    // it is reloadable); `*` takes the highest version.
    let first = registry.resolve("value").unwrap();
    // SAFETY: as above.
    let any = unsafe { registry.load_bytes("any.smf", app("*")) }.unwrap();
    assert_eq!(call_import(&any), 2);
    // SAFETY: `value` is `int value(void)` in every `math`.
    let first = unsafe { std::mem::transmute::<usize, extern "C" fn() -> i32>(first) };
    assert_eq!(first(), 1);
    // SAFETY: as above.
    let two = unsafe { registry.load_bytes("two.smf", app("^2")) }.unwrap();
    assert_eq!(
        call_import(&two),
        2,
        "bound to math 2.1.0, the highest in ^2"
    );
    // SAFETY: as above.
    let exact = unsafe { registry.load_bytes("exact.smf", app("=2.0.5")) }.unwrap();
    assert_eq!(call_import(&exact), 3);
    let listed = registry.modules();
    let chosen = &listed
        .iter()
        .find(|m| m.path.ends_with("two.smf"))
        .unwrap()
        .dependencies;
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].version, Version::new(2, 1, 0));
    assert!(chosen[0].path.ends_with("math-2.smf"));
    assert_eq!(
        chosen[0].to_string(),
        "math ^2.0.0: chose 2.1.0 (math-2.smf)"
    );
    assert_eq!(
        listed
            .iter()
            .find(|m| m.path.ends_with("math-1.smf"))
            .unwrap()
            .module_version,
        Some(Version::new(1, 4, 0))
    );

    // SAFETY: as above.
    let error = unsafe { registry.load_bytes("three.smf", app("^3.1")) }.unwrap_err();
    assert!(matches!(error, LoadError::DependencyVersion { .. }));
    assert_eq!(
        error.to_string(),
        "three.smf: requires module math ^3.1.0, but the loaded versions are 1.4.0 \
         (math-1.smf), 2.1.0 (math-2.smf), 2.0.5 (math-2b.smf)"
    );
    // SAFETY: as above.
    let error = unsafe { Registry::new().load_bytes("lone.smf", app("^1")) }.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no module of that name is loaded"),
        "{error}"
    );
}

#[test]
fn reloads_keep_the_versions_others_rely_on() {
    let registry = Registry::new();
    // SAFETY: modules this test built; their code returns constants.
    unsafe {
        registry.load_bytes("math.smf", math("2.1.0", 2)).unwrap();
        registry.load_bytes("app.smf", app("^2.1")).unwrap();
    }
    // Out of app's range: refused, the old version keeps running.
    // SAFETY: as above.
    let error = unsafe { registry.reload_bytes("math.smf", math("2.0.0", 4)) }.unwrap_err();
    assert!(matches!(error, LoadError::VersionChange { .. }));
    assert!(
        error
            .to_string()
            .contains("the new version is 2.0.0, and app.smf requires math ^2.1.0"),
        "{error}"
    );
    // In range: the report shows both versions.
    // SAFETY: as above.
    let report = unsafe { registry.reload_bytes("math.smf", math("2.3.0", 5)) }.unwrap();
    assert_eq!(report.previous_module_version, Some(Version::new(2, 1, 0)));
    assert_eq!(report.module_version, Some(Version::new(2, 3, 0)));
    assert!(
        report
            .to_string()
            .contains("module version: 2.1.0 -> 2.3.0"),
        "{report}"
    );
    // A new major version while app and a handle rely on the module: refused unless asked.
    // SAFETY: `value` is `int value(void)`.
    let handle: Current<extern "C" fn() -> i32> =
        unsafe { registry.current_named("math.smf", "value") }.unwrap();
    assert_eq!((*handle.pin())(), 5);
    // SAFETY: as above.
    let error = unsafe { registry.reload_bytes("math.smf", math("3.0.0", 6)) }.unwrap_err();
    assert!(
        error.to_string().contains("requires math ^2.1.0"),
        "{error}"
    );
    let options = ReloadOptions::default().with_allow_version_change(true);
    // SAFETY: as above.
    let report =
        unsafe { registry.reload_bytes_with("math.smf", math("3.0.0", 6), options) }.unwrap();
    assert_eq!(report.module_version, Some(Version::new(3, 0, 0)));
    assert_eq!((*handle.pin())(), 6);
}

#[test]
fn a_major_change_is_refused_while_a_handle_is_linked() {
    let registry = Registry::new();
    // SAFETY: a module this test built.
    unsafe { registry.load_bytes("math.smf", math("1.0.0", 1)) }.unwrap();
    // Nothing relies on it: a new major version is fine.
    // SAFETY: as above.
    unsafe { registry.reload_bytes("math.smf", math("2.0.0", 2)) }.unwrap();
    // SAFETY: `value` is `int value(void)`.
    let _handle: Current<extern "C" fn() -> i32> =
        unsafe { registry.current_named("math.smf", "value") }.unwrap();
    // SAFETY: as above.
    let error = unsafe { registry.reload_bytes("math.smf", math("3.0.0", 3)) }.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the major version changes from 2.0.0 to 3.0.0"),
        "{error}"
    );
    // A minor one is.
    // SAFETY: as above.
    unsafe { registry.reload_bytes("math.smf", math("2.5.0", 4)) }.unwrap();
}
