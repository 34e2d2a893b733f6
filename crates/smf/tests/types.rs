//! Types recorded from DWARF and checked at reload, on modules compiled from C with `-g` by
//! the system compiler (and clang where present): a reload that changes the type of a
//! function a handle or another module is linked to is refused before anything switches;
//! kept data carries over only while its layout is unchanged, field by field when a struct
//! only gained fields at its end.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use simple_loader::{LoadError, LoadOptions, Registry, TypeChanges};

/// Compiles `source` with `compiler` and `flags` and packs it (reloadable); returns the
/// module's path in a directory of its own.
fn build_with(dir: &Path, compiler: &str, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let work = dir.join(format!("build-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    let c = work.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let objects = compile_with(compiler, &[c], &work, flags);
    let out = work.join(format!("{name}.smf"));
    pack(&objects, &out, &["--reloadable"]);
    out
}

fn build(dir: &Path, name: &str, source: &str) -> PathBuf {
    build_with(dir, &Toolchain::system().c, name, source, &["-g", "-O1"])
}

/// Puts the module built at `from` at `path`, as a rebuild would (a new file renamed over).
fn install(from: &Path, path: &Path) {
    let tmp = path.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const LIB: &str = r#"
struct state { int hp; int mp; };
struct state state = { .hp = 10, .mp = 20 };
struct wide { long a; int b; };
struct wide wide = { 1, 2 };
long add(long a, long b) { return a + b; }
long hp(void) { return state.hp; }
void hurt(int by) { state.hp -= by; }
void set_a(long a) { wide.a = a; }
long get_a(void) { return wide.a; }
struct item { int id; short n; };
struct bag { struct item items[3]; int used; };
long bag_used(struct bag *b) { return b->used; }
"#;

#[test]
fn the_packer_records_types_from_dwarf() {
    let dir = tempfile::tempdir().unwrap();
    let mut compilers = vec![Toolchain::system().c];
    compilers.extend(Toolchain::clang().map(|t| t.c));
    for compiler in compilers {
        let path = build_with(dir.path(), &compiler, "lib", LIB, &["-g", "-O2"]);
        // SAFETY: our own module; its constructors (none) are harmless.
        let module =
            unsafe { simple_loader::load(path.as_path(), &LoadOptions::default(), None) }.unwrap();
        let ty = |name: &str| module.type_of(name).map(|t| t.to_string());
        assert_eq!(
            ty("add").as_deref(),
            Some("fn(i64, i64) -> i64"),
            "{compiler}"
        );
        assert_eq!(ty("hurt").as_deref(), Some("fn(i32)"), "{compiler}");
        assert_eq!(ty("hp").as_deref(), Some("fn() -> i64"), "{compiler}");
        let bag_used = module.type_of("bag_used").unwrap();
        let (table, id) = bag_used.view();
        assert_eq!(table.display(id), "fn(*struct bag) -> i64");
        let bag = table.records_reached(id)[0];
        assert_eq!(
            table.describe_record(bag).unwrap(),
            "struct bag { items: [struct item; 3] @0, used: i32 @24 } (28 bytes, align 4)",
            "{compiler}"
        );
        let state = module.type_of("state").unwrap();
        let (table, id) = state.view();
        assert_eq!(
            table.describe_record(id).unwrap(),
            "struct state { hp: i32 @0, mp: i32 @4 } (8 bytes, align 4)",
            "{compiler}"
        );
        let wide = module.type_of("wide").unwrap();
        let (table, id) = wide.view();
        assert_eq!(
            table.describe_record(id).unwrap(),
            "struct wide { a: i64 @0, b: i32 @8 } (16 bytes, align 8)",
            "{compiler}"
        );
        // What the caller expects, checked against it.
        // SAFETY: `long add(long, long)`.
        let add = unsafe { module.get_checked::<extern "C" fn(i64, i64) -> i64>("add") }.unwrap();
        assert_eq!(add(40, 2), 42);
        // SAFETY: refused before it is called.
        let wrong = unsafe { module.get_checked::<extern "C" fn(i32, i64) -> i64>("add") };
        assert!(
            matches!(wrong, Err(LoadError::TypeMismatch { .. })),
            "{compiler}"
        );
    }
    // Without -g there is nothing to check.
    let plain = build_with(dir.path(), &Toolchain::system().c, "plain", LIB, &["-O1"]);
    // SAFETY: as above.
    let module =
        unsafe { simple_loader::load(plain.as_path(), &LoadOptions::default(), None) }.unwrap();
    assert!(module.type_of("add").is_none());
    // SAFETY: not checked, and right.
    unsafe { module.get_checked::<extern "C" fn(i32, i64) -> i64>("add") }.unwrap();
}

#[test]
fn a_reload_that_changes_a_linked_function_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "v1", LIB);
    // `add` now takes an int: callers passing longs would be wrong.
    let v2 = build(
        dir.path(),
        "v2",
        &LIB.replace("long add(long a, long b)", "long add(long a, int b)"),
    );
    // The same types, other code: accepted.
    let v3 = build(
        dir.path(),
        "v3",
        &LIB.replace("return a + b;", "return b + a + 0 * state.mp;"),
    );
    let path = dir.path().join("lib.smf");
    install(&v1, &path);
    let registry = Registry::new();
    // SAFETY: our own module, replaced by renaming.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: `long add(long, long)`.
    let add = unsafe { registry.current::<extern "C" fn(i64, i64) -> i64>(&path, "add") }.unwrap();
    assert_eq!((*add.pin())(2, 3), 5);
    // A type that reaches an array of structs, kept for the check of every reload.
    // SAFETY: `long bag_used(struct bag *)`.
    let bag_used =
        unsafe { registry.current::<extern "C" fn(*const u8) -> i64>(&path, "bag_used") }.unwrap();
    let bag = [
        0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0,
    ];
    assert_eq!((*bag_used.pin())(bag.as_ptr()), 9);
    install(&v2, &path);
    // SAFETY: as above.
    let e = unsafe { registry.reload(&path) }.unwrap_err().to_string();
    assert!(
        e.contains("cannot replace `add`")
            && e.contains("its type changed from fn(i64, i64) -> i64 to fn(i64, i32) -> i64")
            && e.contains("parameter 2: i64 became i32"),
        "{e}"
    );
    assert_eq!(registry.modules()[0].version, 1, "nothing switched");
    assert_eq!((*add.pin())(2, 3), 5);
    install(&v3, &path);
    // SAFETY: as above.
    assert_eq!(unsafe { registry.reload(&path) }.unwrap().version, 2);
    assert_eq!((*add.pin())(2, 3), 5);
    assert_eq!((*bag_used.pin())(bag.as_ptr()), 9);
}

#[test]
fn an_importers_function_type_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "v1", LIB);
    let v2 = build(
        dir.path(),
        "v2",
        &LIB.replace("void hurt(int by)", "void hurt(long by)"),
    );
    let app = build(
        dir.path(),
        "app",
        "extern void hurt(int by);\nextern long hp(void);\nlong app_hit(void) { hurt(1); return hp(); }\n",
    );
    let path = dir.path().join("lib.smf");
    install(&v1, &path);
    let registry = Registry::new();
    // SAFETY: our own modules.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: as above.
    let app = unsafe { registry.load(&app) }.unwrap();
    // SAFETY: `long app_hit(void)`.
    let hit = unsafe { app.get::<extern "C" fn() -> i64>("app_hit") }.unwrap();
    assert_eq!(hit(), 9);
    install(&v2, &path);
    // No handle of the host's: the importing module is linked to `hurt`.
    // SAFETY: as above.
    let e = unsafe { registry.reload(&path) }.unwrap_err().to_string();
    assert!(
        e.contains("cannot replace `hurt`") && e.contains("fn(i32) to fn(i64)"),
        "{e}"
    );
    assert_eq!(hit(), 8, "the old version still runs");
}

