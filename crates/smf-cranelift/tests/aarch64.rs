//! aarch64: the test program compiled for aarch64 and written by `SmfModule`, run under
//! qemu-user. The loader does not run on aarch64 here, so a small C harness (built with the
//! aarch64 cross compiler) maps the image at a fixed address, where this test has applied
//! the module's load-time relocations as `docs/FORMAT.md` says, points the imports' GOT
//! slots at its own `host_triple` and `host_value`, makes the code read+execute, and calls
//! the functions. What is checked is the emitter's aarch64 table as Cranelift's
//! position-independent aarch64 code uses it: `bl` between functions, `adrp` + `ldr` of GOT
//! slots for every data and import address, pointers in data, the layout.
//!
//! Needs `aarch64-linux-gnu-gcc` (with a static C library) and `qemu-aarch64`; without them
//! the test says so and passes, unless `SMF_REQUIRE_CROSS` is set (`.ci/run` sets it).

mod common;

use std::fmt::Write as _;
use std::process::Command;

use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::default_libcall_names;
use smf_cranelift::{SmfBuilder, SmfModule};
use smf_format::{RelocKind, SectionKind};

const BASE: u64 = 0x1000_0000;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn aarch64_program_runs_under_qemu() {
    if !(have("aarch64-linux-gnu-gcc") && have("qemu-aarch64")) {
        assert!(
            std::env::var_os("SMF_REQUIRE_CROSS").is_none(),
            "SMF_REQUIRE_CROSS is set but aarch64-linux-gnu-gcc or qemu-aarch64 is missing"
        );
        eprintln!("skipped: aarch64-linux-gnu-gcc or qemu-aarch64 is missing");
        return;
    }
    let mut flags = settings::builder();
    flags.set("is_pic", "true").unwrap();
    let isa = cranelift_codegen::isa::lookup_by_name("aarch64-unknown-linux-gnu")
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let mut module = SmfModule::new(SmfBuilder::new(isa, "arm", default_libcall_names()).unwrap());
    common::program(&mut module, 5);
    let bytes = module.finish().emit().unwrap();
    let parsed = smf_format::Module::parse(&bytes).unwrap();
    assert_eq!(parsed.header().arch, smf_format::Arch::Aarch64);
    // Laid out for 64 KiB pages, as `smf pack` lays out aarch64 modules.
    assert_eq!(parsed.header().page_size, 0x10000);

    // The image at BASE, relocated.
    let size = parsed.header().image_size as usize;
    let mut image = vec![0u8; size];
    let mut text = None;
    for s in parsed.sections().iter().filter(|s| s.kind.is_loaded()) {
        let at = s.vaddr as usize;
        image[at..at + s.data.len()].copy_from_slice(s.data);
        if s.kind == SectionKind::Code {
            text = Some((s.vaddr, s.mem_size));
        }
    }
    let word = |image: &mut Vec<u8>, at: u64, value: u64| {
        image[at as usize..at as usize + 8].copy_from_slice(&value.to_le_bytes());
    };
    for offset in parsed.relative_relocations() {
        let at = offset as usize;
        let old = u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
        word(&mut image, offset, BASE + old);
    }
    let mut patches = String::new();
    for r in parsed.relocations() {
        match r.kind {
            RelocKind::Relative64 => word(&mut image, r.offset, BASE.wrapping_add(r.addend as u64)),
            RelocKind::Abs64 => {
                let import = parsed.imports()[r.import.unwrap() as usize].name;
                writeln!(
                    patches,
                    "  *(uint64_t *)(base + {:#x}) = (uint64_t)&{import} + {};",
                    r.offset, r.addend
                )
                .unwrap();
            }
            other => panic!("unexpected relocation {other}"),
        }
    }
    let (text_vaddr, text_size) = text.unwrap();
    let f = |name: &str| parsed.lookup(name).unwrap().value;
    let mut c = String::from(
        "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n#include <sys/mman.h>\n\
         long host_triple(long x) { return x * 3; }\nlong host_value = 1234;\n\
         static const unsigned char image[] = {",
    );
    for b in &image {
        write!(c, "{b},").unwrap();
    }
    write!(
        c,
        "}};\nint main(void) {{\n\
         unsigned char *base = mmap((void *){BASE:#x}, {size}, PROT_READ | PROT_WRITE, \
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);\n\
         if (base != (unsigned char *){BASE:#x}) {{ perror(\"mmap\"); return 2; }}\n\
         memcpy(base, image, sizeof image);\n{patches}\
         if (mprotect(base + {text_vaddr:#x}, {text_size}, PROT_READ | PROT_EXEC)) return 3;\n\
         __builtin___clear_cache((char *)base + {text_vaddr:#x}, (char *)base + {text_vaddr:#x} + {text_size});\n\
         long (*add)(long, long) = (void *)(base + {add:#x});\n\
         long (*fib)(long) = (void *)(base + {fib:#x});\n\
         long (*bump)(void) = (void *)(base + {bump:#x});\n\
         long (*via)(void) = (void *)(base + {via:#x});\n\
         long (*greeting)(void) = (void *)(base + {greeting:#x});\n\
         long (*dispatch)(long, long) = (void *)(base + {dispatch:#x});\n\
         long (*call_host)(long) = (void *)(base + {call_host:#x});\n\
         long (*host_data)(void) = (void *)(base + {host_data:#x});\n\
         long r[10];\n\
         r[0] = add(-7, 1L << 40); r[1] = fib(15); r[2] = bump(); r[3] = bump(); r[4] = via();\n\
         r[5] = greeting(); r[6] = dispatch(0, 9); r[7] = dispatch(1, 9); r[8] = call_host(-5);\n\
         r[9] = host_data();\n\
         for (int i = 0; i < 10; i++) printf(\"%ld \", r[i]);\n\
         printf(\"\\n\");\n return 0;\n}}\n",
        add = f("add"),
        fib = f("fib"),
        bump = f("bump"),
        via = f("via_pointer"),
        greeting = f("greeting_sum"),
        dispatch = f("dispatch"),
        call_host = f("call_host"),
        host_data = f("host_data"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("smf-cranelift-aarch64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("harness.c");
    let exe = dir.join("harness");
    std::fs::write(&source, c).unwrap();
    let cc = Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&exe)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    // A wrong branch can loop forever: bounded by coreutils' timeout.
    let run = Command::new("timeout")
        .args(["60", "qemu-aarch64"])
        .arg(&exe)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "1099511627769 610 5 10 10 215 18 10 -14 1234"
    );
}
