//! The edit–compile–reload loop behind `smf dev`.
//!
//! A [`Session`] builds C sources with the system C compiler and the packer into one
//! reloadable module, loads it into a [`Registry`], and on every change rebuilds and reloads
//! it. A failed build or reload changes nothing: the running code keeps running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use simple_loader::{Current, LoadError, LoadOptions, Registry, ReloadReport};

/// Why a build or a load failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DevError {
    /// The compiler rejected a source; `output` is what it printed (naming the source as
    /// it was given).
    Compile {
        source: PathBuf,
        output: String,
    },
    /// The compiler (or the build command's shell) could not be started.
    Compiler {
        program: String,
        error: std::io::Error,
    },
    /// The build command failed; `output` is what it printed.
    BuildCommand {
        command: String,
        output: String,
    },
    Pack(smf_pack::Error),
    Load(LoadError),
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Watch(String),
}

impl std::fmt::Display for DevError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DevError::Compile { source, output } => write!(
                f,
                "{} does not compile:\n{}",
                source.display(),
                output.trim_end()
            ),
            DevError::Compiler { program, error } => write!(f, "cannot run {program}: {error}"),
            DevError::BuildCommand { command, output } => {
                write!(
                    f,
                    "the build command `{command}` failed:\n{}",
                    output.trim_end()
                )
            }
            DevError::Pack(e) => write!(f, "{e}"),
            DevError::Load(e) => write!(f, "{e:#}"),
            DevError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            DevError::Watch(e) => write!(f, "cannot watch the sources: {e}"),
        }
    }
}

impl std::error::Error for DevError {}

/// What to build and how: sources compiled here, or the objects a build command makes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Project {
    /// C sources (`.c`), C++ sources (`.cc`, `.cpp`, `.cxx`, `.C`, `.c++`), or, with
    /// `build_command`, the objects and archives it makes (packed as they are).
    pub inputs: Vec<PathBuf>,
    /// A shell command that builds `inputs` (`make lib.o`), run before every pack by
    /// `sh -c` (`cmd /C` on Windows); its output is shown when it fails.
    pub build_command: Option<String>,
    /// Files and directories (watched recursively) whose changes trigger a rebuild; by
    /// default the sources in `inputs`.
    pub watch: Vec<PathBuf>,
    /// Compiler arguments for every source, after `CFLAGS` or `CXXFLAGS`: `-I`, `-D`, ...
    pub compiler_args: Vec<String>,
    /// Native libraries the module opens (`smf pack --needed`); C++ sources add
    /// `libstdc++.so.6` (`libstdc++-6.dll` on Windows).
    pub needed: Vec<String>,
    /// Archives to link (`-l NAME`), searched in `library_dirs` (`-L DIR`).
    pub libraries: Vec<String>,
    pub library_dirs: Vec<PathBuf>,
    /// The module's entry point is `main`.
    pub executable: bool,
}

impl Project {
    /// A project of these C or C++ sources, with default settings.
    pub fn sources(sources: Vec<PathBuf>) -> Project {
        Project {
            inputs: sources,
            ..Project::default()
        }
    }

    /// The paths whose changes trigger a rebuild.
    fn watched(&self) -> &[PathBuf] {
        if self.watch.is_empty() {
            &self.inputs
        } else {
            &self.watch
        }
    }
}

/// Whether `path` names a C++ source, by the extensions gcc knows.
pub fn is_cxx_source(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("cc" | "cpp" | "cxx" | "C" | "c++" | "cp" | "CPP")
    )
}

/// The native C++ library a module of C++ sources needs.
const LIBSTDCXX: &str = if cfg!(windows) {
    "libstdc++-6.dll"
} else {
    "libstdc++.so.6"
};

/// The compiler used when `CC` (or `CXX`) is not set: `cc` (`c++`) on Unix; on Windows,
/// which has no `cc`, the first of `gcc` and `clang` (`g++`, `clang++`) that starts.
fn default_compiler(cxx: bool) -> String {
    if !cfg!(windows) {
        return if cxx { "c++" } else { "cc" }.into();
    }
    let candidates: [&str; 2] = if cxx {
        ["g++", "clang++"]
    } else {
        ["gcc", "clang"]
    };
    candidates
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or(&candidates[0])
        .to_string()
}

