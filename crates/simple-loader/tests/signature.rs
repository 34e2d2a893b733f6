//! The loader's signature policy, on modules written with the format crate's builder.

mod common;
use common::{CODE_LEN, return_constant};
use std::path::Path;

use simple_loader::smf_sign::{self, SecretKey};
use simple_loader::{LoadError, LoadOptions, ModuleSource, Registry, SignaturePolicy, load};
use smf_format::*;

/// A reloadable library exporting `answer`, an `int answer(void)` made of `code`.
fn library(code: [u8; CODE_LEN]) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.platform = simple_loader::HOST_PLATFORM;
    b.arch = common::HOST;
    b.flags = ModuleFlags::PIC.union(ModuleFlags::RELOADABLE);
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(6).unwrap();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size: CODE_LEN as u64,
        align: 16,
        data: code.to_vec(),
    });
    b.add_symbol(Symbol {
        name: "answer",
        kind: SymbolKind::Function,
        binding: Binding::Global,
        visibility: Visibility::Default,
        section: Some(text),
        value: vaddr,
        size: CODE_LEN as u64,
        type_id: 0,
        version: 1,
    });
    b.write().unwrap()
}

const RETURN_42: [u8; CODE_LEN] = return_constant(42);
const RETURN_43: [u8; CODE_LEN] = return_constant(43);

fn require(keys: &[&SecretKey]) -> LoadOptions {
    LoadOptions::default().with_signature(SignaturePolicy::Require(
        keys.iter().map(|k| k.public_key()).collect(),
    ))
}

fn write_signed(dir: &Path, name: &str, bytes: &[u8], key: &SecretKey) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let signature = smf_sign::sign_module(bytes, key).unwrap();
    std::fs::write(smf_sign::signature_path(&path), signature.to_bytes()).unwrap();
    path
}

#[test]
fn require_loads_signed_modules_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = SecretKey::from_seed([1; 32]);
    let stranger = SecretKey::from_seed([2; 32]);
    let signed = write_signed(dir.path(), "signed.smf", &library(RETURN_42), &trusted);

    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module = unsafe { load(&signed, &require(&[&trusted]), None) }.unwrap();
    // SAFETY: `answer` is `int answer(void)`.
    let answer = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
    assert_eq!(answer(), 42);
    // Any one of several trusted keys will do.
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert!(unsafe { load(&signed, &require(&[&stranger, &trusted]), None) }.is_ok());

    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { load(&signed, &require(&[&stranger]), None) }.unwrap_err();
    assert!(
        matches!(
            &error,
            LoadError::Signature {
                source: smf_sign::Error::UntrustedKey { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        format!("{error:#}").contains("not a trusted key"),
        "{error:#}"
    );

    let unsigned = dir.path().join("unsigned.smf");
    std::fs::write(&unsigned, library(RETURN_42)).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { load(&unsigned, &require(&[&trusted]), None) }.unwrap_err();
    assert!(
        matches!(&error, LoadError::Unsigned { expected: Some(p), .. } if p.ends_with("unsigned.smf.sig")),
        "{error}"
    );
    // Without a policy the same file loads.
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    assert!(unsafe { load(&unsigned, &LoadOptions::default(), None) }.is_ok());

    // From memory there is no signature file to check.
    let source = ModuleSource::Bytes {
        bytes: library(RETURN_42),
        name: "<memory>".into(),
    };
    // SAFETY: the refused module never runs.
    let error = unsafe { load(source, &require(&[&trusted]), None) }.unwrap_err();
    assert!(
        matches!(error, LoadError::Unsigned { expected: None, .. }),
        "{error}"
    );
}

#[test]
fn the_signature_covers_the_content_even_with_the_hash_check_off() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed([3; 32]);
    let original = library(RETURN_42);
    let path = write_signed(dir.path(), "m.smf", &original, &key);
    // Replace the code but keep the header (and so the stale module hash the signature
    // signed): with `verify_hash` off, only the signature check stands in the way.
    let mut tampered = library(RETURN_43);
    tampered[raw::MODULE_HASH_RANGE].copy_from_slice(&original[raw::MODULE_HASH_RANGE]);
    std::fs::write(&path, &tampered).unwrap();
    let options = require(&[&key]).with_verify_hash(false);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { load(&path, &options, None) }.unwrap_err();
    assert!(
        matches!(
            &error,
            LoadError::Signature {
                source: smf_sign::Error::WrongModule { .. },
                ..
            }
        ),
        "{error}"
    );
    // With the hash check on, the hash mismatch is reported first.
    let checked = require(&[&key]).with_verify_hash(true);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { load(&path, &checked, None) }.unwrap_err();
    assert!(
        format!("{error:#}").contains("module hash mismatch"),
        "{error}"
    );
}

#[test]
fn a_registry_applies_its_policy_to_every_load_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed([4; 32]);
    let registry = Registry::with_options(require(&[&key]));
    let path = write_signed(dir.path(), "lib.smf", &library(RETURN_42), &key);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    unsafe { registry.load(&path) }.unwrap();
    // A new version without a new signature is refused, and the old one stays.
    std::fs::write(&path, library(RETURN_43)).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { registry.reload(&path) }.map(|_| ()).unwrap_err();
    assert!(matches!(&error, LoadError::Signature { .. }), "{error}");
    let module = registry.get(&path).unwrap();
    // SAFETY: `answer` is `int answer(void)`.
    let answer = unsafe { module.get::<extern "C" fn() -> i32>("answer") }.unwrap();
    assert_eq!(answer(), 42);
    // A damaged signature file.
    std::fs::write(smf_sign::signature_path(&path), b"SMFSIG\0\0 too short").unwrap();
    registry.unload(&path).unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { registry.load(&path) }.unwrap_err();
    assert!(
        format!("{error:#}").contains("malformed signature file"),
        "{error}"
    );
}
