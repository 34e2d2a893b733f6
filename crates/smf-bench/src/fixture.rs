//! Building the benchmark's inputs: C sources → objects (`cc -O2 -fPIC -c`) → a shared
//! library (`cc -shared`) and an SMF module (`smf_pack::pack`), from the same objects.
//! `cc` is the C compiler `CC` names, if set (a cross compiler, when the benchmark is built
//! for another architecture and run under an emulator).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The C compiler: `CC` if set, else `cc`.
pub fn c_compiler() -> OsString {
    std::env::var_os("CC")
        .filter(|cc| !cc.is_empty())
        .unwrap_or_else(|| "cc".into())
}

/// Compiles each `(file name, source)` in `dir` with `cc -O2 -fPIC -c`, two at a time (the
/// machines this runs on have few cores), and returns the objects in input order.
pub fn compile(dir: &Path, sources: &[(String, String)]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::with_capacity(sources.len());
    for (name, source) in sources {
        let c = dir.join(name);
        std::fs::write(&c, source).map_err(|e| format!("{}: {e}", c.display()))?;
        files.push(c);
    }
    compile_files(dir, &files, &[])
}

/// Compiles each C file of `files` into `dir` with `cc -O2 -fPIC` and `flags`, as many at a
/// time as there are cores, and returns the objects in input order.
pub fn compile_files(
    dir: &Path,
    files: &[PathBuf],
    flags: &[&str],
) -> Result<Vec<PathBuf>, String> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cc = c_compiler();
    let mut objects = Vec::with_capacity(files.len());
    for chunk in files.chunks(jobs) {
        let mut children = Vec::with_capacity(chunk.len());
        for c in chunk {
            let stem = c.file_stem().unwrap_or_default();
            let object = dir.join(stem).with_extension("o");
            let child = Command::new(&cc)
                .args(["-O2", "-fPIC"])
                .args(flags)
                .args(["-c", "-o"])
                .arg(&object)
                .arg(c)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", cc.display()))?;
            children.push((c, object, child));
        }
        for (c, object, child) in children {
            let output = child
                .wait_with_output()
                .map_err(|e| format!("{}: {e}", cc.display()))?;
            if !output.status.success() {
                return Err(format!(
                    "{} {} failed:\n{}",
                    cc.display(),
                    c.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            objects.push(object);
        }
    }
    Ok(objects)
}

/// The system linker's command for a shared library of `objects` (and `libraries`, listed by
/// path, so the library records them as needed).
pub fn link_command(objects: &[PathBuf], libraries: &[PathBuf], output: &Path) -> Command {
    let mut command = Command::new(c_compiler());
    command
        .arg("-shared")
        .arg("-o")
        .arg(output)
        .args(objects)
        .args(libraries);
    command
}

/// `smf pack` as a child process: `packer` is a command line (a program and its first
/// arguments) to which `smf pack`'s arguments are appended.
pub fn pack_command(
    packer: &[OsString],
    objects: &[PathBuf],
    needed: &[PathBuf],
    reloadable: bool,
    output: &Path,
) -> Command {
    let (program, arguments) = packer
        .split_first()
        .map_or((OsStr::new("smf-bench-pack"), &[][..]), |(p, a)| {
            (p.as_os_str(), a)
        });
    let mut command = Command::new(program);
    command.args(arguments);
    command.arg("-o").arg(output);
    if reloadable {
        command.arg("--reloadable");
    }
    for library in needed {
        command.arg("--needed").arg(library);
    }
    command.args(objects);
    command
}

pub fn run(mut command: Command) -> Result<(), String> {
    let output = command
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Packs `objects` in this process and writes the module to `output`.
pub fn pack(
    objects: &[PathBuf],
    needed: &[PathBuf],
    reloadable: bool,
    output: &Path,
) -> Result<Vec<u8>, String> {
    let inputs = read_inputs(objects)?;
    let options = smf_pack::Options {
        entry: None,
        reloadable,
        needed: needed.iter().map(|p| p.display().to_string()).collect(),
        ..Default::default()
    };
    let bytes = smf_pack::pack(&inputs, &options).map_err(|e| e.to_string())?;
    write_atomically(output, &bytes)?;
    Ok(bytes)
}

/// Packs `objects` with `compression` in this process and writes the module to `output`.
pub fn pack_compressed(
    objects: &[PathBuf],
    needed: &[&str],
    compression: smf_format::Compression,
    output: &Path,
) -> Result<Vec<u8>, String> {
    let inputs = read_inputs(objects)?;
    let options = smf_pack::Options {
        needed: needed.iter().map(|n| (*n).to_owned()).collect(),
        compression,
        ..Default::default()
    };
    let bytes = smf_pack::pack(&inputs, &options).map_err(|e| e.to_string())?;
    write_atomically(output, &bytes)?;
    Ok(bytes)
}

pub fn read_inputs(objects: &[PathBuf]) -> Result<Vec<smf_pack::Input>, String> {
    objects
        .iter()
        .map(|path| {
            let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(smf_pack::Input {
                name: path.display().to_string(),
                data,
            })
        })
        .collect()
}

/// Writes to a temporary name and renames: a module file is never rewritten in place while
/// a loaded module may map it (what native toolchains do for shared libraries, too).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces `path` by a new link to the file `from`, renamed over it: the file at `path`
/// is replaced as by [`write_atomically`], but the file it was (another version's, linked
/// under its own name too) stays on disk, as the shared libraries it is compared with do.
/// Otherwise the last unmapping of a replaced file frees it, and the file system's work of
/// freeing it (on some machines a synchronous discard) would be timed as the loader's.
pub fn replace_by_link(path: &Path, from: &Path) -> Result<(), String> {
    let partial = path.with_extension("partial");
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", partial.display()));
        }
        _ => {}
    }
    std::fs::hard_link(from, &partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// One library built both ways from the same objects.
#[derive(Debug)]
pub struct Pair {
    pub objects: Vec<PathBuf>,
    pub so: PathBuf,
    pub smf: PathBuf,
    /// The module's bytes as packed.
    pub module: Vec<u8>,
}

/// Compiles `sources` into `dir/name/`, links `name.so` and packs `name.smf`.
pub fn build_pair(
    dir: &Path,
    name: &str,
    sources: &[(String, String)],
    needed: &[PathBuf],
    reloadable: bool,
) -> Result<Pair, String> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
    let objects = compile(&sub, sources)?;
    let so = dir.join(format!("{name}.so"));
    run(link_command(&objects, needed, &so))?;
    let smf = dir.join(format!("{name}.smf"));
    let module = pack(&objects, needed, reloadable, &smf)?;
    Ok(Pair {
        objects,
        so,
        smf,
        module,
    })
}

/// Links `dir/name.so` and packs `dir/name.smf` from `objects`, compiled already, both
/// naming the shared libraries `needed` (by soname).
pub fn link_and_pack(
    dir: &Path,
    name: &str,
    objects: Vec<PathBuf>,
    needed: &[&str],
    reloadable: bool,
) -> Result<Pair, String> {
    let so = dir.join(format!("{name}.so"));
    let mut link = link_command(&objects, &[], &so);
    link.args(needed.iter().map(|n| format!("-l:{n}")));
    run(link)?;
    let smf = dir.join(format!("{name}.smf"));
    let needed: Vec<PathBuf> = needed.iter().map(PathBuf::from).collect();
    let module = pack(&objects, &needed, reloadable, &smf)?;
    Ok(Pair {
        objects,
        so,
        smf,
        module,
    })
}
