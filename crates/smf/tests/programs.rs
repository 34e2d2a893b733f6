//! Each C program under tests/programs/ is built twice from the same objects: linked
//! natively by the compiler, and packed into an .sme run by `smf run`. Both must print the
//! same bytes and exit with the same status. A program whose build.txt says `compiler: c++`
//! is C++: its `.cpp` files are compiled and linked with the C++ compiler.
//!
//! Every program is built by the system compiler (`$CC`/`$CXX`, else `cc`/`c++`) at -O0,
//! -O2, -O3 and -Os (and, for the thread-local program, with each TLS model; TLS descriptors by
//! gcc, the compiler that has them), and by
//! clang/clang++ at -O0 and -O2 when they are on PATH (the `clang_*` tests print a note and
//! pass without building anything otherwise; `.ci/run` installs clang and sets
//! `SMF_REQUIRE_CLANG` so that there they cannot be skipped). The `mixed_*` tests put objects
//! of both compilers into one module.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use common::*;

/// Builds program `name` with `opt` (optimisation and any extra flags, split at spaces),
/// compiling its n-th source with `toolchains[n % len]` and linking natively with the first,
/// and compares the native run with `smf run`.
fn native_vs_smf(toolchains: &[&Toolchain], name: &str, opt: &str) {
    let dir = program_dir(name);
    let spec = build_spec(&dir);
    let work = tempfile::tempdir().unwrap();
    let mut flags: Vec<&str> = opt.split_whitespace().collect();
    flags.extend(spec.cflags.iter().map(String::as_str));
    let cxx = spec
        .extra
        .iter()
        .any(|(k, v)| k == "compiler" && v == "c++");
    let sources = if cxx {
        sources_with(&dir, "cpp")
    } else {
        c_sources(&dir)
    };
    let objects: Vec<_> = sources
        .iter()
        .zip(toolchains.iter().cycle())
        .flat_map(|(source, toolchain)| {
            let source = std::slice::from_ref(source);
            if cxx {
                compile_cxx_with(&toolchain.cxx, source, work.path(), &flags)
            } else {
                compile_with(&toolchain.c, source, work.path(), &flags)
            }
        })
        .collect();

    // A clang test must not pass by having built nothing with clang.
    for (object, toolchain) in objects.iter().zip(toolchains.iter().cycle()) {
        if toolchain.c == "clang" {
            let bytes = std::fs::read(object).unwrap();
            assert!(
                bytes.windows(13).any(|w| w == b"clang version"),
                "{} was not built by clang",
                object.display()
            );
        }
    }

    let native = work.path().join("native");
    let linker = if cxx {
        &toolchains[0].cxx
    } else {
        &toolchains[0].c
    };
    let mut link = std::process::Command::new(linker);
    link.arg("-o").arg(&native).args(&objects).args(&spec.libs);
    check(link);

    let module = work.path().join(format!("{name}.sme"));
    let mut pack_args = vec!["--entry", "main"];
    for lib in &spec.needed {
        pack_args.extend(["--needed", lib.as_str()]);
    }
    // `pack-libgcc: yes`: pack the compiler's libgcc.a too, which its native link takes
    // statically (`target_clones` resolvers call its `__cpu_indicator_init`, which
    // libgcc_s.so.1 exports only under a non-default version, out of `dlsym`'s reach).
    let libgcc;
    if spec
        .extra
        .iter()
        .any(|(k, v)| k == "pack-libgcc" && v == "yes")
    {
        let mut print = std::process::Command::new(&toolchains[0].c);
        print.arg("-print-libgcc-file-name");
        libgcc = String::from_utf8(check(print).stdout).unwrap();
        pack_args.push(libgcc.trim());
    }
    pack(&objects, &module, &pack_args);

    let expected = common::target(&native).args(&spec.args).output().unwrap();
    let actual = smf()
        .arg("run")
        .arg(&module)
        .args(&spec.args)
        .output()
        .unwrap();
    assert_eq!(
        expected.status.code(),
        Some(spec.exit),
        "native {name} {opt} exit status (build.txt says {}); built with {toolchains:?}",
        spec.exit
    );
    assert_eq!(
        String::from_utf8_lossy(&actual.stdout),
        String::from_utf8_lossy(&expected.stdout),
        "stdout of {name} at {opt} differs between smf run and the native build \
         (built with {toolchains:?}); smf stderr:\n{}",
        String::from_utf8_lossy(&actual.stderr)
    );
    assert_eq!(
        actual.status.code(),
        expected.status.code(),
        "exit status of {name} at {opt} (built with {toolchains:?}); smf stderr:\n{}",
        String::from_utf8_lossy(&actual.stderr)
    );
}

macro_rules! programs {
    ($($test:ident => $name:literal, $opt:literal;)*) => {
        $(#[test] fn $test() { native_vs_smf(&[&Toolchain::system()], $name, $opt); })*
    };
}

/// Built by gcc, whatever `$CC` says: for flags only gcc takes (clang 14 has no
/// `-mtls-dialect=gnu2` on x86-64). `$CC` itself if it is a gcc (the cross compiler
/// `aarch64-linux-gnu-gcc`).
macro_rules! gcc_programs {
    ($($test:ident => $name:literal, $opt:expr;)*) => {
        $(#[test] fn $test() {
            let system = Toolchain::system();
            let gcc = if system.c.ends_with("gcc") {
                system
            } else {
                Toolchain {
                    c: "gcc".into(),
                    cxx: "g++".into(),
                }
            };
            native_vs_smf(&[&gcc], $name, &$opt);
        })*
    };
}

