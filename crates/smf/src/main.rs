//! `smf`: pack, inspect, verify and run Simple modules.
//!
//! A thin shell over the libraries: argument parsing and printing only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use simple_loader::{LoadOptions, load};
use smf_format::Module;

#[derive(Parser)]
#[command(
    name = "smf",
    version,
    about = "Pack, inspect, verify and run Simple modules (.smf/.sme)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which payloads `smf pack --compress` compresses.
#[derive(Clone, Copy, ValueEnum)]
enum CompressWhat {
    /// Every loaded payload.
    All,
    /// Every loaded payload but code, which stays mapped from the file.
    Data,
}

#[derive(Subcommand)]
enum Command {
    /// Link ELF x86-64 relocatable objects (built with -fPIC) and static archives into one
    /// module.
    ///
    /// An archive (.a) contributes the members that define a symbol still undefined, searched
    /// again until none is added, wherever it stands on the command line (see
    /// docs/LINKING.md). An argument @FILE is replaced by the arguments in FILE.
    Pack {
        /// Output file (.smf for a library, .sme for an executable).
        #[arg(short, long)]
        output: PathBuf,
        /// Make an executable module whose entry point is this function (usually `main`).
        #[arg(long)]
        entry: Option<String>,
        /// Mark the module as replaceable while the process runs.
        #[arg(long)]
        reloadable: bool,
        /// A native library to open before imports are resolved (like DT_NEEDED), or, as
        /// NAME@RANGE (`geometry@^1.2`, `log@*`), a module this one depends on, which a
        /// registry must have loaded in that version range; repeatable.
        #[arg(long = "needed", value_name = "LIBRARY|NAME@RANGE")]
        needed: Vec<String>,
        /// The module's version, MAJOR.MINOR.PATCH (recorded in its version table).
        #[arg(long = "version", value_name = "X.Y.Z")]
        module_version: Option<String>,
        /// The name other modules' `--needed NAME@RANGE` name this one by (default: a loader
        /// uses the file name up to its first `.`).
        #[arg(long = "module-name", value_name = "NAME")]
        module_name: Option<String>,
        /// A GNU ld version script: each name under `global:` of a node named like
        /// `LIB_1.2` gets that version (symbols not listed have the module's).
        #[arg(long = "version-script", value_name = "FILE")]
        version_script: Option<PathBuf>,
        /// Fail when an import is defined by no input, no --needed library and not the C
        /// library (read from disk); without it, each is a warning.
        #[arg(long = "no-undefined")]
        no_undefined: bool,
        /// A file of names the host program defines for the module (Registry::define), one
        /// a line (`#` starts a comment): not reported as undefined; repeatable.
        #[arg(long = "host-symbols", value_name = "FILE")]
        host_symbols: Vec<PathBuf>,
        /// Store loaded payloads zstd-compressed: `all` (the default), or `data` to keep
        /// code uncompressed and mapped straight from the file. A payload compression does
        /// not shrink by an eighth stays uncompressed (docs/FORMAT.md, *Compressed payloads*).
        #[arg(long, value_enum, value_name = "WHAT", num_args = 0..=1, require_equals = true,
              default_missing_value = "all")]
        compress: Option<CompressWhat>,
        /// Input objects and archives.
        #[arg(required_unless_present = "library")]
        inputs: Vec<PathBuf>,
        /// Link the archive libNAME.a from the first -L directory that has it (-l:FILE: the
        /// file FILE); an input in its place among the others.
        #[arg(short = 'l', value_name = "NAME")]
        library: Vec<String>,
        /// A directory -l searches, in the order given.
        #[arg(short = 'L', value_name = "DIR")]
        library_path: Vec<PathBuf>,
        /// Take every member of the archives that follow, not only the members needed.
        #[arg(long, action = ArgAction::Append, num_args = 0, default_missing_value = "true")]
        whole_archive: Vec<bool>,
        /// End --whole-archive for the archives that follow.
        #[arg(long, action = ArgAction::Append, num_args = 0, default_missing_value = "true")]
        no_whole_archive: Vec<bool>,
        /// Accepted as ld accepts it; all archives are searched as one group anyway.
        #[arg(long, action = ArgAction::Count)]
        start_group: u8,
        /// Ends --start-group.
        #[arg(long, action = ArgAction::Count)]
        end_group: u8,
        /// Inputs, -l libraries and --[no-]whole-archive in command-line order (filled from
        /// the argument positions after parsing).
        #[arg(skip)]
        link_order: Vec<LinkItem>,
    },
    /// Load an executable module and call its entry as `int main(int argc, char **argv)`.
    Run {
        /// Refuse the module unless `FILE.sig` is a valid signature by a key of KEYFILE (a
        /// public key file from `smf keygen`); repeatable. Must come before FILE.
        #[arg(long = "require-signature", value_name = "KEYFILE")]
        require_signature: Vec<PathBuf>,
        /// The module, then the arguments passed to the program (argv[1..]): everything
        /// after FILE is the program's, `--help` and smf's own options included.
        #[arg(
            required = true,
            trailing_var_arg = true,
            value_names = ["FILE", "ARGS"]
        )]
        program: Vec<std::ffi::OsString>,
    },
    /// Load a module and call an exported function with up to six integer arguments.
    ///
    /// The arguments are not checked against the function (a module records its functions'
    /// types only when packed from objects compiled with -g; `smf inspect --types` shows
    /// them): pass as many as it takes, at most six (the integer argument registers of the
    /// x86-64 C calling convention); more are refused before the module is loaded.
    Call {
        /// Refuse the module unless `FILE.sig` is a valid signature by a key of KEYFILE;
        /// repeatable.
        #[arg(long = "require-signature", value_name = "KEYFILE")]
        require_signature: Vec<PathBuf>,
        file: PathBuf,
        symbol: String,
        #[arg(allow_negative_numbers = true)]
        args: Vec<i64>,
        /// How to read the function's return value.
        #[arg(long = "ret", value_enum, default_value_t = Ret::Long)]
        ret: Ret,
    },
    /// Build C sources into a reloadable module, run it, and rebuild and reload it on every
    /// save; the old code keeps running when a build or reload fails.
    Dev {
        /// Call this exported `void f(void)` function every --every milliseconds; without
        /// it, the module's `main` runs once per version.
        #[arg(long)]
        call: Option<String>,
        /// Interval between calls, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        every: u64,
        /// Stop after this many milliseconds (for scripts and tests); runs until killed otherwise.
        #[arg(long, hide = true)]
        stop_after: Option<u64>,
        /// A shell command that builds the INPUTS (objects or archives) before each pack,
        /// e.g. "make lib.o"; without it, INPUTS are C or C++ sources compiled here.
        #[arg(long, value_name = "COMMAND")]
        build: Option<String>,
        /// A file or directory (watched recursively) whose changes trigger a rebuild;
        /// repeatable. By default, the sources.
        #[arg(long, value_name = "PATH")]
        watch: Vec<PathBuf>,
        /// Add DIR to the include path of the compiler.
        #[arg(short = 'I', value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Define a preprocessor macro (NAME or NAME=VALUE).
        #[arg(short = 'D', value_name = "NAME[=VALUE]")]
        define: Vec<String>,
        /// An argument for the compiler (after CFLAGS or CXXFLAGS); repeatable.
        #[arg(long = "cflag", value_name = "FLAG", allow_hyphen_values = true)]
        cflag: Vec<String>,
        /// A native library the module opens (like DT_NEEDED); repeatable. C++ sources add
        /// libstdc++.so.6.
        #[arg(long = "needed", value_name = "LIBRARY")]
        needed: Vec<String>,
        /// Link the archive libNAME.a from the -L directories.
        #[arg(short = 'l', value_name = "NAME")]
        library: Vec<String>,
        /// Search DIR for -l archives.
        #[arg(short = 'L', value_name = "DIR")]
        library_path: Vec<PathBuf>,
        /// C sources (compiled with CC, default cc, and CFLAGS), C++ sources (.cc, .cpp,
        /// .cxx: CXX, default c++, and CXXFLAGS), or with --build the objects it makes.
        #[arg(required = true, value_name = "INPUTS")]
        sources: Vec<PathBuf>,
    },
    /// Describe a module: header, sections, symbols, imports, relocations, needed libraries.
    /// With one or more part options, only those parts (like readelf's -h, -S, -s, -r).
    Inspect {
        file: PathBuf,
        /// Print the report as one JSON object, for tools.
        #[arg(long)]
        json: bool,
        /// The header.
        #[arg(long)]
        header: bool,
        /// The section table.
        #[arg(long)]
        sections: bool,
        /// The symbol table.
        #[arg(long)]
        symbols: bool,
        /// The imports.
        #[arg(long)]
        imports: bool,
        /// The load-time relocations (listed and packed).
        #[arg(long)]
        relocs: bool,
        /// The needed libraries.
        #[arg(long)]
        needed: bool,
        /// The constructors and destructors.
        #[arg(long)]
        constructors: bool,
        /// The types of exports and imports, and the layouts of their structs (from the
        /// objects' DWARF: pack objects compiled with -g).
        #[arg(long)]
        types: bool,
        /// The source lines of the code (the srcmap table, from `-g` objects); only printed
        /// when asked for.
        #[arg(long)]
        lines: bool,
    },
    /// Validate a module's structure and its module hash; exit 0 only if it is well-formed
    /// (and, with --key, signed by a trusted key).
    Verify {
        file: PathBuf,
        /// Also require `FILE.sig` to be a valid signature by a key of this public key file;
        /// repeatable.
        #[arg(long = "key", value_name = "PUBLIC_KEY_FILE")]
        key: Vec<PathBuf>,
    },
    /// Sign a module: write a detached ed25519 signature of its module hash to `FILE.sig`.
    Sign {
        /// The secret key file (from `smf keygen`).
        #[arg(long = "key", value_name = "SECRET_KEY_FILE")]
        key: PathBuf,
        file: PathBuf,
        /// Where to write the signature (default: FILE.sig, where the loader looks for it).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Generate an ed25519 key pair: the secret key in OUTPUT (mode 0600), the public key in
    /// OUTPUT.pub. Never overwrites a file.
    Keygen { output: PathBuf },
    /// Print a completion script for SHELL, e.g.
    /// `smf completions bash > ~/.local/share/bash-completion/completions/smf`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Ret {
    /// C `long`: a signed 64-bit integer.
    Long,
    /// C `int`: a signed 32-bit integer.
    Int,
    /// C `unsigned long`.
    Ulong,
    /// No return value.
    Void,
}

