//! Each C program under tests/programs/ is built twice from the same objects: linked
//! natively by the system compiler, and packed into an .sme run by `smf run`. Both must
//! print the same bytes and exit with the same status, at -O0, -O2 and -Os (and, for the
//! thread-local program, with each TLS model and dialect). A program whose
//! build.txt says `compiler: c++` is C++: its `.cpp` files are compiled and linked with `c++`.

mod common;

use common::*;

fn native_vs_smf(name: &str, opt: &str) {
    let dir = program_dir(name);
    let spec = build_spec(&dir);
    let work = tempfile::tempdir().unwrap();
    let mut flags: Vec<&str> = opt.split_whitespace().collect();
    flags.extend(spec.cflags.iter().map(String::as_str));
    let cxx = spec
        .extra
        .iter()
        .any(|(k, v)| k == "compiler" && v == "c++");
    let objects = if cxx {
        compile_cxx(&sources_with(&dir, "cpp"), work.path(), &flags)
    } else {
        compile(&c_sources(&dir), work.path(), &flags)
    };

    let native = work.path().join("native");
    let mut link = if cxx { cxx_compiler() } else { cc() };
    link.arg("-o").arg(&native).args(&objects).args(&spec.libs);
    check(link);

    let module = work.path().join(format!("{name}.sme"));
    let mut pack_args = vec!["--entry", "main"];
    for lib in &spec.needed {
        pack_args.extend(["--needed", lib.as_str()]);
    }
    pack(&objects, &module, &pack_args);

    let expected = std::process::Command::new(&native)
        .args(&spec.args)
        .output()
        .unwrap();
    let actual = smf()
        .arg("run")
        .arg(&module)
        .args(&spec.args)
        .output()
        .unwrap();
    assert_eq!(
        expected.status.code(),
        Some(spec.exit),
        "native {name} {opt} exit status (build.txt says {})",
        spec.exit
    );
    assert_eq!(
        String::from_utf8_lossy(&actual.stdout),
        String::from_utf8_lossy(&expected.stdout),
        "stdout of {name} at {opt} differs between smf run and the native build; smf stderr:\n{}",
        String::from_utf8_lossy(&actual.stderr)
    );
    assert_eq!(
        actual.status.code(),
        expected.status.code(),
        "exit status of {name} at {opt}; smf stderr:\n{}",
        String::from_utf8_lossy(&actual.stderr)
    );
}

macro_rules! programs {
    ($($test:ident => $name:literal, $opt:literal;)*) => {
        $(#[test] fn $test() { native_vs_smf($name, $opt); })*
    };
}

programs! {
    multi_o0 => "multi", "-O0";
    multi_o2 => "multi", "-O2";
    multi_os => "multi", "-Os";
    libc_o0 => "libc", "-O0";
    libc_o2 => "libc", "-O2";
    libc_os => "libc", "-Os";
    tables_o0 => "tables", "-O0";
    tables_o2 => "tables", "-O2";
    tables_os => "tables", "-Os";
    control_o0 => "control", "-O0";
    control_o2 => "control", "-O2";
    control_os => "control", "-Os";
    mathlib_o0 => "mathlib", "-O0";
    mathlib_o2 => "mathlib", "-O2";
    mathlib_os => "mathlib", "-Os";
    interp_o0 => "interp", "-O0";
    interp_o2 => "interp", "-O2";
    interp_os => "interp", "-Os";
    crossmod_native_link_o2 => "crossmod", "-O2";
    cxx_o0 => "cxx", "-O0";
    cxx_o2 => "cxx", "-O2";
    tls_o0 => "tls", "-O0";
    tls_o2 => "tls", "-O2";
    tls_os => "tls", "-Os";
    tls_initial_exec_o0 => "tls", "-O0 -ftls-model=initial-exec";
    tls_initial_exec_o2 => "tls", "-O2 -ftls-model=initial-exec";
    tls_descriptors_o2 => "tls", "-O2 -mtls-dialect=gnu2";
    tls_descriptors_local_dynamic_o0 => "tls", "-O0 -ftls-model=local-dynamic -mtls-dialect=gnu2";
}
