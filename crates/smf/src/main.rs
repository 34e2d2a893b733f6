//! `smf`: pack, inspect, verify and run Simple modules.
//!
//! A thin shell over the libraries: argument parsing and printing only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use simple_loader::{LoadOptions, load_file};
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

#[derive(Subcommand)]
enum Command {
    /// Link ELF x86-64 relocatable objects (built with -fPIC) into one module.
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
        /// A native library to open before imports are resolved (like DT_NEEDED); repeatable.
        #[arg(long = "needed", value_name = "LIBRARY")]
        needed: Vec<String>,
        /// Input objects.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Load an executable module and call its entry as `int main(int argc, char **argv)`.
    Run {
        file: PathBuf,
        /// Arguments passed to the program (argv[1..]).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Load a module and call an exported function with up to six integer arguments.
    Call {
        file: PathBuf,
        symbol: String,
        #[arg(allow_negative_numbers = true)]
        args: Vec<i64>,
        /// How to read the function's return value.
        #[arg(long = "ret", value_enum, default_value_t = Ret::Long)]
        ret: Ret,
    },
    /// Describe a module: header, sections, symbols, imports, relocations, needed libraries.
    Inspect { file: PathBuf },
    /// Validate a module's structure and its module hash; exit 0 only if it is well-formed.
    Verify { file: PathBuf },
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
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("smf: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pack {
            output,
            entry,
            reloadable,
            needed,
            inputs,
        } => {
            let inputs = inputs
                .iter()
                .map(|path| {
                    let data =
                        std::fs::read(path).with_context(|| format!("{}", path.display()))?;
                    Ok(smf_pack::Input {
                        name: path.display().to_string(),
                        data,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let options = smf_pack::Options {
                entry,
                reloadable,
                needed,
            };
            let bytes = smf_pack::pack(&inputs, &options)?;
            std::fs::write(&output, bytes).with_context(|| format!("{}", output.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { file, args } => {
            // A crash in module code (constructors included) names the module function before
            // the process dies of the signal, with the signal's usual exit status.
            simple_loader::install_crash_handler().context("installing the crash handler")?;
            let module = load_file(&file, &LoadOptions::default())?;
            if !module.is_executable() {
                bail!(
                    "{}: not an executable module (pack it with --entry main)",
                    file.display()
                );
            }
            // Like a native program: the module stays mapped to the end and its destructors
            // run at exit, after main's atexit handlers, before stdio is flushed.
            let module = module.keep_until_exit();
            let argv: Vec<String> = std::iter::once(file.display().to_string())
                .chain(args)
                .collect();
            // SAFETY: running an executable module's entry as C main is what `smf run` is for;
            // the packer only sets an entry point on a defined function.
            let status = unsafe { module.run_main(&argv)? };
            // `exit` runs atexit handlers and the module's destructors, then flushes C stdio.
            std::process::exit(status)
        }
        Command::Call {
            file,
            symbol,
            args,
            ret,
        } => {
            let module = load_file(&file, &LoadOptions::default())?;
            let result = call(&module, &symbol, &args)?;
            match ret {
                Ret::Long => println!("{}", result as i64),
                Ret::Int => println!("{}", result as u32 as i32),
                Ret::Ulong => println!("{result}"),
                Ret::Void => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file } => {
            let bytes = read(&file)?;
            let module = Module::parse(&bytes).with_context(|| format!("{}", file.display()))?;
            let mut report = String::new();
            smf_format::report::write_report(&module, &mut report)?;
            print!("{report}");
            if let Err(e) = module.verify_hash() {
                eprintln!("smf: warning: {}: {e}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { file } => {
            let bytes = read(&file)?;
            let module = Module::parse(&bytes).with_context(|| format!("{}", file.display()))?;
            module
                .verify_hash()
                .with_context(|| format!("{}", file.display()))?;
            println!(
                "{}: OK: SMF {}.{}, {} sections, {} symbols, {} imports, {} relocations",
                file.display(),
                module.header().version_major,
                module.header().version_minor,
                module.sections().len(),
                module.symbols().len(),
                module.imports().len(),
                module.relocations().len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}", path.display()))
}

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
