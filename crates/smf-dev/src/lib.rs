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
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use simple_loader::{Current, LoadError, Registry, ReloadReport};

/// Why a build or a load failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DevError {
    /// The C compiler rejected a source; `output` is what it printed.
    Compile {
        source: PathBuf,
        output: String,
    },
    /// The C compiler could not be started.
    Compiler(std::io::Error),
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
            DevError::Compiler(e) => write!(f, "cannot run the C compiler (cc): {e}"),
            DevError::Pack(e) => write!(f, "{e}"),
            DevError::Load(e) => write!(f, "{e}"),
            DevError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            DevError::Watch(e) => write!(f, "cannot watch the sources: {e}"),
        }
    }
}

impl std::error::Error for DevError {}

/// A module built from C sources and kept up to date with them.
pub struct Session {
    sources: Vec<PathBuf>,
    work: PathBuf,
    module: PathBuf,
    executable: bool,
    registry: Registry,
}

type Fn0 = extern "C" fn();

impl Session {
    /// Builds `sources` into a module in `work` and loads it. With `executable`, the module's
    /// entry point is `main`.
    pub fn start(
        sources: Vec<PathBuf>,
        work: PathBuf,
        executable: bool,
    ) -> Result<Session, DevError> {
        let module = work.join("module.smf");
        let session = Session {
            sources,
            work,
            module,
            executable,
            registry: Registry::new(),
        };
        session.build()?;
        // SAFETY: running the user's program is what `smf dev` is for; module files are
        // replaced by the packer's rename, never rewritten in place.
        unsafe { session.registry.load(&session.module) }.map_err(DevError::Load)?;
        Ok(session)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The module file the session builds and loads.
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// Compiles every source and packs the objects into the module file.
    fn build(&self) -> Result<(), DevError> {
        let mut inputs = Vec::with_capacity(self.sources.len());
        for (i, source) in self.sources.iter().enumerate() {
            let object = self.work.join(format!("{i}.o"));
            let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args(["-std=gnu11", "-fPIC", "-O1", "-g", "-c"])
                .arg(source)
                .arg("-o")
                .arg(&object)
                .output()
                .map_err(DevError::Compiler)?;
            if !output.status.success() {
                return Err(DevError::Compile {
                    source: source.clone(),
                    output: String::from_utf8_lossy(&output.stderr).into_owned(),
                });
            }
            let data = std::fs::read(&object).map_err(|error| DevError::Io {
                path: object.clone(),
                error,
            })?;
            inputs.push(smf_pack::Input {
                name: source.display().to_string(),
                data,
            });
        }
        let options = smf_pack::Options {
            entry: self.executable.then(|| "main".to_owned()),
            reloadable: true,
            needed: vec![],
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

    /// Rebuilds and reloads. On error the running version stays.
    pub fn rebuild(&self) -> Result<ReloadReport, DevError> {
        self.build()?;
        // SAFETY: running the user's program is what `smf dev` is for; module files are
        // replaced by the packer's rename, never rewritten in place.
        unsafe { self.registry.reload(&self.module) }.map_err(DevError::Load)
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
            .sources
            .first()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        // SAFETY: the module was packed with `main` as its entry point (`executable`).
        let status = unsafe { module.run_main(&[program]) }.map_err(DevError::Load)?;
        flush_c_stdio();
        Ok(status)
    }

    /// Watches the sources; the receiver yields once per debounced batch of changes.
    pub fn watch(
        &self,
    ) -> Result<
        (
            Debouncer<impl notify_debouncer_mini::notify::Watcher>,
            Receiver<()>,
        ),
        DevError,
    > {
        let (tx, rx) = channel();
        let sources: Vec<PathBuf> = self
            .sources
            .iter()
            .filter_map(|s| std::fs::canonicalize(s).ok())
            .collect();
        let mut debouncer = new_debouncer(
            Duration::from_millis(30),
            move |result: DebounceEventResult| {
                if let Ok(events) = result {
                    if events.iter().any(|e| {
                        sources
                            .iter()
                            .any(|s| std::fs::canonicalize(&e.path).is_ok_and(|p| &p == s))
                    }) {
                        let _ = tx.send(());
                    }
                }
            },
        )
        .map_err(|e| DevError::Watch(e.to_string()))?;
        // Editors often replace a file rather than write it, so watch the directories.
        let mut dirs: Vec<PathBuf> = self
            .sources
            .iter()
            .filter_map(|s| std::fs::canonicalize(s).ok()?.parent().map(Path::to_owned))
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            debouncer
                .watcher()
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| DevError::Watch(e.to_string()))?;
        }
        Ok((debouncer, rx))
    }

    /// The sources' current content, to tell a real edit from an event that changed nothing
    /// (an editor touching a file, the compiler opening it).
    pub fn snapshot(&self) -> Vec<Vec<u8>> {
        self.sources
            .iter()
            .map(|s| std::fs::read(s).unwrap_or_default())
            .collect()
    }

    /// How long ago the most recently modified source was saved.
    pub fn since_last_save(&self) -> Option<Duration> {
        let newest = self
            .sources
            .iter()
            .filter_map(|s| std::fs::metadata(s).ok()?.modified().ok())
            .max()?;
        SystemTime::now().duration_since(newest).ok()
    }
}

/// Flushes C stdio, so that what module code printed reaches a pipe promptly.
pub fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream; it takes no pointer we own.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Runs `smf dev`: calls `call` every `every` (or the entry once per version), and rebuilds
/// and reloads on every change of the sources, reporting to stderr. Runs until killed, or
/// until `deadline` if given.
pub fn run(
    sources: Vec<PathBuf>,
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
    let session = Session::start(sources, work.path().to_owned(), call.is_none())?;
    let (_watcher, changes) = session.watch()?;
    eprintln!(
        "smf dev: watching {} source(s); edit and save to reload",
        session.sources.len()
    );
    let handle = call
        .as_deref()
        .map(|symbol| session.current(symbol))
        .transpose()?;
    if handle.is_none() {
        report_status(session.run_main());
    }
    let mut next_call = Instant::now();
    let mut built = session.snapshot();
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
        match changes.recv_timeout(wait) {
            Ok(()) => {
                while changes.try_recv().is_ok() {}
                let now = session.snapshot();
                if now == built {
                    continue;
                }
                built = now;
                match session.rebuild() {
                    Ok(report) => {
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
                    Err(e) => {
                        eprintln!("smf dev: {e}\nsmf dev: the previous version keeps running")
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(DevError::Watch("the file watcher stopped".into()));
            }
        }
    }
}

fn report_status(result: Result<i32, DevError>) {
    match result {
        Ok(status) => eprintln!("smf dev: main returned {status}"),
        Err(e) => eprintln!("smf dev: {e}"),
    }
}
