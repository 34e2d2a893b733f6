//! The same functions compiled twice, through `SmfModule` and through cranelift-object +
//! `smf pack`: both modules give the same results when called.

mod common;

use common::*;
use cranelift_module::default_libcall_names;
use cranelift_object::{ObjectBuilder, ObjectModule};
use simple_loader::{LoadOptions, ModuleSource};
use smf_cranelift::{SmfBuilder, SmfModule};

fn load(name: &str, bytes: Vec<u8>) -> simple_loader::Module {
    let resolver = host_resolver();
    // SAFETY: the test's own code, calling only the host functions of `common`.
    unsafe {
        simple_loader::load(
            ModuleSource::Bytes {
                bytes,
                name: name.to_owned(),
            },
            &LoadOptions::default(),
            Some(&*resolver),
        )
    }
    .unwrap()
}

#[test]
fn smf_module_and_object_plus_pack_agree() {
    let mut direct =
        SmfModule::new(SmfBuilder::new(isa(), "direct", default_libcall_names()).unwrap());
    program(&mut direct, 5);
    let direct = load("direct", direct.finish().emit().unwrap());

    let mut object =
        ObjectModule::new(ObjectBuilder::new(isa(), "packed", default_libcall_names()).unwrap());
    program(&mut object, 5);
    let elf = object.finish().emit().unwrap();
    let packed = smf_pack::pack(
        &[smf_pack::Input {
            name: "packed.o".into(),
            data: elf,
        }],
        &smf_pack::Options::default(),
    )
    .unwrap();
    let packed = load("packed", packed);

    type Unary = extern "C" fn(i64) -> i64;
    type Binary = extern "C" fn(i64, i64) -> i64;
    type Nullary = extern "C" fn() -> i64;
    for module in [&direct, &packed] {
        assert!(module.export("double").is_none());
    }
    let results = |m: &simple_loader::Module| -> Vec<i64> {
        // SAFETY: the signatures `program` defines.
        unsafe {
            let add = *m.get::<Binary>("add").unwrap();
            let fib = *m.get::<Unary>("fib").unwrap();
            let bump = *m.get::<Nullary>("bump").unwrap();
            let via = *m.get::<Nullary>("via_pointer").unwrap();
            let greeting = *m.get::<Nullary>("greeting_sum").unwrap();
            let dispatch = *m.get::<Binary>("dispatch").unwrap();
            let call_host = *m.get::<Unary>("call_host").unwrap();
            let host_data = *m.get::<Nullary>("host_data").unwrap();
            vec![
                add(-7, 1 << 40),
                fib(15),
                bump(),
                bump(),
                via(),
                greeting(),
                dispatch(0, 9),
                dispatch(1, 9),
                call_host(-5),
                host_data(),
            ]
        }
    };
    let expected = vec![(1 << 40) - 7, 610, 5, 10, 10, 215, 18, 10, -14, 1234];
    assert_eq!(results(&direct), expected);
    assert_eq!(results(&packed), expected);
}
