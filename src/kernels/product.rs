//! One row-major matrix product on the host, through the `gemm` crate, with the slices'
//! lengths checked so that callers need no `unsafe` of their own.

/// c = a · b for row-major `a` [m, k], `b` [k, n] and `c` [m, n], on the calling thread (the
/// callers already split their work across the pool). Panics if a slice is too short.
pub fn product_into(c: &mut [f32], a: &[f32], b: &[f32], [m, k, n]: [usize; 3]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "product_into: a slice is shorter than its shape");
    // SAFETY: the assert keeps every row-major index inside its slice: a below m·k, b below
    // k·n, c below m·n.
    unsafe {
        gemm::gemm(
            m, n, k,
            c.as_mut_ptr(), 1, n as isize, false,
            a.as_ptr(), 1, k as isize,
            b.as_ptr(), 1, n as isize,
            0.0, 1.0, false, false, false, gemm::Parallelism::None,
        );
    }
}
