//! netlab's kernel programs. Entry points are thin: each calls a `try_*` function and maps
//! its result to a verdict, so no error is ever silently ignored.
#![no_std]
#![no_main]
#![expect(
    clippy::inline_always,
    reason = "the verifier tracks packet and context pointers only within one function: helpers that touch them must be inlined"
)]
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "helpers return C longs holding small codes, and kernel context fields are wider than the header fields they carry"
)]

mod counters;
mod nat;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never executed.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