/// The shell that runs a build command and the command running it in the current
/// directory: `sh -c COMMAND` on Unix, `cmd /C COMMAND` on Windows (the command line given
/// to `cmd` as written, which parses it itself).
fn shell_command(command: &str) -> (&'static str, Command) {
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt as _;
        let mut shell = Command::new("cmd");
        shell.arg("/C").raw_arg(command);
        ("cmd", shell)
    }
    #[cfg(not(windows))]
    {
        let mut shell = Command::new("sh");
        shell.arg("-c").arg(command);
        ("sh", shell)
    }
}

/// The words of the environment variable `name`, split as a shell would split them
/// without expansions.
fn env_words(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| smf_pack::response_file::split(&v))
        .unwrap_or_default()
}

/// A module built from a [`Project`] and kept up to date with it.
///
/// A host drives it with [`Session::start`] (or [`Session::new`] and [`Session::build`],
/// which may fail and be retried), takes handles with [`Session::current`], and calls
/// [`Session::poll`] in its loop: it waits for a change of the watched files, rebuilds and
/// reloads.
pub struct Session {
    project: Project,
    work: PathBuf,
    module: PathBuf,
    registry: Registry,
    loaded: bool,
    progress: Box<dyn Fn(&str) + Send>,
    watcher: Option<(Box<dyn std::any::Any + Send>, Receiver<()>)>,
    built: Option<Snapshot>,
}

type Fn0 = extern "C" fn();

impl Session {
    /// A session that will build `project` in the directory `work`; nothing is built yet.
    /// Progress lines ("compiling a.cpp [1/3]") go to `progress`.
    pub fn new(
        project: Project,
        work: PathBuf,
        progress: impl Fn(&str) + Send + 'static,
    ) -> Session {
        let module = work.join("module.smf");
        Session {
            project,
            work,
            module,
            // The packer replaces the module file by a rename, never in place: the module's
            // code can be mapped from it rather than copied, at every load and reload.
            registry: Registry::with_options(LoadOptions::default().with_map_reloadable(true)),
            loaded: false,
            progress: Box::new(progress),
            watcher: None,
            built: None,
        }
    }

