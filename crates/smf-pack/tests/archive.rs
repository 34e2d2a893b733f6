//! Static archives as inputs: the members a link takes (GNU ld's rule), `--whole-archive`
//! through `archive::all_members`, and the members the packer refuses or skips. The archives
//! are made at test time with `ar rcs` from C compiled by the system compiler.
//!
//! Not built for Windows: the tests compile their inputs with the system C compiler (`cc`,
//! a Linux program under Wine, whose exit status a Windows process cannot get). The packer's
//! own unit tests run for Windows (README, "Windows").
#![cfg(unix)]

mod util;

use std::path::Path;
use std::process::Command;

use smf_pack::{Input, Options, archive};
use util::{TempDir, compile, pack, pack_error, parse};

/// Writes each input into `dir` and makes `dir/name` from them with `ar rcs`.
fn ar(dir: &Path, name: &str, members: &[Input]) -> Input {
    let archive = dir.join(name);
    let mut command = Command::new("ar");
    command.arg("rcs").arg(&archive);
    for member in members {
        let path = dir.join(&member.name);
        std::fs::write(&path, &member.data).expect("write member");
        command.arg(&path);
    }
    let output = command.output().expect("run ar");
    assert!(
        output.status.success(),
        "ar failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Input {
        name: name.to_owned(),
        data: std::fs::read(&archive).expect("read archive"),
    }
}

fn symbol_names(module: &[u8]) -> Vec<String> {
    parse(module)
        .symbols()
        .to_vec()
        .unwrap()
        .iter()
        .map(|s| s.name.to_owned())
        .collect()
}

fn import_names(module: &[u8]) -> Vec<String> {
    parse(module)
        .imports()
        .iter()
        .map(|i| i.name.to_owned())
        .collect()
}

/// A chain a -> b -> c over three members, and a member defining an unused function that
/// references a symbol nothing defines.
fn chain_archive(dir: &Path) -> Input {
    ar(
        dir,
        "libchain.a",
        &[
            compile(
                "a.o",
                "int chain_b(int); int chain_a(int x) { return chain_b(x) + 1; }",
                &[],
            ),
            compile(
                "b.o",
                "int chain_c(int); int chain_b(int x) { return chain_c(x) * 2; }",
                &[],
            ),
            compile("c.o", "int chain_c(int x) { return x + 40; }", &[]),
            compile(
                "unused.o",
                "int nowhere_defined(void); int unused_fn(void) { return nowhere_defined(); }",
                &[],
            ),
        ],
    )
}

fn main_calling_a() -> Input {
    compile(
        "main.o",
        "int chain_a(int); int entry(void) { return chain_a(1); }",
        &[],
    )
}

#[test]
fn only_members_that_define_undefined_symbols_are_taken() {
    let dir = TempDir::new();
    let module = pack(&[main_calling_a(), chain_archive(&dir.0)]);
    let symbols = symbol_names(&module);
    for taken in ["chain_a", "chain_b", "chain_c"] {
        assert!(
            symbols.iter().any(|s| s == taken),
            "{taken} missing: {symbols:?}"
        );
    }
    assert!(
        !symbols.iter().any(|s| s == "unused_fn"),
        "unused.o was taken: {symbols:?}"
    );
    assert!(
        !import_names(&module).iter().any(|s| s == "nowhere_defined"),
        "unused.o's reference became an import"
    );
}

#[test]
fn an_archive_before_the_objects_that_need_it_is_still_searched() {
    let dir = TempDir::new();
    let module = pack(&[chain_archive(&dir.0), main_calling_a()]);
    assert!(symbol_names(&module).iter().any(|s| s == "chain_c"));
    assert!(!symbol_names(&module).iter().any(|s| s == "unused_fn"));
}

#[test]
fn members_are_taken_across_archives_in_any_order() {
    // libfirst's member needs libsecond's, whose member needs libfirst's other member: ld
    // needs a group (or libfirst twice) for this; the packer searches all archives again.
    let dir = TempDir::new();
    let first = ar(
        &dir.0,
        "libfirst.a",
        &[
            compile(
                "f1.o",
                "int s1(void); int f1(void) { return s1() + 1; }",
                &[],
            ),
            compile("f2.o", "int f2(void) { return 7; }", &[]),
        ],
    );
    let second = ar(
        &dir.0,
        "libsecond.a",
        &[compile(
            "s1.o",
            "int f2(void); int s1(void) { return f2(); }",
            &[],
        )],
    );
    let main = compile(
        "main.o",
        "int f1(void); int entry(void) { return f1(); }",
        &[],
    );
    let module = pack(&[main, first, second]);
    let symbols = symbol_names(&module);
    for taken in ["f1", "f2", "s1"] {
        assert!(symbols.iter().any(|s| s == taken), "{taken}: {symbols:?}");
    }
}

#[test]
fn a_weak_reference_takes_no_member() {
    let dir = TempDir::new();
    let archive = ar(
        &dir.0,
        "libweak.a",
        &[compile("w.o", "int maybe(void) { return 3; }", &[])],
    );
    let main = compile(
        "main.o",
        "extern int maybe(void) __attribute__((weak));\n\
         int entry(void) { return maybe ? maybe() : 0; }",
        &[],
    );
    let module = pack(&[main, archive]);
    assert!(!symbol_names(&module).iter().any(|s| s == "maybe"));
}

