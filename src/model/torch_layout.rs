//! PyTorch's parameter layout turned into burn's while loading, fast enough for Karlo.
//!
//! burn-store's `PyTorchToBurnAdapter` transposes every `nn.Linear` weight ([out, in] in
//! PyTorch, [in, out] in burn) one element at a time through a byte copy, which `perf` put at
//! a third of the time to load Karlo's 4 GB prior (all linear layers). [`TorchLayout`] does
//! the same conversions, with the transposes done in cache-sized blocks on every core; the
//! norm renames (weight → gamma, bias → beta) stay burn-store's.

use burn::store::bridge;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleContext, PyTorchToBurnAdapter};
use burn::tensor::{DType, Element, TensorData};
use rayon::prelude::*;

#[derive(Debug, Clone, Default)]
pub struct TorchLayout;

impl ModuleAdapter for TorchLayout {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let linear_weight = ctx.module_type() == Some("Struct:Linear")
            && tensor.name.rsplit('.').next() == Some("weight")
            && tensor.shape.len() == 2;
        if !linear_weight || !matches!(tensor.dtype, DType::F32 | DType::F16 | DType::BF16) {
            return PyTorchToBurnAdapter.adapt(tensor, ctx);
        }
        let (name, dtype) = (tensor.name.clone(), tensor.dtype);
        let shape = burn::tensor::Shape::from(vec![tensor.shape[1], tensor.shape[0]]);
        bridge::map_data(tensor, name, dtype, shape, transpose_data)
    }

    fn get_alternative_param_name(&self, param_name: &str, module_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, module_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// A 2-D tensor's transpose, in its own element type (the transpose moves bits only).
fn transpose_data(data: TensorData) -> TensorData {
    match data.dtype() {
        DType::F32 => transpose_typed::<f32>(data),
        DType::F16 => transpose_typed::<half::f16>(data),
        DType::BF16 => transpose_typed::<half::bf16>(data),
        _ => data,
    }
}

fn transpose_typed<E: Element + Default>(data: TensorData) -> TensorData {
    let dims = data.shape().to_vec();
    let [rows, cols] = dims[..] else { return data };
    // A slice the stored bytes cannot be viewed as (misaligned) is read out once instead.
    let owned;
    let src: &[E] = match data.as_slice::<E>() {
        Ok(s) => s,
        Err(_) => match data.try_to_vec::<E>() {
            Ok(v) => {
                owned = v;
                &owned
            }
            Err(_) => return data,
        },
    };
    TensorData::new(transpose(src, rows, cols), [cols, rows])
}

/// Block side: a 32 × 32 block of f32 (4 KiB) read and one written stay in L1 together.
const BLOCK: usize = 32;

/// `src` as [rows, cols] → its transpose as [cols, rows], in blocks, bands in parallel.
pub fn transpose<E: Copy + Default + Send + Sync>(src: &[E], rows: usize, cols: usize) -> Vec<E> {
    let mut dst = vec![E::default(); rows * cols];
    if rows == 0 || cols == 0 {
        return dst;
    }
    dst.par_chunks_mut(BLOCK * rows).enumerate().for_each(|(band, out)| {
        let j0 = band * BLOCK;
        let width = out.len() / rows;
        for i0 in (0..rows).step_by(BLOCK) {
            let height = (rows - i0).min(BLOCK);
            for j in 0..width {
                let line = &mut out[j * rows + i0..j * rows + i0 + height];
                for (i, d) in line.iter_mut().enumerate() {
                    *d = src[(i0 + i) * cols + j0 + j];
                }
            }
        }
    });
    dst
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn a_blocked_transpose_moves_every_element_to_its_mirror_place() {
        for (rows, cols) in [(1, 1), (3, 70), (33, 31), (64, 64), (100, 1), (0, 5)] {
            let src: Vec<u32> = (0..rows * cols).map(|i| i as u32).collect();
            let t = transpose(&src, rows, cols);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(t[j * rows + i], src[i * cols + j], "{rows}x{cols} at ({i}, {j})");
                }
            }
        }
    }
}