#[test]
fn a_type_change_goes_through_when_reported() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "v1", LIB);
    let v2 = build(
        dir.path(),
        "v2",
        &LIB.replace("long add(long a, long b)", "long add(long a, int b)"),
    );
    let path = dir.path().join("lib.smf");
    install(&v1, &path);
    let registry =
        Registry::with_options(LoadOptions::default().with_type_changes(TypeChanges::Report));
    // SAFETY: our own module.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: `long add(long, long)`, then `long add(long, int)`: called with small values.
    let add = unsafe { registry.current::<extern "C" fn(i64, i64) -> i64>(&path, "add") }.unwrap();
    install(&v2, &path);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.type_changes.len(), 1, "{report}");
    assert_eq!(report.type_changes[0].0, "add");
    assert!(report.to_string().contains("type changed: add"), "{report}");
    assert_eq!((*add.pin())(2, 3), 5);
}

#[test]
fn kept_data_follows_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "v1", LIB);
    // The fields of `state` swap places (same size): copying its bytes would put hp in mp.
    let swapped = build(
        dir.path(),
        "swapped",
        &LIB.replace(
            "struct state { int hp; int mp; };",
            "struct state { int mp; int hp; };",
        ),
    );
    let path = dir.path().join("lib.smf");
    install(&v1, &path);
    let registry = Registry::new();
    // SAFETY: our own module.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: the C declarations above.
    let hurt = unsafe { registry.current::<extern "C" fn(i32)>(&path, "hurt") }.unwrap();
    // SAFETY: as above.
    let hp = unsafe { registry.current::<extern "C" fn() -> i64>(&path, "hp") }.unwrap();
    (*hurt.pin())(3);
    assert_eq!((*hp.pin())(), 7);
    install(&swapped, &path);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    let reason = report
        .reset
        .iter()
        .find(|(name, _)| name == "state")
        .map(|(_, why)| why.clone())
        .unwrap_or_else(|| panic!("state was not reset: {report}"));
    assert!(
        reason.contains(
            "struct state: field 0 hp: i32 at offset 0 became field 0 mp: i32 at offset 0"
        ),
        "{reason}"
    );
    assert!(report.kept.contains(&"wide".to_owned()), "{report}");
    assert_eq!((*hp.pin())(), 10, "fresh, not the old mp");
}