    /// A session of C sources, built and loaded, with no progress lines.
    pub fn start(
        sources: Vec<PathBuf>,
        work: PathBuf,
        executable: bool,
    ) -> Result<Session, DevError> {
        let mut project = Project::sources(sources);
        project.executable = executable;
        let mut session = Session::new(project, work, |_| {});
        session.build()?;
        Ok(session)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The module file the session builds and loads.
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// Whether a version is loaded (the first successful [`Session::build`] loads it).
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Builds the module and loads it, or reloads it if a version is loaded; returns the
    /// reload's report (`None` for the first load). On error the running version stays.
    pub fn build(&mut self) -> Result<Option<ReloadReport>, DevError> {
        // What the build reads is what the next change is compared with, also when it fails.
        self.built = Some(Snapshot::take(self.project.watched()));
        self.compile_and_pack()?;
        if self.loaded {
            // SAFETY: running the user's program is what `smf dev` is for; module files are
            // replaced by the packer's rename, never rewritten in place.
            let report = unsafe { self.registry.reload(&self.module) }.map_err(DevError::Load)?;
            return Ok(Some(report));
        }
        // SAFETY: as above.
        unsafe { self.registry.load(&self.module) }.map_err(DevError::Load)?;
        self.loaded = true;
        Ok(None)
    }

    /// Rebuilds and reloads. On error the running version stays.
    pub fn rebuild(&mut self) -> Result<ReloadReport, DevError> {
        if !self.loaded {
            return Err(DevError::Load(LoadError::NotLoaded {
                path: self.module.clone(),
            }));
        }
        Ok(self.build()?.expect("a loaded session reloads"))
    }

    /// Runs the build command, or compiles every source, then packs the objects into the
    /// module file.
    fn compile_and_pack(&self) -> Result<(), DevError> {
        let progress = &self.progress;
        let mut objects = Vec::new();
        if let Some(command) = &self.project.build_command {
            progress(&format!("running `{command}`"));
            let (shell, mut shell_command) = shell_command(command);
            let output = shell_command.output().map_err(|error| DevError::Compiler {
                program: shell.into(),
                error,
            })?;
            if !output.status.success() {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                return Err(DevError::BuildCommand {
                    command: command.clone(),
                    output: text,
                });
            }
            objects.extend(self.project.inputs.iter().cloned());
        } else {
            let total = self.project.inputs.len();
            for (i, source) in self.project.inputs.iter().enumerate() {
                progress(&format!(
                    "compiling {} [{}/{total}]",
                    source.display(),
                    i + 1
                ));
                let object = self.work.join(format!("{i}.o"));
                self.compile(source, &object)?;
                objects.push(object);
            }
        }
        let mut inputs = Vec::with_capacity(objects.len());
        for (object, name) in objects.iter().zip(&self.project.inputs) {
            let data = std::fs::read(object).map_err(|error| DevError::Io {
                path: object.clone(),
                error,
            })?;
            inputs.push(smf_pack::Input {
                name: name.display().to_string(),
                data,
            });
        }
        for library in &self.project.libraries {
            let path = smf_pack::archive::find_library(library, &self.project.library_dirs)
                .map_err(DevError::Pack)?;
            let data = std::fs::read(&path).map_err(|error| DevError::Io {
                path: path.clone(),
                error,
            })?;
            inputs.push(smf_pack::Input {
                name: path.display().to_string(),
                data,
            });
        }
        let mut needed = self.project.needed.clone();
        let cxx = self.project.build_command.is_none()
            && self.project.inputs.iter().any(|s| is_cxx_source(s));
        if cxx && !needed.iter().any(|n| n.starts_with("libstdc++")) {
            needed.push(LIBSTDCXX.into());
        }
        progress(&format!("packing {} input(s)", inputs.len()));
        let options = smf_pack::Options {
            entry: self.project.executable.then(|| "main".to_owned()),
            reloadable: true,
            needed,
            ..Default::default()
        };
        let bytes = smf_pack::pack(&inputs, &options).map_err(DevError::Pack)?;
        // Written whole to a temporary name and renamed, so a reader never sees half a file.
        let partial = self.work.join("module.smf.partial");
        std::fs::write(&partial, bytes).map_err(|error| DevError::Io {
            path: partial.clone(),
            error,
        })?;
        std::fs::rename(&partial, &self.module).map_err(|error| DevError::Io {
            path: self.module.clone(),
            error,
        })
    }

    /// Compiles one source with `CC` or `CXX` (by default `cc`, `c++`; see [`default_compiler`]), `CFLAGS` or
    /// `CXXFLAGS`, and the project's arguments. The source is passed as the user named it,
    /// so the compiler's messages point at it.
    fn compile(&self, source: &Path, object: &Path) -> Result<(), DevError> {
        let cxx = is_cxx_source(source);
        let (program, flags) = if cxx {
            (
                std::env::var("CXX").unwrap_or_else(|_| default_compiler(true)),
                env_words("CXXFLAGS"),
            )
        } else {
            (
                std::env::var("CC").unwrap_or_else(|_| default_compiler(false)),
                env_words("CFLAGS"),
            )
        };
        let mut command = Command::new(&program);
        if !cxx {
            command.arg("-std=gnu11");
        }
        command
            .args(["-fPIC", "-O1", "-g"])
            .args(&flags)
            .args(&self.project.compiler_args)
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(object);
        let output = command
            .output()
            .map_err(|error| DevError::Compiler { program, error })?;
        if !output.status.success() {
            return Err(DevError::Compile {
                source: source.to_owned(),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// A handle that calls the current version of `void symbol(void)`.
    pub fn current(&self, symbol: &str) -> Result<Current<Fn0>, DevError> {
        // SAFETY: `smf dev --call` documents that the symbol is `void f(void)`.
        unsafe { self.registry.current::<Fn0>(&self.module, symbol) }.map_err(DevError::Load)
    }

    /// Runs the current version's entry point as `main(argc, argv)`.
    pub fn run_main(&self) -> Result<i32, DevError> {
        let module = self.registry.get(&self.module).ok_or_else(|| {
            DevError::Load(LoadError::NotLoaded {
                path: self.module.clone(),
            })
        })?;
        let _pinned = self.registry.pin();
        let program = self
            .project
            .inputs
            .first()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        // SAFETY: the module was packed with `main` as its entry point (`executable`).
        let status = unsafe { module.run_main(&[program]) }.map_err(DevError::Load)?;
        flush_c_stdio();
        Ok(status)
    }

    /// Waits up to `timeout` for a change of the watched files' content (events that change
    /// nothing, such as the compiler opening a source, are ignored); on one, builds (and
    /// reloads, or loads if no version is loaded yet) and returns what the build did.
    /// `None`: no change within `timeout`.
    pub fn poll(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<Option<ReloadReport>, DevError>>, DevError> {
        let first = self.watcher.is_none();
        if first {
            self.watcher = Some(watch(self.project.watched())?);
        }
        let Some((_, changes)) = &self.watcher else {
            unreachable!("set above")
        };
        // A change saved before the watcher existed sent no event: compare now.
        let event = if first {
            Ok(())
        } else {
            changes.recv_timeout(timeout)
        };
        match event {
            Ok(()) => {
                while changes.try_recv().is_ok() {}
                let now = Snapshot::take(self.project.watched());
                if self.built.as_ref() == Some(&now) {
                    return Ok(None);
                }
                Ok(Some(self.build()))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(DevError::Watch("the file watcher stopped".into()))
            }
        }
    }

    /// How long ago the most recently modified watched file was saved.
    pub fn since_last_save(&self) -> Option<Duration> {
        let newest = Snapshot::files(self.project.watched())
            .into_iter()
            .filter_map(|s| std::fs::metadata(s).ok()?.modified().ok())
            .max()?;
        SystemTime::now().duration_since(newest).ok()
    }
}

/// The content of the watched files, to tell a real edit from an event that changed
/// nothing.
#[derive(PartialEq, Eq)]
struct Snapshot(Vec<(PathBuf, Vec<u8>)>);

impl Snapshot {
    fn take(paths: &[PathBuf]) -> Snapshot {
        Snapshot(
            Snapshot::files(paths)
                .into_iter()
                .map(|path| {
                    let content = std::fs::read(&path).unwrap_or_default();
                    (path, content)
                })
                .collect(),
        )
    }

    /// The files named, and the files under the directories named (hidden ones excepted).
    fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut pending: Vec<PathBuf> = paths.to_vec();
        while let Some(path) = pending.pop() {
            match std::fs::read_dir(&path) {
                Ok(entries) => {
                    for entry in entries.flatten() {
                        if !entry.file_name().to_string_lossy().starts_with('.') {
                            pending.push(entry.path());
                        }
                    }
                }
                // Build products change in every build: not edits.
                Err(_) if is_build_product(&path) => {}
                Err(_) => files.push(path),
            }
        }
        files.sort();
        files
    }
}

/// Objects, archives, dependency files, libraries and modules that builds write.
fn is_build_product(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("o" | "a" | "d" | "so" | "smf" | "sme" | "gch" | "partial" | "swp")
    )
}

/// Watches `paths` (directories recursively); the receiver yields once per debounced batch
/// of changes under them.
fn watch(paths: &[PathBuf]) -> Result<(Box<dyn std::any::Any + Send>, Receiver<()>), DevError> {
    let (tx, rx) = channel();
    let watched: Vec<PathBuf> = paths
        .iter()
        .filter_map(|s| std::fs::canonicalize(s).ok())
        .collect();
    let targets = watched.clone();
    let mut debouncer = new_debouncer(
        Duration::from_millis(30),
        move |result: DebounceEventResult| {
            if let Ok(events) = result {
                let relevant = events.iter().any(|e| {
                    let path = std::fs::canonicalize(&e.path).unwrap_or_else(|_| e.path.clone());
                    targets.iter().any(|t| path.starts_with(t))
                });
                if relevant {
                    let _ = tx.send(());
                }
            }
        },
    )
    .map_err(|e| DevError::Watch(e.to_string()))?;
    // Editors often replace a file rather than write it: watch a file's directory.
    let mut dirs: Vec<(PathBuf, RecursiveMode)> = watched
        .iter()
        .filter_map(|p| {
            if p.is_dir() {
                Some((p.clone(), RecursiveMode::Recursive))
            } else {
                Some((p.parent()?.to_owned(), RecursiveMode::NonRecursive))
            }
        })
        .collect();
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    dirs.dedup_by(|a, b| a.0 == b.0);
    for (dir, mode) in dirs {
        debouncer
            .watcher()
            .watch(&dir, mode)
            .map_err(|e| DevError::Watch(format!("{}: {e}", dir.display())))?;
    }
    let watcher: Box<dyn std::any::Any + Send> = Box::new(debouncer);
    Ok((watcher, rx))
}

/// Flushes C stdio, so that what module code printed reaches a pipe promptly.
pub fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream; it takes no pointer we own.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Runs `smf dev`: builds `project` (waiting for a fix while the build fails), calls `call`
/// every `every` (or the entry once per version), and rebuilds and reloads on every change
/// of the watched files, reporting to stderr. Runs until killed, or until `deadline` if
/// given.
pub fn run(
    mut project: Project,
    call: Option<String>,
    every: Duration,
    deadline: Option<Instant>,
) -> Result<(), DevError> {
    // Removed when the loop ends (not when the process is killed, which is how `smf dev`
    // usually stops: the directory then stays in the temporary directory).
    let work = tempfile::Builder::new()
        .prefix("smf-dev-")
        .tempdir()
        .map_err(|error| DevError::Io {
            path: std::env::temp_dir(),
            error,
        })?;
    project.executable = call.is_none();
    let mut session = Session::new(project, work.path().to_owned(), |line| {
        eprintln!("smf dev: {line}")
    });
    let watched = session.project.watched().len();
    if let Err(e) = session.build() {
        eprintln!("smf dev: {e}\nsmf dev: waiting for a fix (watching {watched} path(s))");
        while !session.is_loaded() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            if let Some(Err(e)) = session.poll(Duration::from_millis(200))? {
                eprintln!("smf dev: {e}\nsmf dev: waiting for a fix");
            }
        }
    }
    eprintln!("smf dev: watching {watched} path(s); edit and save to reload");
    let handle = call
        .as_deref()
        .map(|symbol| session.current(symbol))
        .transpose()?;
    if handle.is_none() {
        report_status(session.run_main());
    }
    let mut next_call = Instant::now();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        if let Some(handle) = &handle {
            if Instant::now() >= next_call {
                (*handle.pin())();
                flush_c_stdio();
                next_call += every;
            }
        }
        let wait = match &handle {
            Some(_) => next_call.saturating_duration_since(Instant::now()),
            None => Duration::from_millis(200),
        };
        match session.poll(wait)? {
            None => {}
            Some(Ok(report)) => {
                let Some(report) = report else { continue };
                let since_save = session.since_last_save();
                eprintln!("smf dev: {report}");
                if let (Some(since), false) = (since_save, report.unchanged) {
                    eprintln!(
                        "smf dev: saved → new code running in {:.1} ms",
                        since.as_secs_f64() * 1e3
                    );
                }
                if handle.is_none() && !report.unchanged {
                    report_status(session.run_main());
                }
            }
            Some(Err(e)) => eprintln!("smf dev: {e}\nsmf dev: the previous version keeps running"),
        }
    }
}

fn report_status(result: Result<i32, DevError>) {
    match result {
        Ok(status) => eprintln!("smf dev: main returned {status}"),
        Err(e) => eprintln!("smf dev: {e}"),
    }
}
