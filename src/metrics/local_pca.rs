//! Tangent spaces of image data sets by local PCA (method.md 9): the top `m` principal directions
//! of the `K` training images nearest to a query image.

use nalgebra::{DMatrix, SymmetricEigen};

/// Indices of the `k` rows of `data` (`[n, d]`, row-major) nearest to `query` (Euclidean).
pub fn nearest(data: &[f32], d: usize, query: &[f32], k: usize) -> Vec<usize> {
    let n = data.len() / d;
    let mut dist: Vec<(f32, usize)> = (0..n)
        .map(|i| {
            let row = &data[i * d..(i + 1) * d];
            (row.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), i)
        })
        .collect();
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    dist.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
    let mut top: Vec<(f32, usize)> = dist[..k].to_vec();
    top.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    top.into_iter().map(|(_, i)| i).collect()
}

/// An orthonormal basis (`m` vectors of length `d`) of the principal subspace of `rows`
/// (`[k, d]`), centred on their mean. Computed from the `k x k` Gram matrix (k << d).
pub fn principal_basis(rows: &[f32], d: usize, m: usize) -> Vec<Vec<f32>> {
    let k = rows.len() / d;
    let x = DMatrix::from_row_iterator(k, d, rows.iter().map(|&v| v as f64));
    let mean = x.row_mean();
    let mut centered = x;
    for mut row in centered.row_iter_mut() {
        row -= &mean;
    }
    let gram = &centered * centered.transpose();
    let eig = SymmetricEigen::new(gram);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut basis = Vec::new();
    for &i in order.iter().take(m) {
        let lambda = eig.eigenvalues[i];
        if lambda <= 1e-12 {
            break; // fewer than m directions carry variance
        }
        let u = centered.transpose() * eig.eigenvectors.column(i) / lambda.sqrt();
        basis.push(u.iter().map(|&v| v as f32).collect());
    }
    basis
}

/// The local tangent basis at `query`: PCA of its `k` nearest rows of `data`.
pub fn tangent_basis(data: &[f32], d: usize, query: &[f32], k: usize, m: usize) -> Vec<Vec<f32>> {
    let idx = nearest(data, d, query, k);
    let rows: Vec<f32> = idx.iter().flat_map(|&i| data[i * d..(i + 1) * d].iter().copied()).collect();
    principal_basis(&rows, d, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn nearest_finds_the_closest_rows_in_order() {
        let data = [0.0f32, 0.0, 5.0, 5.0, 1.0, 0.0, 0.0, 2.0];
        assert_eq!(nearest(&data, 2, &[0.1, 0.0], 3), vec![0, 2, 3]);
    }

    #[test]
    fn recovers_a_known_linear_subspace() {
        // points c + A z on a 2-plane in 10-D (plus a little noise): the basis spans A
        let d = 10;
        let mut rng = crate::rng::stream(1, "pca-test");
        let a0: Vec<f64> = (0..d).map(|i| if i == 2 { 1.0 } else { 0.0 }).collect();
        let a1: Vec<f64> = (0..d)
            .map(|i| {
                if i == 7 {
                    0.6
                } else if i == 4 {
                    0.8
                } else {
                    0.0
                }
            })
            .collect();
        let mut rows = Vec::new();
        for _ in 0..200 {
            let (z0, z1) = (rng.random::<f64>() * 2.0 - 1.0, rng.random::<f64>() * 2.0 - 1.0);
            for j in 0..d {
                rows.push((0.3 + z0 * a0[j] + z1 * a1[j] + 1e-4 * (rng.random::<f64>() - 0.5)) as f32);
            }
        }
        let query: Vec<f32> = rows[..d].to_vec();
        let basis = tangent_basis(&rows, d, &query, 64, 2);
        assert_eq!(basis.len(), 2);
        for u in &basis {
            let norm: f64 = u.iter().map(|v| (*v as f64).powi(2)).sum();
            assert!((norm - 1.0).abs() < 1e-6);
            let captured: f64 = [&a0, &a1].iter().map(|a| u.iter().zip(a.iter()).map(|(x, y)| *x as f64 * y).sum::<f64>().powi(2)).sum();
            assert!(captured > 0.999, "a basis vector leaves the plane: {captured}");
        }
    }
}
