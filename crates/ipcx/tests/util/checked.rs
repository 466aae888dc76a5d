//! Self-checking test messages: writer id, sequence number, a filler derived from both and an
//! FNV-1a checksum, so a reader detects corrupt, truncated or interleaved messages.

/// FNV-1a over `bytes`.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A message of `len` bytes (at least 16) from writer `id`, number `seq`.
pub fn make_msg(id: u32, seq: u32, len: usize) -> Vec<u8> {
    let len = len.max(16);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    let fill = (id.wrapping_mul(31).wrapping_add(seq)) as u8;
    m.resize(len - 8, fill);
    let sum = fnv(&m);
    m.extend_from_slice(&sum.to_be_bytes());
    m
}

/// Checks a message made by [`make_msg`]; returns its (id, seq).
pub fn check_msg(m: &[u8]) -> (u32, u32) {
    assert!(m.len() >= 16, "short message {}", m.len());
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(fnv(body).to_be_bytes(), sum, "corrupt message");
    let id = u32::from_be_bytes(body[0..4].try_into().unwrap());
    let seq = u32::from_be_bytes(body[4..8].try_into().unwrap());
    let fill = (id.wrapping_mul(31).wrapping_add(seq)) as u8;
    assert!(body[8..].iter().all(|b| *b == fill), "interleaved message");
    (id, seq)
}
