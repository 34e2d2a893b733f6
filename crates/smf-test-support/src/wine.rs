//! Starting Linux programs from a Windows program under Wine, and crossing paths between
//! the two (the crate's docs say why this takes a detour).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
/// waits for it: its stdout, stderr and exit status. The script and the files it writes are
/// kept in the Windows temporary directory while it runs. Panics if it cannot be started,
/// or has not finished within ten minutes.
pub fn unix_command(program: &str, args: &[String]) -> Output {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join("smf-unix-commands");
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