#[test]
fn a_struct_that_gained_fields_at_its_end_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = build(dir.path(), "v1", LIB);
    // `wide` gains `c` where its tail padding was (offset 12), and `state` gains `gold`.
    let grown =
        LIB.replace(
            "struct wide { long a; int b; };",
            "struct wide { long a; int b; int c; };",
        )
        .replace(
            "struct wide wide = { 1, 2 };",
            "struct wide wide = { 1, 2, 5 };",
        )
        .replace(
            "struct state { int hp; int mp; };",
            "struct state { int hp; int mp; long gold; };",
        )
        .replace(
            "{ .hp = 10, .mp = 20 }",
            "{ .hp = 10, .mp = 20, .gold = 99 }",
        ) + "long get_c(void) { return wide.c; }\nlong gold(void) { return state.gold; }\n";
    let v2 = build(dir.path(), "v2", &grown);
    let path = dir.path().join("lib.smf");
    install(&v1, &path);
    let registry = Registry::new();
    // SAFETY: our own module.
    unsafe { registry.load(&path) }.unwrap();
    // SAFETY: the C declarations above.
    unsafe {
        (*registry
            .current::<extern "C" fn(i32)>(&path, "hurt")
            .unwrap()
            .pin())(3);
        (*registry
            .current::<extern "C" fn(i64)>(&path, "set_a")
            .unwrap()
            .pin())(100);
    }
    install(&v2, &path);
    // SAFETY: as above.
    let report = unsafe { registry.reload(&path) }.unwrap();
    for name in ["state", "wide"] {
        assert!(report.kept.contains(&name.to_owned()), "{name}: {report}");
    }
    let module = registry.get(&path).unwrap();
    // SAFETY: the C declarations above.
    let call = |name: &str| unsafe { module.get::<extern "C" fn() -> i64>(name).unwrap()() };
    assert_eq!(call("hp"), 7, "old field kept");
    assert_eq!(call("gold"), 99, "new field initialised");
    assert_eq!(call("get_a"), 100, "old field kept");
    assert_eq!(
        call("get_c"),
        5,
        "the old tail padding was not copied over the new field"
    );
}

/// Bit-fields, unions, variadic functions, function pointers, qualifiers: gcc and clang
/// describe them differently in DWARF (clang 14 writes DWARF 2 bit offsets), and the
/// packer must record the same types from both.
#[test]
fn gcc_and_clang_give_the_same_types() {
    const SOURCE: &str = r#"
struct node { struct node *next; int value; unsigned flags : 3; unsigned char tag[4]; };
struct node head;
union u { int i; double d; } shared;
typedef const struct node *list_t;
long sum(list_t list, ...) { long s = 0; for (; list; list = list->next) s += list->value; return s; }
double scale(double x, float y, _Bool z) { return z ? x * y : x; }
int (*callback)(const char *, unsigned long);
"#;
    let Some(clang) = Toolchain::clang() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let describe = |compiler: &str, name: &str| {
        let path = build_with(dir.path(), compiler, name, SOURCE, &["-g", "-O1"]);
        // SAFETY: our own module, without constructors.
        let module =
            unsafe { simple_loader::load(path.as_path(), &LoadOptions::default(), None) }.unwrap();
        ["sum", "scale", "head", "shared", "callback"]
            .iter()
            .map(|symbol| {
                let ty = module
                    .type_of(symbol)
                    .unwrap_or_else(|| panic!("{compiler}: {symbol}"));
                let (table, id) = ty.view();
                table
                    .describe_record(id)
                    .unwrap_or_else(|| table.display(id))
            })
            .collect::<Vec<_>>()
    };
    let gcc = describe(&Toolchain::system().c, "gcc");
    assert_eq!(
        gcc,
        [
            "fn(*struct node, ...) -> i64",
            "fn(f64, f32, bool) -> f64",
            "struct node { next: *struct node @0, value: i32 @8, flags: u32 @12.0:3, tag: [u8; 4] @13 } (24 bytes, align 8)",
            "union u { i: i32 @0, d: f64 @0 } (8 bytes, align 8)",
            "*fn(*i8, u64) -> i32",
        ]
    );
    assert_eq!(describe(&clang.c, "clang"), gcc);
}
