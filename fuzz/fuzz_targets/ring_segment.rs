//! Fuzzes the ring segment validation: arbitrary bytes mapped as a segment image (publish/
//! subscribe ring or work queue) are validated like a named segment, then walked as a
//! participant would (readers read every record, a writer appends, work-queue slots are
//! taken, released and sent). No input may panic or access memory outside the image.
//!
//! Input: the first byte picks raw bytes (the whole input is the image) or a valid template
//! (publish/subscribe, overwrite, or work queue, with small parameters from the next bytes)
//! that the rest of the input patches: `(offset: u16, value: u8)` triples, so the fuzzer
//! reaches the control words, cursors, queue cells and record headers past validation.
#![no_main]

use ipcx::ring::{Options, check_segment_image, fresh_segment_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 || rest.len() < 4 {
        let _ = check_segment_image(rest);
        return;
    }
    let (params, patches) = rest.split_at(4);
    let opts = Options::new()
        .capacity(64 << (params[0] % 8))
        .max_message(usize::from(params[1]))
        .max_subscribers(u32::from(params[2] % 4) + 1)
        .slots(1 << (params[3] % 4))
        .overwrite(mode % 4 == 2);
    let Ok(mut image) = fresh_segment_image(mode % 4 == 3, &opts) else {
        return;
    };
    let _ = check_segment_image(&image);
    for p in patches.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % image.len();
        image[at] = p[2];
    }
    let _ = check_segment_image(&image);
    // A cut-off image is a named error too.
    let _ = check_segment_image(&image[..image.len() - 1]);
});
