//! Legacy `.init`/`.fini` sections run as glibc runs a program's `DT_INIT`/`DT_FINI`: the
//! fragments of all inputs concatenated into one function, `.init` before the constructors and
//! `.fini` after the destructors. Each case is linked natively by gcc (with crti.o/crtn.o)
//! and packed by smf, and both runs must print the same.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const FIRST: &str = r#"
#include <stdio.h>
#if defined(__x86_64__)
#define CALL(f) "call " #f "@PLT"
#else
#define CALL(f) "bl " #f
#endif
void first_init(void) { puts("first .init"); }
void first_fini(void) { puts("first .fini"); }
__asm__(".section .init,\"ax\",@progbits\n\t" CALL(first_init) "\n\t.text");
__asm__(".section .fini,\"ax\",@progbits\n\t" CALL(first_fini) "\n\t.text");
__attribute__((constructor)) static void ctor(void) { puts("constructor"); }
__attribute__((destructor)) static void dtor(void) { puts("destructor"); }
int main(void) { puts("main"); return 0; }
"#;

/// Its fragments are 16-byte aligned: the gap before each must fall through to it.
const SECOND: &str = r#"
#include <stdio.h>
#if defined(__x86_64__)
#define CALL(f) "call " #f "@PLT"
#else
#define CALL(f) "bl " #f
#endif
void second_init(void) { puts("second .init"); }
void second_fini(void) { puts("second .fini"); }
__asm__(".section .init,\"ax\",@progbits\n\t.p2align 4\n\t" CALL(second_init) "\n\t.text");
__asm__(".section .fini,\"ax\",@progbits\n\t.p2align 4\n\t" CALL(second_fini) "\n\t.text");
"#;

/// Links `objects` natively and packs them, runs both, and returns their output, which
/// must be the same.
fn run_both(dir: &Path, objects: &[PathBuf]) -> String {
    let native = dir.join("native");
    let mut link = cc();
    link.args(objects).arg("-o").arg(&native);
    check(link);
    let module = dir.join("module.sme");
    pack(objects, &module, &["--entry", "main"]);
    let expected = String::from_utf8(check(common::target(&native)).stdout).unwrap();
    let mut run = smf();
    run.arg("run").arg(&module);
    let got = String::from_utf8(check(run).stdout).unwrap();
    assert_eq!(got, expected);
    got
}

#[test]
fn init_and_fini_fragments_run_as_one_function_around_constructors() {
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<PathBuf> = [("first.c", FIRST), ("second.c", SECOND)]
        .iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let objects = compile(&sources, dir.path(), &[]);
    assert_eq!(
        run_both(dir.path(), &objects),
        "first .init\nsecond .init\nconstructor\nmain\ndestructor\nfirst .fini\nsecond .fini\n"
    );
}

/// Debian's libcrypto.a (package libssl-dev, which `.ci/run` installs): its x86-64 CPUID
/// member has a `.init` fragment, `call OPENSSL_cpuid_setup`, the only caller of the function
/// that fills `OPENSSL_ia32cap_P`.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "x86-64 only: libcrypto.a has this .init fragment on x86-64; on AArch64 its \
              capability setup is a constructor"
)]
fn libcrypto_cpuid_setup_runs_from_its_init_fragment() {
    let archive = Path::new("/usr/lib/x86_64-linux-gnu/libcrypto.a");
    assert!(
        archive.exists(),
        "{} is missing: install libssl-dev (.ci/run does)",
        archive.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let members = String::from_utf8(
        check({
            let mut ar = Command::new("ar");
            ar.arg("t").arg(archive);
            ar
        })
        .stdout,
    )
    .unwrap();
    // The CPUID assembly, the C half of the setup, and the ctype helpers the setup calls.
    let wanted: Vec<&str> = ["x86_64cpuid.o", "-cpuid.o", "-ctype.o"]
        .iter()
        .map(|suffix| {
            members
                .lines()
                .find(|m| m.ends_with(suffix))
                .unwrap_or_else(|| panic!("no member *{suffix} in {}", archive.display()))
        })
        .collect();
    let mut extract = Command::new("ar");
    extract
        .current_dir(dir.path())
        .arg("x")
        .arg(archive)
        .args(&wanted);
    check(extract);
    let main = dir.path().join("main.c");
    std::fs::write(
        &main,
        r#"
#include <stdio.h>
extern unsigned int OPENSSL_ia32cap_P[4];
int main(void) {
    printf("set: %d\ncap: %08x %08x\n", OPENSSL_ia32cap_P[0] != 0,
           OPENSSL_ia32cap_P[0], OPENSSL_ia32cap_P[1]);
    return 0;
}
"#,
    )
    .unwrap();
    let mut objects = compile(&[main], dir.path(), &[]);
    objects.extend(wanted.iter().map(|m| dir.path().join(m)));
    let output = run_both(dir.path(), &objects);
    assert!(output.starts_with("set: 1\n"), "{output}");
}