fn main() -> ExitCode {
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("smf: error: {}", one_line(&error));
            return ExitCode::FAILURE;
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("smf: error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// One link input of `smf pack`, or a switch that applies to the archives after it.
#[derive(Debug, Clone)]
enum LinkItem {
    Input(PathBuf),
    Library(String),
    WholeArchive(bool),
}

/// Parses the command line; for `pack`, after expanding `@FILE` arguments as GNU ld does
/// and with its inputs put in command-line order, which clap does not keep across options.
fn parse_command_line() -> Result<Cli> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "pack") {
        args = smf_pack::response_file::expand(args)?;
    }
    let matches = Cli::command().get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Pack { link_order, .. }, Some(pack)) =
        (&mut cli.command, matches.subcommand_matches("pack"))
    {
        *link_order = pack_link_order(pack);
    }
    Ok(cli)
}

fn pack_link_order(pack: &ArgMatches) -> Vec<LinkItem> {
    let mut items: Vec<(usize, LinkItem)> = Vec::new();
    let mut add = |id: &str, item: &dyn Fn(&std::ffi::OsStr) -> LinkItem| {
        if let (Some(indices), Some(values)) = (pack.indices_of(id), pack.get_raw(id)) {
            items.extend(
                indices
                    .zip(values)
                    .map(|(index, value)| (index, item(value))),
            );
        }
    };
    add("inputs", &|v| LinkItem::Input(PathBuf::from(v)));
    add("library", &|v| {
        LinkItem::Library(v.to_string_lossy().into_owned())
    });
    add("whole_archive", &|_| LinkItem::WholeArchive(true));
    add("no_whole_archive", &|_| LinkItem::WholeArchive(false));
    items.sort_by_key(|&(index, _)| index);
    items.into_iter().map(|(_, item)| item).collect()
}

