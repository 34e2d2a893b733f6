//! The module hash: BLAKE3-256 of the whole file with bytes 0x30..0x50 taken as zero.

mod common;

use common::*;
use smf_format::raw::MODULE_HASH_RANGE;
use smf_format::*;

/// A small module (one code page and a few tables), so that every bit of it can be flipped.
fn small_module() -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.source_hash = 0x0123_4567_89ab_cdef;
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 6,
        align: 16,
        data: vec![0xb8, 0x2a, 0, 0, 0, 0xc3],
    });
    b.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: 0,
        size: 6,
        type_id: 0,
        version: 0,
    });
    b.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    b.write().unwrap()
}

#[test]
fn the_stored_hash_is_blake3_of_the_file_with_the_field_zeroed() {
    for bytes in [small_module(), full_module()] {
        let mut zeroed = bytes.clone();
        zeroed[0x30..0x50].fill(0);
        assert_eq!(MODULE_HASH_RANGE, 0x30..0x50);
        assert_eq!(
            &bytes[0x30..0x50],
            blake3::hash(&zeroed).as_bytes(),
            "computed independently of the crate"
        );
        assert_eq!(
            compute_module_hash(&bytes).unwrap(),
            *blake3::hash(&zeroed).as_bytes()
        );
        let module = Module::parse(&bytes).unwrap();
        assert_eq!(&module.header().module_hash[..], &bytes[0x30..0x50]);
        module.verify_hash().unwrap();
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let bytes = small_module();
    let mut parsed = 0;
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << bit;
            // The content no longer hashes to the stored value, wherever the flip is: in the
            // hash field itself the stored value changed, elsewhere the content did.
            let stored: [u8; 32] = flipped[MODULE_HASH_RANGE].try_into().unwrap();
            assert_ne!(
                compute_module_hash(&flipped).unwrap(),
                stored,
                "flip of bit {bit} at {at:#x} undetected"
            );
            // And a flip that still parses is caught by `verify_hash`.
            if let Ok(module) = Module::parse(&flipped) {
                parsed += 1;
                match module.verify_hash() {
                    Err(Error::HashMismatch {
                        stored: s,
                        computed,
                    }) => {
                        assert_eq!(s, stored);
                        assert_ne!(s, computed);
                    }
                    other => panic!("flip of bit {bit} at {at:#x}: verify_hash returned {other:?}"),
                }
            }
        }
    }
    // Most of the file is the code page and its padding: most flips still parse.
    assert!(
        parsed > bytes.len() * 4,
        "only {parsed} flipped files parsed"
    );
}

#[test]
fn a_mismatch_names_both_hashes() {
    let mut bytes = small_module();
    bytes[0x1000] ^= 0x01; // mov eax, 42 -> another opcode byte
    let module = Module::parse(&bytes).unwrap();
    let error = module.verify_hash().unwrap_err();
    let Error::HashMismatch { stored, computed } = &error else {
        panic!("{error:?}")
    };
    let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let message = error.to_string();
    assert!(
        message.contains(&hex(stored))
            && message.contains(&hex(computed))
            && message.contains("corrupted"),
        "{message}"
    );
}

#[test]
fn hashing_needs_a_whole_header() {
    let error = compute_module_hash(&[0; 127]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Truncated {
                what: "header",
                needed: 128,
                size: 127
            }
        ),
        "{error:?}"
    );
    // Appending a byte changes the hash: the hash covers the whole file, not just the sections.
    let mut bytes = small_module();
    let before = compute_module_hash(&bytes).unwrap();
    bytes.push(0);
    assert_ne!(compute_module_hash(&bytes).unwrap(), before);
}

#[test]
fn large_files_hash_as_blake3_of_the_file() {
    // Sizes around 1 MiB and the 64 KiB subtrees: the hash is BLAKE3 of the file with the
    // hash field as zeros.
    const MIB: usize = 1 << 20;
    for len in [
        MIB - 1,
        MIB,
        MIB + 1,
        MIB + (64 << 10),
        1_634_304,
        (3 << 20) + 12_345,
    ] {
        let mut data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
        let mut zeroed = data.clone();
        zeroed[MODULE_HASH_RANGE].fill(0);
        let expected = *blake3::hash(&zeroed).as_bytes();
        assert_eq!(compute_module_hash(&data).unwrap(), expected, "{len} bytes");
        // The stored field is ignored, whatever it holds.
        data[MODULE_HASH_RANGE].fill(0xa5);
        assert_eq!(compute_module_hash(&data).unwrap(), expected, "{len} bytes");
    }
}
