//! A function exported by one loaded module is called from another, through the registry.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::sync::Arc;

use common::*;
use simple_loader::Registry;

struct Modules {
    _work: tempfile::TempDir,
    provider: std::path::PathBuf,
    consumer: std::path::PathBuf,
}

fn build() -> Modules {
    let dir = program_dir("crossmod");
    let work = tempfile::tempdir().unwrap();
    let provider_o = compile(&[dir.join("provider.c")], &work.path().join("p"), &["-O2"]);
    let consumer_o = compile(&[dir.join("consumer.c")], &work.path().join("c"), &["-O2"]);
    let provider = work.path().join("provider.smf");
    let consumer = work.path().join("consumer.smf");
    pack(&provider_o, &provider, &[]);
    pack(&consumer_o, &consumer, &[]);
    Modules {
        _work: work,
        provider,
        consumer,
    }
}

#[test]
fn consumer_calls_provider_through_the_registry() {
    let m = build();
    let spec = build_spec(&program_dir("crossmod"));
    let expected: i64 = spec
        .extra
        .iter()
        .find(|(k, _)| k == "expect_consumer_run_5")
        .unwrap()
        .1
        .parse()
        .unwrap();

    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let provider = unsafe { registry.load(&m.provider) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let consumer = unsafe { registry.load(&m.consumer) }.unwrap();
    assert!(
        consumer
            .providers()
            .iter()
            .any(|p| Arc::ptr_eq(p, &provider)),
        "consumer must keep provider alive"
    );

    // SAFETY: `long consumer_run(int n)` in consumer.c.
    let run = unsafe { consumer.get::<extern "C" fn(i32) -> i64>("consumer_run") }.unwrap();
    assert_eq!(run(5), expected);

    // The consumer wrote nothing yet; the provider's counter advanced by its calls.
    // SAFETY: `long provider_counter_bump(void)` in provider.c.
    let bump = unsafe { provider.get::<extern "C" fn() -> i64>("provider_counter_bump") }.unwrap();
    assert_eq!(
        bump(),
        6,
        "the consumer's five calls reached the provider's own counter"
    );

    // Data imported by the consumer is the provider's own storage.
    let value = provider
        .data("provider_value")
        .unwrap()
        .as_ptr::<i32>()
        .unwrap();
    // SAFETY: provider_value is an int inside the provider's mapped data section.
    unsafe { value.write(0) };
    assert_eq!(
        run(1),
        /* provider_add(0, 0) */ 7 * 3 + 1000 * strlen_of_name(&provider),
        "consumer reads provider_value through its GOT"
    );

    // Unloading the provider from the registry does not pull it from under the consumer.
    assert!(registry.unload(&m.provider).unwrap());
    drop(provider);
    assert!(run(0) > 0);
}

fn strlen_of_name(provider: &simple_loader::Module) -> i64 {
    // SAFETY: `const char *provider_name(void)` returns a NUL-terminated static string.
    let name =
        unsafe { provider.get::<extern "C" fn() -> *const std::ffi::c_char>("provider_name") }
            .unwrap();
    // SAFETY: see above.
    unsafe { std::ffi::CStr::from_ptr(name()) }.to_bytes().len() as i64
}

#[test]
fn consumer_without_provider_names_the_missing_import() {
    let m = build();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { Registry::new().load(&m.consumer) }
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("consumer.smf") && error.contains("unresolved import `provider_"),
        "{error}"
    );
}

#[test]
fn host_definitions_win_over_modules() {
    extern "C" fn host_add(a: i32, b: i32) -> i32 {
        1000 + a + b
    }
    let m = build();
    let registry = Registry::new();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&m.provider) }.unwrap();
    // SAFETY: host_add has the C signature `int provider_add(int, int)` expects.
    unsafe {
        registry.define(
            "provider_add",
            host_add as extern "C" fn(i32, i32) -> i32 as usize,
        )
    };
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let consumer = unsafe { registry.load(&m.consumer) }.unwrap();
    // SAFETY: `long consumer_run(int n)`.
    let run = unsafe { consumer.get::<extern "C" fn(i32) -> i64>("consumer_run") }.unwrap();
    // One iteration: provider_add(0, 42) through the host gives 1042; the counter bump and
    // the name still come from the provider.
    assert_eq!(run(1), 1042 + 3 + 1000 * 8);
}

/// What another module gets for an exported indirect function (`STT_GNU_IFUNC`): the
/// provider's stub for it, which jumps to the implementation the resolver chose at load. So
/// calls reach that implementation, and `&scale` is the same in both modules and the host.
#[test]
fn exported_indirect_functions_reach_the_chosen_implementation() {
    let work = tempfile::tempdir().unwrap();
    let provider_o = compile(
        &[program_dir("ifunc").join("clones.c")],
        &work.path().join("p"),
        &["-O2"],
    );
    let consumer_c = work.path().join("ifunc_consumer.c");
    std::fs::write(
        &consumer_c,
        "long sum_squares(const int *v, int n);\n\
         int scale(int x);\n\
         int (*scale_pointer(void))(int) { return scale; }\n\
         long consumer_ifunc(void) { int v[] = {1, 2, 3}; return sum_squares(v, 3) * 100 + scale(7); }\n",
    )
    .unwrap();
    let consumer_o = compile(&[consumer_c], &work.path().join("c"), &["-O2"]);
    let mut print = cc();
    print.arg("-print-libgcc-file-name");
    let libgcc = String::from_utf8(check(print).stdout).unwrap();
    let provider = work.path().join("provider.smf");
    let consumer = work.path().join("consumer.smf");
    pack(&provider_o, &provider, &[libgcc.trim()]);
    pack(&consumer_o, &consumer, &[]);

    let registry = Registry::new();
    // SAFETY: modules this test built from its own sources; the files are never rewritten.
    let provider = unsafe { registry.load(&provider) }.unwrap();
    // SAFETY: as above.
    let consumer = unsafe { registry.load(&consumer) }.unwrap();
    // SAFETY: `long consumer_ifunc(void)` in the consumer's source.
    let run = unsafe { consumer.get::<extern "C" fn() -> i64>("consumer_ifunc") }.unwrap();
    assert_eq!(run(), 14 * 100 + 21);
    // SAFETY: `int (*scale_pointer(void))(int)` in the consumer's source.
    let pointer = unsafe { consumer.get::<extern "C" fn() -> usize>("scale_pointer") }.unwrap()();
    let (symbol, exported) = provider.export("scale").unwrap();
    assert_eq!(symbol.kind, smf_format::SymbolKind::Function);
    assert_eq!(
        pointer, exported,
        "&scale must be one address in both modules"
    );
    // SAFETY: `int scale(int)` in clones.c.
    let scale = unsafe { provider.get::<extern "C" fn(i32) -> i32>("scale") }.unwrap();
    assert_eq!(
        scale(5),
        15,
        "the host's call must reach the chosen implementation"
    );
}
