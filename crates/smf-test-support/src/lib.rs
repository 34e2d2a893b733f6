//! Helpers for the workspace's integration tests (a dev-dependency, never published):
//! starting the host's programs, such as mingw-w64's compilers, from a test.
//!
//! A test built for Linux starts them with `std::process::Command`. A test built for
//! Windows runs under Wine (README, "Windows"), and the compilers are Linux programs: Wine
//! starts one when the test names it by its `Z:` path (the drive Wine maps to the Unix
//! root), and it reads and writes Unix paths. Wine gives the starting process no handle of
//! a Unix process, so it cannot wait for one or read its pipes (and `Command` gets no exit
//! status): [`wine::unix_command`] runs the command through `/bin/sh`, which writes its
//! output and then its exit status to files the test waits for. It is the one way the
//! Windows tests start Linux programs. [`host_command`] is `Command` on Unix and that on
//! Windows, and [`host_path`] and [`local_path`] carry paths across.

use std::path::{Path, PathBuf};
use std::process::Output;

#[cfg(windows)]
pub mod wine;

/// Prints `skipped: <reason>` straight to stderr, where it shows even when the test passes
/// (libtest captures `eprintln!`).
pub fn note_skipped(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

/// Runs the host's program `program` (a path on the host, or a name: looked up in `PATH` on
/// Unix, by [`find_program`] under Wine) with `args` and waits for it: its stdout, stderr
/// and exit status. Paths among the arguments are the host's ([`host_path`]). Panics if it
/// cannot be started.
pub fn host_command(program: &str, args: &[String]) -> Output {
    #[cfg(windows)]
    {
        let found;
        let program = if program.contains('/') {
            program
        } else {
            found = find_program(program)
                .unwrap_or_else(|| panic!("{program} not found in {BIN_DIRS:?}"));
            &found
        };
        wine::unix_command(program, args)
    }
    #[cfg(not(windows))]
    {
        std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }
}

/// [`host_command`], panicking with its output unless it exits with status 0.
pub fn check_host(program: &str, args: &[String]) -> Output {
    let output = host_command(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A command line for a host program, built like `std::process::Command`'s: arguments as
/// given, paths of this program through [`host_path`]; run by [`host_command`].
#[derive(Debug, Clone)]
pub struct HostCommand {
    program: String,
    args: Vec<String>,
}

impl HostCommand {
    /// The host program `program` (as for [`host_command`]), with no arguments yet.
    pub fn new(program: &str) -> HostCommand {
        HostCommand {
            program: program.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn arg(&mut self, arg: &str) -> &mut HostCommand {
        self.args.push(arg.to_owned());
        self
    }

    pub fn args<'a>(&mut self, args: impl IntoIterator<Item = &'a str>) -> &mut HostCommand {
        self.args.extend(args.into_iter().map(str::to_owned));
        self
    }

    /// Adds this program's path `path` as the host's.
    pub fn path(&mut self, path: &Path) -> &mut HostCommand {
        self.args.push(host_path(path));
        self
    }

    /// Adds each of `paths` as the host's.
    pub fn paths<P: AsRef<Path>>(
        &mut self,
        paths: impl IntoIterator<Item = P>,
    ) -> &mut HostCommand {
        self.args
            .extend(paths.into_iter().map(|p| host_path(p.as_ref())));
        self
    }

    /// Runs it and waits: [`host_command`].
    pub fn output(&self) -> Output {
        host_command(&self.program, &self.args)
    }

    /// Runs it, panicking with its output unless it exits with status 0: [`check_host`].
    pub fn check(&self) -> Output {
        check_host(&self.program, &self.args)
    }
}

/// The host's path of a path of this program (on Windows, as Wine maps it to Unix).
pub fn host_path(path: &Path) -> String {
    #[cfg(windows)]
    {
        wine::unix_path(path)
    }
    #[cfg(not(windows))]
    {
        path.to_str().expect("test paths are UTF-8").to_owned()
    }
}

/// This program's path of an absolute host path, such as `env!("CARGO_MANIFEST_DIR")` (on
/// Windows, through Wine's `Z:` drive).
pub fn local_path(host: &str) -> PathBuf {
    #[cfg(windows)]
    {
        wine::windows_path(host)
    }
    #[cfg(not(windows))]
    {
        PathBuf::from(host)
    }
}

/// The Unix directories host programs are looked for in, in order.
const BIN_DIRS: &[&str] = &["/usr/bin", "/usr/local/bin"];

/// The host path of the program `name`, the first of [`BIN_DIRS`] that has it.
pub fn find_program(name: &str) -> Option<String> {
    BIN_DIRS
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| local_path(path).exists())
}

/// mingw-w64's C and C++ compilers, by their host paths.
#[derive(Debug, Clone)]
pub struct Mingw {
    pub gcc: String,
    pub gxx: String,
}

/// mingw-w64's compilers named `x86_64-w64-mingw32-gcc{suffix}` and
/// `x86_64-w64-mingw32-g++{suffix}` (`-win32`: the builds with Win32 threads; `-posix`:
/// with POSIX threads, whose `std::thread` needs winpthreads), if installed. Without them,
/// prints `skipped: …` and returns `None`; with `SMF_REQUIRE_CROSS` set (as `.ci/run`
/// does), a missing mingw-w64 fails the test instead.
pub fn mingw(suffix: &str) -> Option<Mingw> {
    let (gcc, gxx) = (
        format!("x86_64-w64-mingw32-gcc{suffix}"),
        format!("x86_64-w64-mingw32-g++{suffix}"),
    );
    let found = find_program(&gcc)
        .zip(find_program(&gxx))
        .map(|(gcc, gxx)| Mingw { gcc, gxx });
    if found.is_none() {
        assert!(
            std::env::var_os("SMF_REQUIRE_CROSS").is_none(),
            "{gcc} and {gxx} not found in {BIN_DIRS:?}, and SMF_REQUIRE_CROSS is set"
        );
        note_skipped(&format!("{gcc} not found (package mingw-w64)"));
    }
    found
}

impl Mingw {
    /// Compiles each source (C, or C++ for `.cpp`) into `out_dir` with `flags`, returning the
    /// objects' paths. No `-fPIC` (position-independence is the default for COFF).
    pub fn compile(&self, sources: &[PathBuf], out_dir: &Path, flags: &[&str]) -> Vec<PathBuf> {
        sources
            .iter()
            .map(|source| {
                let object = out_dir
                    .join(source.file_stem().unwrap())
                    .with_extension("o");
                let cxx = source.extension().is_some_and(|e| e == "cpp");
                let mut args: Vec<String> = Vec::new();
                if !cxx {
                    args.push("-std=gnu11".into());
                }
                args.extend(["-c", "-pipe", "-Wall"].map(String::from));
                args.extend(flags.iter().map(|f| f.to_string()));
                args.extend([host_path(source), "-o".into(), host_path(&object)]);
                check_host(if cxx { &self.gxx } else { &self.gcc }, &args);
                object
            })
            .collect()
    }

    /// Links `objects` into the native program `exe` with the C (or C++) driver, libgcc and
    /// libstdc++ linked statically, as a module packs them.
    pub fn link(&self, objects: &[PathBuf], exe: &Path, cxx: bool, libs: &[&str]) {
        let mut args: Vec<String> = ["-static-libgcc", "-static-libstdc++", "-o"]
            .map(String::from)
            .to_vec();
        args.push(host_path(exe));
        args.extend(objects.iter().map(|o| host_path(o)));
        args.extend(libs.iter().map(|l| l.to_string()));
        check_host(if cxx { &self.gxx } else { &self.gcc }, &args);
    }

    /// What gcc prints for `-print-file-name=FILE` or `-print-libgcc-file-name`, as this
    /// program's path.
    fn print(&self, option: &str) -> PathBuf {
        let output = check_host(&self.gcc, &[option.to_owned()]);
        let path = String::from_utf8(output.stdout).unwrap();
        local_path(path.trim())
    }

    /// The arguments `smf pack` needs after the objects for a Windows module, the
    /// counterpart of what the driver adds to a link (docs/LINKING.md, "COFF objects"):
    /// mingw-w64's `libmingw32.a` (`_CRT_MT`, `__mingw_raise_matherr`), `libmingwex.a` (its
    /// C99 stdio and maths) and `libmsvcrt.a` (the static part of msvcrt's runtime; its
    /// import members stay imports), `libgcc.a` (`___chkstk_ms`, emulated TLS); for C++ also
    /// `libstdc++.a` and `libgcc_eh.a` (the SEH unwinder).
    pub fn pack_libraries(&self, cxx: bool) -> Vec<String> {
        let dir = |path: PathBuf| path.parent().unwrap().display().to_string();
        let crt = dir(self.print("-print-file-name=libmingwex.a"));
        let gcc_dir = dir(self.print("-print-libgcc-file-name"));
        let mut args = vec!["-L".to_owned(), gcc_dir, "-L".to_owned(), crt];
        if cxx {
            args.extend(["-lstdc++".to_owned(), "-lgcc_eh".to_owned()]);
        }
        args.extend(["-lmingw32", "-lmingwex", "-lmsvcrt", "-lgcc"].map(String::from));
        args
    }
}
