//! Helpers for the tests built for Windows and run under Wine (README, "Windows"): compiling C
//! and C++ with mingw-w64 at test time, linking the native `.exe`, and packing modules for
//! Windows with the library set a Windows module needs (docs/LINKING.md, "COFF objects").
//!
//! The test process is a Windows program, but mingw-w64's gcc is a Linux program: Wine starts
//! it when the test names it by its `Z:` path (the drive Wine maps to the Unix root), and it
//! reads and writes Unix paths. Wine gives the starting process no handle of a Unix process,
//! so it cannot wait for one or read its pipes (and `std::process::Command` gets no exit
//! status): [`unix_command`] runs the command through `/bin/sh`, which writes its output and
//! then its exit status to files the test waits for. It is the one way the Windows tests
//! start Linux programs. Paths cross over with [`unix_path`] (any Windows path Wine maps)
//! and [`windows_path`] (`/work/x` is `Z:\work\x`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// mingw-w64's C and C++ compilers, by their Unix paths: the builds with Win32
/// threads, whose libstdc++ and libgcc need no winpthreads.
#[derive(Debug, Clone)]
pub struct Mingw {
    pub gcc: String,
    pub gxx: String,
}

/// The Unix directories the compilers are looked for in, in order.
const BIN_DIRS: &[&str] = &["/usr/bin", "/usr/local/bin"];

/// mingw-w64, if installed. Without it, prints `skipped: …` and returns `None`; with
/// `SMF_REQUIRE_CROSS` set (as `.ci/run` does), a missing mingw-w64 fails the test instead.
pub fn mingw() -> Option<Mingw> {
    let found = BIN_DIRS.iter().find_map(|dir| {
        let gcc = format!("{dir}/x86_64-w64-mingw32-gcc-win32");
        let gxx = format!("{dir}/x86_64-w64-mingw32-g++-win32");
        (windows_path(&gcc).exists() && windows_path(&gxx).exists()).then_some(Mingw { gcc, gxx })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SMF_REQUIRE_CROSS").is_none(),
            "x86_64-w64-mingw32-gcc-win32 and -g++-win32 not found in {BIN_DIRS:?} (as Z: \
             paths), and SMF_REQUIRE_CROSS is set"
        );
        super::note_skipped("x86_64-w64-mingw32-gcc-win32 not found (package mingw-w64)");
    }
    found
}

/// The Windows path of a Unix path, through Wine's `Z:` drive.
pub fn windows_path(unix: &str) -> PathBuf {
    assert!(unix.starts_with('/'), "not an absolute Unix path: {unix}");
    PathBuf::from(format!("Z:{}", unix.replace('/', "\\")))
}

/// The Unix path of a Windows path, as Wine maps it (`wine_get_unix_file_name`): any
/// drive, so also the Windows temporary directory `tempfile` uses. Panics outside Wine.
pub fn unix_path(windows: &Path) -> String {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: looking up an export of kernel32 by NUL-terminated names.
    let function = unsafe {
        GetProcAddress(
            GetModuleHandleA(c"kernel32.dll".as_ptr().cast()),
            c"wine_get_unix_file_name".as_ptr().cast(),
        )
    }
    .expect("not running under Wine: kernel32 has no wine_get_unix_file_name");
    // SAFETY: Wine's `char *wine_get_unix_file_name(const WCHAR *)`.
    let function: unsafe extern "system" fn(*const u16) -> *const std::ffi::c_char =
        unsafe { std::mem::transmute(function) };
    let wide: Vec<u16> = windows.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is NUL-terminated; the result is null or a NUL-terminated string that
    // the process heap owns (left to it: a few bytes per path).
    let unix = unsafe { function(wide.as_ptr()) };
    assert!(
        !unix.is_null(),
        "Wine maps {} to no Unix path",
        windows.display()
    );
    // SAFETY: as above.
    unsafe { std::ffi::CStr::from_ptr(unix) }
        .to_str()
        .expect("test paths are UTF-8")
        .to_owned()
}