#[test]
fn of_two_members_defining_a_symbol_only_the_first_is_taken() {
    let dir = TempDir::new();
    let archive = ar(
        &dir.0,
        "libdup.a",
        &[
            compile(
                "one.o",
                "int dup(void) { return 1; } int only_one(void) { return 1; }",
                &[],
            ),
            compile(
                "two.o",
                "int dup(void) { return 2; } int only_two(void) { return 2; }",
                &[],
            ),
        ],
    );
    let main = compile(
        "main.o",
        "int dup(void); int entry(void) { return dup(); }",
        &[],
    );
    // Both taken would be a duplicate definition of `dup`.
    let module = pack(&[main, archive]);
    let symbols = symbol_names(&module);
    assert!(symbols.iter().any(|s| s == "only_one"));
    assert!(!symbols.iter().any(|s| s == "only_two"));
}

#[test]
fn whole_archive_takes_every_member() {
    let dir = TempDir::new();
    let archive = chain_archive(&dir.0);
    let mut inputs = vec![main_calling_a()];
    inputs.extend(archive::all_members(&archive.name, &archive.data).expect("members"));
    assert_eq!(
        inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        [
            "main.o",
            "libchain.a(a.o)",
            "libchain.a(b.o)",
            "libchain.a(c.o)",
            "libchain.a(unused.o)"
        ]
    );
    let module = pack(&inputs);
    assert!(symbol_names(&module).iter().any(|s| s == "unused_fn"));
    assert!(import_names(&module).iter().any(|s| s == "nowhere_defined"));
}

#[test]
fn members_that_are_no_object_are_skipped() {
    let dir = TempDir::new();
    let notes = Input {
        name: "notes.txt".into(),
        data: b"not an object\n".to_vec(),
    };
    let archive = ar(
        &dir.0,
        "libnotes.a",
        &[
            notes,
            compile("c.o", "int chain_a(int x) { return x; }", &[]),
        ],
    );
    let members = archive::all_members(&archive.name, &archive.data).expect("members");
    assert_eq!(
        members.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["libnotes.a(c.o)"]
    );
    pack(&[main_calling_a(), archive]);
}

#[test]
fn llvm_bitcode_members_are_refused_naming_archive_and_member() {
    let dir = TempDir::new();
    let bitcode = Input {
        name: "lto.o".into(),
        data: b"BC\xc0\xde\x35\x14\x00\x00\x05\x00\x00\x00".to_vec(),
    };
    let archive = ar(&dir.0, "liblto.a", &[bitcode]);
    let error = pack_error(&[main_calling_a(), archive], &Options::default());
    assert!(
        error.starts_with("liblto.a(lto.o): is LLVM bitcode"),
        "{error}"
    );
}

#[test]
fn a_taken_member_is_checked_like_any_object_and_named_in_messages() {
    // Compiled without -fPIC, the address of `counter` is an absolute 32-bit one
    // (R_X86_64_32), refused when the member is linked.
    let dir = TempDir::new();
    let archive = ar(
        &dir.0,
        "libnopic.a",
        &[util::compile_with(
            "cc",
            "c",
            "nopic.o",
            "int counter; long chain_a(int x) { return (long)&counter + x; }",
            &["-fno-pic", "-O2", "-mcmodel=small"],
        )],
    );
    let error = pack_error(&[main_calling_a(), archive], &Options::default());
    assert!(error.starts_with("libnopic.a(nopic.o): "), "{error}");
    assert!(error.contains("recompile with -fPIC"), "{error}");
}

#[test]
fn thin_archives_are_refused() {
    let error = pack_error(
        &[
            main_calling_a(),
            Input {
                name: "libthin.a".into(),
                data: b"!<thin>\n".to_vec(),
            },
        ],
        &Options::default(),
    );
    assert!(error.starts_with("libthin.a: is a thin archive"), "{error}");
}

#[test]
fn a_member_giving_a_common_symbol_a_value_is_taken_as_ld_does() {
    // GNU ld takes a member that defines, with a value, a symbol the objects only have as
    // common (`int x;` under -fcommon); the common one then resolves to the member's.
    let dir = TempDir::new();
    let archive = ar(
        &dir.0,
        "libvalue.a",
        &[compile(
            "value.o",
            "int shared_x = 5; int marker(void) { return 1; }",
            &[],
        )],
    );
    let main = compile(
        "main.o",
        "int shared_x; int entry(void) { return shared_x; }",
        &["-fcommon"],
    );
    let module = pack(&[main, archive]);
    assert!(symbol_names(&module).iter().any(|s| s == "marker"));
}

#[test]
fn a_common_symbol_takes_no_member_that_only_has_it_common_too() {
    let dir = TempDir::new();
    let archive = ar(
        &dir.0,
        "libcommon.a",
        &[compile(
            "common.o",
            "int shared_y; int marker(void) { return 1; }",
            &["-fcommon"],
        )],
    );
    let main = compile(
        "main.o",
        "int shared_y; int entry(void) { return shared_y; }",
        &["-fcommon"],
    );
    let module = pack(&[main, archive]);
    assert!(!symbol_names(&module).iter().any(|s| s == "marker"));
}