/// Reads the inputs of `smf pack` in order: `-l` libraries found in the `-L` directories,
/// and under `--whole-archive` every member of each archive as an object of its own.
fn pack_inputs(order: &[LinkItem], library_path: &[PathBuf]) -> Result<Vec<smf_pack::Input>> {
    let mut inputs = Vec::new();
    let mut whole_archive = false;
    for item in order {
        let path = match item {
            LinkItem::WholeArchive(on) => {
                whole_archive = *on;
                continue;
            }
            LinkItem::Input(path) => path.clone(),
            LinkItem::Library(name) => smf_pack::archive::find_library(name, library_path)?,
        };
        let data = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        let name = path.display().to_string();
        if whole_archive && smf_pack::archive::is_archive(&data) {
            inputs.extend(smf_pack::archive::all_members(&name, &data)?);
        } else {
            inputs.push(smf_pack::Input { name, data });
        }
    }
    Ok(inputs)
}

/// The error and its causes on one line, like `{:#}`, but without repeating a cause whose
/// message the error's own message already includes (library errors such as
/// `LoadError::Format` show their source and also return it from `source()`).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// The module file `bytes` with its compressed tables decompressed, which is what
/// `Module::parse` reads (the bytes themselves when none is compressed).
fn expanded(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    Ok(
        match smf_format::expand_tables(bytes, &smf_format::Limits::default())? {
            Some(expanded) => std::borrow::Cow::Owned(expanded),
            None => std::borrow::Cow::Borrowed(bytes),
        },
    )
}

