//! Real C code for the benchmark: SQLite's amalgamation and Lua 5.4, from the sources the
//! `sqlite3-src` and `lua-src` crates ship. Those crates are dependencies of this one only so
//! that cargo downloads them (they are never built, see `Cargo.toml`); `cargo metadata` says
//! where their files are, and the benchmark compiles them with `cc -O2 -fPIC -c` like its
//! generated code.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::{self, Pair};

/// A real library: where its C files are, how they are compiled, and a function to look up.
#[derive(Debug, Clone)]
pub struct RealLibrary {
    /// `sqlite` or `lua`.
    pub name: &'static str,
    pub sources: Vec<PathBuf>,
    pub flags: &'static [&'static str],
    /// Shared libraries both builds name as needed (`-l:name` for the linker, `--needed`
    /// for the packer).
    pub needed: &'static [&'static str],
    /// The symbol looked up to end a load.
    pub entry: &'static str,
    /// A function of no arguments, called once on each side to check that both loaded
    /// libraries work and agree, and how its result is read.
    pub probe: (&'static str, Probe),
    /// The library and its version, for the benchmark's description.
    pub version: String,
}

/// How a probe function is called.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// `int f(void)`.
    Int,
    /// `double f(void *)`, called with null (Lua's `lua_version`).
    NumberOfNull,
}

impl Probe {
    /// Calls the function at `address` as `self` says.
    ///
    /// # Safety
    /// `address` must be a function of that signature, callable now.
    pub unsafe fn call(self, address: usize) -> f64 {
        match self {
            Probe::Int => {
                // SAFETY: the caller's contract.
                let f = unsafe {
                    std::mem::transmute::<usize, extern "C" fn() -> std::ffi::c_int>(address)
                };
                f64::from(f())
            }
            Probe::NumberOfNull => {
                // SAFETY: the caller's contract.
                let f = unsafe {
                    std::mem::transmute::<usize, extern "C" fn(*mut std::ffi::c_void) -> f64>(
                        address,
                    )
                };
                f(std::ptr::null_mut())
            }
        }
    }
}

/// The directory of the package `name` in the workspace's dependency graph, as `cargo
/// metadata` reports it (downloading it if cargo has not yet).
fn package_dir(name: &str) -> Result<(PathBuf, String), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == name))
        .ok_or_else(|| format!("cargo metadata lists no package {name}"))?;
    let manifest = package["manifest_path"]
        .as_str()
        .ok_or_else(|| format!("{name}: no manifest_path in cargo metadata"))?;
    let version = package["version"].as_str().unwrap_or("?").to_owned();
    let dir = Path::new(manifest)
        .parent()
        .ok_or_else(|| format!("{manifest}: no parent directory"))?;
    Ok((dir.to_owned(), version))
}

/// The library called `name` (`sqlite` or `lua`).
pub fn by_name(name: &str) -> Result<RealLibrary, String> {
    match name {
        "sqlite" => sqlite(),
        "lua" => lua(),
        _ => Err(format!("no real-code library named {name}")),
    }
}

/// SQLite's amalgamation (one C file of about 9 MB) from `sqlite3-src`.
pub fn sqlite() -> Result<RealLibrary, String> {
    let (dir, _) = package_dir("sqlite3-src")?;
    let source = dir.join("source/sqlite3.c");
    let header = std::fs::read_to_string(dir.join("source/sqlite3.h"))
        .map_err(|e| format!("{}: {e}", dir.join("source/sqlite3.h").display()))?;
    let version = header
        .lines()
        .find_map(|l| l.strip_prefix("#define SQLITE_VERSION "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| "?".into());
    Ok(RealLibrary {
        name: "sqlite",
        sources: vec![source],
        flags: &[],
        // SQLite calls no function of libm (its object's undefined symbols are all libc's):
        // `cc -shared -l:libm.so.6` drops it (`--as-needed`, which Debian's gcc passes), and a
        // module naming it would open and close it at every load and unload, about a quarter
        // of the module's load time (`perf`), which the shared library never pays.
        needed: &[],
        entry: "sqlite3_open",
        probe: ("sqlite3_libversion_number", Probe::Int),
        version: format!("SQLite {version}"),
    })
}

/// Lua 5.4's core and standard libraries (not the `lua` and `luac` programs) from `lua-src`.
pub fn lua() -> Result<RealLibrary, String> {
    let (dir, _) = package_dir("lua-src")?;
    let src = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lua-5.4."))
        })
        .max()
        .ok_or_else(|| format!("{}: no lua-5.4.* directory", dir.display()))?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .filter(|p| !p.ends_with("lua.c") && !p.ends_with("luac.c"))
        .collect();
    sources.sort();
    let version = src
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("lua-"))
        .unwrap_or("?")
        .to_owned();
    Ok(RealLibrary {
        name: "lua",
        sources,
        flags: &["-DLUA_USE_LINUX"],
        needed: &["libm.so.6"],
        entry: "luaL_newstate",
        probe: ("lua_version", Probe::NumberOfNull),
        version: format!("Lua {version}"),
    })
}

/// A library built four ways: shared library and module from its objects (`plain`), and
/// two `--reloadable` versions for the reload comparison (`v1` from its objects, `v2` with a
/// small object more, as after an edit that adds a function).
#[derive(Debug)]
pub struct RealBuild {
    pub library: RealLibrary,
    pub plain: Pair,
    pub v1: Pair,
    pub v2: Pair,
}

/// Compiles `library` once into `dir/name/` and links and packs it every way [`RealBuild`]
/// holds.
pub fn build(dir: &Path, library: RealLibrary) -> Result<RealBuild, String> {
    let sub = dir.join(library.name);
    std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
    let objects = fixture::compile_files(&sub, &library.sources, library.flags)?;
    let edit = fixture::compile(
        &sub,
        &[(
            "bench_edit.c".into(),
            "int bench_edit_version(void) { return 2; }\n".into(),
        )],
    )?;
    let with_edit: Vec<PathBuf> = objects.iter().chain(&edit).cloned().collect();
    let name = library.name;
    let needed = library.needed;
    let plain = fixture::link_and_pack(dir, name, objects.clone(), needed, false)?;
    let v1 = fixture::link_and_pack(dir, &format!("{name}-reload1"), objects, needed, true)?;
    let v2 = fixture::link_and_pack(dir, &format!("{name}-reload2"), with_edit, needed, true)?;
    Ok(RealBuild {
        library,
        plain,
        v1,
        v2,
    })
}