/// How long a Unix command may take before the test gives up on it.
const UNIX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs the Unix program `program` (a Unix path) with `args` in Wine's host system and
/// waits for it: its stdout, stderr and exit status. Panics if it cannot be started, or has
/// not finished within ten minutes.
pub fn unix_command(program: &str, args: &[String]) -> Output {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = windows_path(env!("CARGO_TARGET_TMPDIR")).join("windows-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let stem = dir.join(format!(
        "unix-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = |suffix: &str| PathBuf::from(format!("{}.{suffix}", stem.display()));
    let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
    let (script, out, err, status) = (file("sh"), file("out"), file("err"), file("status"));
    let command: Vec<String> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect();
    let [out_u, err_u, status_u] = [&out, &err, &status].map(|p| quote(&unix_path(p)));
    std::fs::write(
        &script,
        format!(
            "{} </dev/null >{out_u} 2>{err_u}\necho $? >{status_u}.tmp && mv {status_u}.tmp {status_u}\n",
            command.join(" ")
        ),
    )
    .unwrap();
    // The child handle Wine returns cannot be waited on; it is dropped, not waited for.
    Command::new(windows_path("/bin/sh"))
        .arg(unix_path(&script))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start /bin/sh for {command:?}: {e}"));
    let start = std::time::Instant::now();
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            break text.trim().parse::<i32>().unwrap();
        }
        assert!(
            start.elapsed() < UNIX_TIMEOUT,
            "{command:?} did not finish within {UNIX_TIMEOUT:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let output = Output {
        status: std::os::windows::process::ExitStatusExt::from_raw(code as u32),
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    for path in [&script, &out, &err, &status] {
        let _ = std::fs::remove_file(path);
    }
    output
}

/// [`unix_command`], panicking with its output unless it exits with status 0.
pub fn check_unix(program: &str, args: &[String]) -> Output {
    let output = unix_command(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh directory that both the test and the Unix compilers can reach, removed on drop.
pub fn work_dir() -> tempfile::TempDir {
    let base = windows_path(env!("CARGO_TARGET_TMPDIR")).join("windows-programs");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("work")
        .tempdir_in(base)
        .unwrap()
}

/// The directory of a fixture under `tests/programs`, as a Windows path.
pub fn program_dir(name: &str) -> PathBuf {
    windows_path(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("programs")
        .join(name)
}

impl Mingw {
    /// Compiles each source (C, or C++ for `.cpp`) into `out_dir` with `flags`, returning the
    /// objects' Windows paths. No `-fPIC` (position-independence is the default for COFF).
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
                args.extend([unix_path(source), "-o".into(), unix_path(&object)]);
                check_unix(if cxx { &self.gxx } else { &self.gcc }, &args);
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
        args.push(unix_path(exe));
        args.extend(objects.iter().map(|o| unix_path(o)));
        args.extend(libs.iter().map(|l| l.to_string()));
        check_unix(if cxx { &self.gxx } else { &self.gcc }, &args);
    }

    /// What gcc prints for `-print-file-name=FILE` or `-print-libgcc-file-name`, as a
    /// Windows path.
    fn print(&self, driver: &str, option: &str) -> PathBuf {
        let output = check_unix(driver, &[option.to_owned()]);
        let path = String::from_utf8(output.stdout).unwrap();
        windows_path(path.trim())
    }

    /// The arguments `smf pack` needs after the objects for a Windows module, the
    /// counterpart of what the driver adds to a link (docs/LINKING.md, "COFF objects"):
    /// mingw-w64's `libmingw32.a` (`_CRT_MT`, `__mingw_raise_matherr`), `libmingwex.a` (its
    /// C99 stdio and maths) and `libmsvcrt.a` (the static part of msvcrt's runtime; its
    /// import members stay imports), `libgcc.a` (`___chkstk_ms`, emulated TLS); for C++ also
    /// `libstdc++.a` and `libgcc_eh.a` (the SEH unwinder).
    pub fn pack_libraries(&self, cxx: bool) -> Vec<String> {
        let dir = |path: PathBuf| path.parent().unwrap().display().to_string();
        let crt = dir(self.print(&self.gcc, "-print-file-name=libmingwex.a"));
        let gcc_dir = dir(self.print(&self.gcc, "-print-libgcc-file-name"));
        let mut args = vec!["-L".to_owned(), gcc_dir, "-L".to_owned(), crt];
        if cxx {
            args.extend(["-lstdc++".to_owned(), "-lgcc_eh".to_owned()]);
        }
        args.extend(["-lmingw32", "-lmingwex", "-lmsvcrt", "-lgcc"].map(String::from));
        args
    }

    /// Packs `objects` into the Windows module `output` with `smf pack` (this platform's
    /// `smf.exe`), `extra` arguments first, then the objects and [`Mingw::pack_libraries`].
    pub fn pack(&self, objects: &[PathBuf], output: &Path, cxx: bool, extra: &[&str]) -> Output {
        let mut command = super::smf();
        command
            .arg("pack")
            .arg("-o")
            .arg(output)
            .args(extra)
            .args(objects)
            .args(self.pack_libraries(cxx));
        super::check(command)
    }
}
