//! Thread-locals aligned beyond what a static TLS block allows (docs/RUNTIME.md,
//! "Thread-local storage"): the dynamic models give every thread an aligned copy, as
//! natively; code that reaches them at a fixed offset from the thread pointer (initial-exec,
//! TLS descriptors) needs a static block, which glibc aligns to at most its thread pointers'
//! alignment for code loaded after start-up (64 bytes on x86-64, 32 on aarch64), so the packer
//! refuses more and says why.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// glibc's `TCB_ALIGNMENT` for the architecture the tests run on: the largest alignment of a
/// static TLS block of code loaded after start-up.
const STATIC_LIMIT: u32 = if cfg!(target_arch = "aarch64") {
    32
} else {
    64
};

/// Prints, from the main thread and two others in turn, the address of a thread-local
/// modulo its alignment and its contents before and after the thread writes its own.
const PROGRAM: &str = r#"
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static __thread char buf[256] __attribute__((aligned(ALIGN))) = "template";

static void *worker(void *arg) {
    const char *name = arg;
    printf("%s: &buf %% %d = %u, buf = %s\n", name, ALIGN,
           (unsigned)((uintptr_t)buf % ALIGN), buf);
    strcpy(buf, name);
    printf("%s: after writing, buf = %s\n", name, buf);
    return NULL;
}

int main(void) {
    worker("main");
    const char *names[] = {"thread 1", "thread 2"};
    for (int i = 0; i < 2; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker, (void *)names[i]) != 0)
            return 1;
        pthread_join(thread, NULL);
    }
    printf("main again: buf = %s\n", buf);
    return 0;
}
"#;

/// Compiles the program with `buf` aligned to `align` and `flags` (beside -fPIC).
fn build(work: &Path, align: u32, flags: &[&str]) -> Vec<PathBuf> {
    let source = work.join("aligned_tls.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let define = format!("-DALIGN={align}");
    let mut all = vec!["-O2", define.as_str()];
    all.extend(flags);
    // The dynamic models are the traditional ones unless a flag asks for descriptors.
    if !flags.contains(&TLS_DESCRIPTORS) {
        all.extend(TLS_TRADITIONAL);
    }
    compile(&[source], work, &all)
}

/// Runs the program natively and through `smf run`, asserts both print the same, and
/// returns what they printed.
fn native_vs_smf(align: u32, flags: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let objects = build(work.path(), align, flags);
    let native = work.path().join("native");
    let mut link = cc();
    link.arg("-o").arg(&native).args(&objects).arg("-pthread");
    check(link);
    let module = work.path().join("aligned_tls.sme");
    pack(&objects, &module, &["--entry", "main"]);

    let expected = check(common::target(&native));
    let actual = check({
        let mut run = smf();
        run.arg("run").arg(&module);
        run
    });
    let printed = String::from_utf8(actual.stdout).unwrap();
    assert_eq!(
        printed,
        String::from_utf8(expected.stdout).unwrap(),
        "smf run and the native build of a {align}-aligned thread-local with {flags:?}"
    );
    printed
}

fn assert_aligned_copies(printed: &str, align: u32) {
    for name in ["main", "thread 1", "thread 2"] {
        assert!(
            printed.contains(&format!("{name}: &buf % {align} = 0, buf = template\n")),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("{name}: after writing, buf = {name}\n")),
            "{printed}"
        );
    }
    assert!(printed.ends_with("main again: buf = main\n"), "{printed}");
}

#[test]
fn dynamic_models_give_every_thread_an_over_aligned_copy() {
    // The default model under -fPIC (local-dynamic for a static variable), and general-dynamic.
    for flags in [&[][..], &["-ftls-model=global-dynamic"]] {
        assert_aligned_copies(&native_vs_smf(128, flags), 128);
        assert_aligned_copies(&native_vs_smf(4096, flags), 4096);
    }
}

#[test]
fn static_models_work_up_to_the_limit() {
    for flags in [["-ftls-model=initial-exec"], [TLS_DESCRIPTORS]] {
        assert_aligned_copies(&native_vs_smf(STATIC_LIMIT, &flags), STATIC_LIMIT);
    }
}

#[test]
fn static_models_beyond_the_limit_are_refused_at_pack_time_with_the_cause() {
    for (flags, model) in [
        ("-ftls-model=initial-exec", "initial-exec accesses"),
        (TLS_DESCRIPTORS, "TLS descriptors"),
    ] {
        let work = tempfile::tempdir().unwrap();
        let objects = build(work.path(), 2 * STATIC_LIMIT, &[flags]);
        let output = smf()
            .arg("pack")
            .args(["--entry", "main", "-o"])
            .arg(work.path().join("aligned_tls.sme"))
            .args(&objects)
            .output()
            .unwrap();
        let (code, message) = failure(&output);
        assert_ne!(code, 0, "{flags}: packed: {message}");
        for part in [
            &format!(
                "aligned_tls.o: section .tdata: thread-locals aligned to {} bytes",
                2 * STATIC_LIMIT
            ),
            model,
            &format!("aligns to at most {STATIC_LIMIT} bytes"),
            &format!("align them to at most {STATIC_LIMIT} bytes"),
        ] {
            assert!(message.contains(part), "{flags}: {part:?} not in {message}");
        }
        assert!(!message.contains("GLIBC_TUNABLES"), "{message}");
    }
}