/// Checks the module hash of the file `bytes`, as stored (compressed tables included).
fn check_hash(bytes: &[u8], module: &Module<'_>) -> std::result::Result<(), smf_format::Error> {
    let computed = smf_format::compute_module_hash(bytes)?;
    if computed != module.header().module_hash {
        return Err(smf_format::Error::HashMismatch {
            stored: module.header().module_hash,
            computed,
        });
    }
    Ok(())
}

/// Whether a packed module has relocations that make the loader give it a static
/// thread-local block.
fn needs_static_tls(bytes: &[u8]) -> bool {
    let expanded = expanded(bytes).ok();
    smf_format::Module::parse(expanded.as_deref().unwrap_or(bytes)).is_ok_and(|module| {
        module.relocations().iter().any(|r| {
            matches!(
                r.kind,
                smf_format::RelocKind::TpOffset | smf_format::RelocKind::TlsDescriptor
            )
        })
    })
}

/// The names in `--host-symbols` files: one a line, blank lines and `#` comments skipped.
fn read_symbol_lists(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
        names.extend(
            text.lines()
                .map(|line| line.split('#').next().unwrap_or("").trim())
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(names)
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pack {
            output,
            entry,
            reloadable,
            needed,
            no_undefined,
            host_symbols,
            library_path,
            link_order,
            compress,
            module_version,
            module_name,
            version_script,
            ..
        } => {
            let inputs = pack_inputs(&link_order, &library_path)?;
            // NAME@RANGE is a module dependency; anything else a native library.
            let mut libraries = Vec::new();
            let mut module_dependencies = Vec::new();
            for item in needed {
                match smf_format::version::parse_dependency(&item) {
                    None => libraries.push(item),
                    Some(dependency) => {
                        module_dependencies.push(dependency.map_err(anyhow::Error::msg)?);
                    }
                }
            }
            let version = module_version
                .map(|v| v.parse::<smf_format::Version>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("--version: {e}"))?;
            let symbol_versions = match &version_script {
                None => Vec::new(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("{}", path.display()))?;
                    smf_pack::version_script::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                }
            };
            let options = smf_pack::Options {
                entry,
                reloadable,
                needed: libraries,
                version,
                module_name,
                module_dependencies,
                symbol_versions,
                host_symbols: read_symbol_lists(&host_symbols)?,
                compression: match compress {
                    None => smf_format::Compression::None,
                    Some(CompressWhat::All) => smf_format::Compression::All {
                        level: smf_format::compress::DEFAULT_LEVEL,
                    },
                    Some(CompressWhat::Data) => smf_format::Compression::AllButCode {
                        level: smf_format::compress::DEFAULT_LEVEL,
                    },
                },
                undefined: if no_undefined {
                    smf_pack::UndefinedSymbols::Error
                } else {
                    smf_pack::UndefinedSymbols::Warn
                },
            };
            let packed = smf_pack::pack_report(&inputs, &options)?;
            for undefined in &packed.undefined {
                eprintln!("smf: warning: {undefined}");
            }
            if !packed.unreadable_libraries.is_empty() {
                eprintln!(
                    "smf: warning: undefined symbols not checked: cannot find or read {}",
                    packed.unreadable_libraries.join(", ")
                );
            }
            let bytes = packed.module;
            replace_file(&output, &bytes).with_context(|| format!("{}", output.display()))?;
            if reloadable && needs_static_tls(&bytes) {
                eprintln!(
                    "smf: note: {} uses initial-exec or TLS-descriptor thread-locals; each \
                     reload of it uses up part of glibc's small static TLS reserve (see \
                     docs/RUNTIME.md); compile it without -ftls-model=initial-exec and \
                     -mtls-dialect=gnu2 to reload it without limit",
                    output.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            require_signature,
            program,
        } => {
            let mut program = program.into_iter();
            let file = PathBuf::from(program.next().unwrap_or_default());
            let args = program
                .map(|arg| {
                    arg.into_string()
                        .map_err(|arg| anyhow::anyhow!("argument {arg:?} is not valid UTF-8"))
                })
                .collect::<Result<Vec<String>>>()?;
            // A crash in module code (constructors included) names the module function before
            // the process dies of the signal, with the signal's usual exit status. The crash
            // handler runs what it replaced afterwards: the default action, as for a native
            // program, not the Rust runtime's stack-overflow handler, which would end a
            // module's stack overflow as smf's own with SIGABRT.
            #[cfg(unix)]
            for signal in [libc::SIGSEGV, libc::SIGBUS] {
                // SAFETY: no handler of smf's own is replaced; the runtime's only reports
                // stack overflows of smf's threads.
                unsafe { libc::signal(signal, libc::SIG_DFL) };
            }
            simple_loader::install_crash_handler().context("installing the crash handler")?;
            // Its constructors and its main receive the same argv, kept to the end.
            let argv: Vec<String> = std::iter::once(file.display().to_string())
                .chain(args)
                .collect();
            let options = load_options(&require_signature)?.with_arguments(&argv);
            // SAFETY: running the module is what the user asked for; smf loads it once and exits.
            let module = unsafe { load(&file, &options, None) }?;
            if !module.is_executable() {
                bail!(
                    "{}: not an executable module (pack it with --entry main)",
                    file.display()
                );
            }
            // Like a native program: the module stays mapped to the end and its destructors
            // run at exit, after main's atexit handlers, before stdio is flushed.
            let module = module.keep_until_exit();
            // SAFETY: running an executable module's entry as C main is what `smf run` is for;
            // the packer only sets an entry point on a defined function.
            let status = unsafe { module.run_main_as_loaded()? };
            // `exit` runs atexit handlers and the module's destructors, then flushes C stdio.
            simple_loader::exit(status)
        }
        Command::Call {
            file,
            symbol,
            args,
            ret,
            require_signature,
        } => {
            // Refused before the module is loaded, which runs its constructors.
            if args.len() > MAX_CALL_ARGUMENTS {
                bail!(
                    "`smf call` passes at most six integer arguments, {} given",
                    args.len()
                );
            }
            // SAFETY: running the module is what the user asked for; smf loads it once and exits.
            let module = unsafe { load(&file, &load_options(&require_signature)?, None) }?;
            let result = call(&module, &symbol, &args)?;
            match ret {
                Ret::Long => println!("{}", result as i64),
                Ret::Int => println!("{}", result as u32 as i32),
                Ret::Ulong => println!("{result}"),
                Ret::Void => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev {
            call,
            every,
            stop_after,
            build,
            watch,
            include,
            define,
            cflag,
            needed,
            library,
            library_path,
            sources,
        } => {
            let deadline = stop_after
                .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
            let mut project = smf_dev::Project::sources(sources);
            project.build_command = build;
            project.watch = watch;
            project.compiler_args = include
                .iter()
                .map(|dir| format!("-I{}", dir.display()))
                .chain(define.iter().map(|d| format!("-D{d}")))
                .chain(cflag)
                .collect();
            project.needed = needed;
            project.libraries = library;
            project.library_dirs = library_path;
            smf_dev::run(
                project,
                call,
                std::time::Duration::from_millis(every),
                deadline,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "smf", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            file,
            json,
            header,
            sections,
            symbols,
            imports,
            relocs,
            needed,
            constructors,
            types,
            lines,
        } => {
            let stored = read(&file)?;
            let bytes = expanded(&stored).with_context(|| format!("{}", file.display()))?;
            let module = Module::parse(&bytes).with_context(|| format!("{}", file.display()))?;
            let source_map = if lines {
                module
                    .source_map()
                    .with_context(|| format!("{}", file.display()))?
            } else {
                None
            };
            let selected = smf_format::report::Parts {
                header,
                sections,
                symbols,
                imports,
                relocations: relocs,
                needed,
                constructors,
                types,
            };
            let parts = if selected == smf_format::report::Parts::NONE && !lines {
                smf_format::report::Parts::ALL
            } else {
                selected
            };
            let mut report = String::new();
            if json {
                let mut value = smf_format::report::json_report(&module, parts);
                if let Some(object) = value.as_object_mut().filter(|_| lines) {
                    let rows = smf_format::srcmap::json_source_lines(source_map.as_ref());
                    object.insert("lines".into(), rows);
                }
                report = serde_json::to_string_pretty(&value)?;
                report.push('\n');
            } else {
                smf_format::report::write_report_parts(&module, parts, &mut report)?;
                if lines {
                    if !report.is_empty() {
                        report.push('\n');
                    }
                    smf_format::srcmap::write_source_lines(source_map.as_ref(), &mut report)?;
                }
            }
            // Like readelf's, the report is often piped into `head` or `less`, which may
            // close the pipe before it is all written: that ends the output, quietly.
            match std::io::stdout().lock().write_all(report.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS);
                }
                written => written.with_context(|| "writing the report")?,
            }
            if let Err(e) = check_hash(&stored, &module) {
                eprintln!("smf: warning: {}: {e}", file.display());
            }
            // Broken local entries, which a load never reads (the report shows them too).
            for e in module.symbols().iter().filter_map(Result::err) {
                eprintln!("smf: warning: {}: {e}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { file, key } => {
            let stored = read(&file)?;
            let bytes = expanded(&stored).with_context(|| format!("{}", file.display()))?;
            let module = Module::parse(&bytes).with_context(|| format!("{}", file.display()))?;
            check_hash(&stored, &module).with_context(|| format!("{}", file.display()))?;
            module
                .source_map()
                .with_context(|| format!("{}", file.display()))?;
            // Every symbol entry, local ones included, which a load leaves unread.
            module
                .symbols()
                .to_vec()
                .with_context(|| format!("{}", file.display()))?;
            let signer = if key.is_empty() {
                None
            } else {
                let trusted = public_keys(&key)?;
                let signature_path = smf_sign::signature_path(&file);
                let signature = simple_loader::read_signature_file(&signature_path)
                    .with_context(|| format!("{}: signature", file.display()))?;
                // The hash was just checked against the content.
                let signer =
                    smf_sign::verify_hash(&module.header().module_hash, &signature, &trusted)
                        .with_context(|| {
                            format!("{}: signature {}", file.display(), signature_path.display())
                        })?;
                Some(*signer)
            };
            println!(
                "{}: OK: SMF {}.{}, {} sections, {} symbols, {} imports, {} relocations",
                file.display(),
                module.header().version_major,
                module.header().version_minor,
                module.sections().len(),
                module.symbols().len(),
                module.imports().len(),
                module.relocations().len() + module.relative_relocations().len()
            );
            if let Some(signer) = signer {
                println!("{}: signed by trusted key {signer}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign { key, file, output } => {
            let secret = smf_sign::SecretKey::read_file(&key)?;
            let bytes = read(&file)?;
            let signature = smf_sign::sign_module(&bytes, &secret)
                .with_context(|| format!("{}", file.display()))?;
            let output = output.unwrap_or_else(|| smf_sign::signature_path(&file));
            std::fs::write(&output, signature.to_bytes())
                .with_context(|| format!("{}", output.display()))?;
            println!(
                "{}: signed with key {}",
                output.display(),
                secret.public_key()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { output } => {
            let secret = smf_sign::SecretKey::generate()?;
            let public = smf_sign::write_key_pair(&output, &secret)?;
            println!(
                "secret key: {}\npublic key: {} ({})",
                output.display(),
                public.display(),
                secret.public_key()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The load options of `run` and `call`: a signature by one of the keys of `key_files` is
/// required when any is given.
fn load_options(key_files: &[PathBuf]) -> Result<LoadOptions> {
    // A program run from the command line may be debugged: describe it to gdb. It is loaded
    // once, so the hash check (corruption caught before any code runs) costs little.
    let mut options = LoadOptions::default()
        .with_debugger(true)
        .with_verify_hash(true);
    if !key_files.is_empty() {
        options = options.with_signature(simple_loader::SignaturePolicy::Require(public_keys(
            key_files,
        )?));
    }
    Ok(options)
}

fn public_keys(key_files: &[PathBuf]) -> Result<Vec<smf_sign::PublicKey>> {
    let mut keys = Vec::new();
    for file in key_files {
        keys.extend(smf_sign::PublicKey::read_file(file)?);
    }
    Ok(keys)
}

/// Writes `bytes` to a new file beside `path` and renames it over `path`. A process that has
/// the old module loaded keeps its (mapped) file intact, as with a rebuilt shared library;
/// rewriting the file in place would change or truncate pages that process still uses.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Reads a module file; anything but a regular file is refused (a FIFO would block).
fn read(path: &Path) -> Result<Vec<u8>> {
    simple_loader::read_module_file(path).with_context(|| format!("{}", path.display()))
}

/// The integer argument registers of the x86-64 System V calling convention.
const MAX_CALL_ARGUMENTS: usize = 6;

/// Calls `symbol` with `args` passed in integer registers, returning the raw 64-bit result.
fn call(module: &simple_loader::Module, symbol: &str, args: &[i64]) -> Result<u64> {
    type A = i64;
    // SAFETY (each arm): the user asserts, by naming the symbol and its arguments, that it is
    // a C function taking that many integer arguments. Under the x86-64 System V ABI a
    // function taking fewer integer arguments ignores the extra registers.
    let r = unsafe {
        match *args {
            [] => (*module.get::<extern "C" fn() -> u64>(symbol)?)(),
            [a] => (*module.get::<extern "C" fn(A) -> u64>(symbol)?)(a),
            [a, b] => (*module.get::<extern "C" fn(A, A) -> u64>(symbol)?)(a, b),
            [a, b, c] => (*module.get::<extern "C" fn(A, A, A) -> u64>(symbol)?)(a, b, c),
            [a, b, c, d] => (*module.get::<extern "C" fn(A, A, A, A) -> u64>(symbol)?)(a, b, c, d),
            [a, b, c, d, e] => {
                (*module.get::<extern "C" fn(A, A, A, A, A) -> u64>(symbol)?)(a, b, c, d, e)
            }
            [a, b, c, d, e, f] => {
                (*module.get::<extern "C" fn(A, A, A, A, A, A) -> u64>(symbol)?)(a, b, c, d, e, f)
            }
            _ => bail!(
                "`smf call` passes at most six integer arguments, {} given",
                args.len()
            ),
        }
    };
    Ok(r)
}