/// Built by clang/clang++ alone.
macro_rules! clang_programs {
    ($($test:ident => $name:literal, $opt:literal;)*) => {
        $(#[test]
        #[cfg_attr(no_clang, ignore = "skipped: clang not found")]
        #[cfg_attr(cross_target, ignore = "clang builds for the build machine, not the target")]
        fn $test() {
            if let Some(clang) = Toolchain::clang() {
                native_vs_smf(&[&clang], $name, $opt);
            }
        })*
    };
}

/// Sources alternately built by the system compiler and by clang, linked into one module.
macro_rules! mixed_programs {
    ($($test:ident => $name:literal, $opt:literal;)*) => {
        $(#[test]
        #[cfg_attr(no_clang, ignore = "skipped: clang not found")]
        #[cfg_attr(cross_target, ignore = "clang builds for the build machine, not the target")]
        fn $test() {
            if let Some(clang) = Toolchain::clang() {
                native_vs_smf(&[&Toolchain::system(), &clang], $name, $opt);
            }
        })*
    };
}

programs! {
    multi_o0 => "multi", "-O0";
    multi_o2 => "multi", "-O2";
    multi_os => "multi", "-Os";
    multi_o3 => "multi", "-O3";
    libc_o0 => "libc", "-O0";
    libc_o2 => "libc", "-O2";
    libc_os => "libc", "-Os";
    libc_o3 => "libc", "-O3";
    tables_o0 => "tables", "-O0";
    tables_o2 => "tables", "-O2";
    tables_os => "tables", "-Os";
    tables_o3 => "tables", "-O3";
    control_o0 => "control", "-O0";
    control_o2 => "control", "-O2";
    control_os => "control", "-Os";
    control_o3 => "control", "-O3";
    mathlib_o0 => "mathlib", "-O0";
    mathlib_o2 => "mathlib", "-O2";
    mathlib_os => "mathlib", "-Os";
    mathlib_o3 => "mathlib", "-O3";
    interp_o0 => "interp", "-O0";
    interp_o2 => "interp", "-O2";
    interp_os => "interp", "-Os";
    interp_o3 => "interp", "-O3";
    crossmod_native_link_o2 => "crossmod", "-O2";
    cxx_o0 => "cxx", "-O0";
    cxx_o2 => "cxx", "-O2";
    cxx_o3 => "cxx", "-O3";
    tls_o0 => "tls", "-O0";
    tls_o2 => "tls", "-O2";
    tls_os => "tls", "-Os";
    tls_o3 => "tls", "-O3";
    tls_initial_exec_o0 => "tls", "-O0 -ftls-model=initial-exec";
    tls_initial_exec_o2 => "tls", "-O2 -ftls-model=initial-exec";
    sections_o0 => "sections", "-O0";
    sections_o2 => "sections", "-O2";
    sections_o3 => "sections", "-O3";
    ifunc_o0 => "ifunc", "-O0";
    ifunc_o2 => "ifunc", "-O2";
    ifunc_os => "ifunc", "-Os";
    ifunc_no_plt_o2 => "ifunc", "-O2 -fno-plt";
}

gcc_programs! {
    tls_descriptors_o2 => "tls", format!("-O2 {TLS_DESCRIPTORS}");
    tls_descriptors_local_dynamic_o0 => "tls", format!("-O0 -ftls-model=local-dynamic {TLS_DESCRIPTORS}");
}

clang_programs! {
    clang_multi_o0 => "multi", "-O0";
    clang_multi_o2 => "multi", "-O2";
    clang_libc_o0 => "libc", "-O0";
    clang_libc_o2 => "libc", "-O2";
    clang_tables_o0 => "tables", "-O0";
    clang_tables_o2 => "tables", "-O2";
    clang_control_o0 => "control", "-O0";
    clang_control_o2 => "control", "-O2";
    clang_mathlib_o0 => "mathlib", "-O0";
    clang_mathlib_o2 => "mathlib", "-O2";
    clang_interp_o0 => "interp", "-O0";
    clang_interp_o2 => "interp", "-O2";
    clang_crossmod_native_link_o2 => "crossmod", "-O2";
    clang_cxx_o0 => "cxx", "-O0";
    clang_cxx_o2 => "cxx", "-O2";
    clang_tls_o0 => "tls", "-O0";
    clang_tls_o2 => "tls", "-O2";
    // Every call to an import, __tls_get_addr included, through the GOT instead of a stub.
    clang_tls_o2_no_plt => "tls", "-O2 -fno-plt";
    // clang 14 has no -mtls-dialect=gnu2 for x86-64; initial-exec it has.
    clang_tls_initial_exec_o0 => "tls", "-O0 -ftls-model=initial-exec";
    clang_tls_initial_exec_o2 => "tls", "-O2 -ftls-model=initial-exec";
    clang_sections_o2 => "sections", "-O2";
}

mixed_programs! {
    // Common symbols, weak definitions and constructor priorities across the two compilers.
    mixed_multi_o2 => "multi", "-O2";
    // COMDAT groups (templates, inline functions, vtables) of g++ and clang++ merged.
    mixed_cxx_o2 => "cxx", "-O2";
}
