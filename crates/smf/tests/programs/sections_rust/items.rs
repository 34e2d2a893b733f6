#![no_std]
#[repr(C)]
pub struct Item { pub id: u32, pub weight: u32 }

#[used]
#[unsafe(link_section = "rs_items")]
static FIRST: Item = Item { id: 1, weight: 10 };
#[used]
#[unsafe(link_section = "rs_items")]
static SECOND: Item = Item { id: 2, weight: 32 };

unsafe extern "C" {
    static __start_rs_items: Item;
    static __stop_rs_items: Item;
}

#[unsafe(no_mangle)]
pub extern "C" fn rs_items_total() -> u32 {
    let mut p = &raw const __start_rs_items;
    let end = &raw const __stop_rs_items;
    let mut total = 0u32;
    while p < end {
        // SAFETY: p lies between the linker's bounds of rs_items, which holds Items only.
        let item = unsafe { &*p };
        total = total.wrapping_add(item.id * item.weight);
        p = p.wrapping_add(1);
    }
    total
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
