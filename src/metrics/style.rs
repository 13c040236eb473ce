//! Style accuracy: a linear classifier over the Inception pool features that tells which
//! domain an image looks like, fitted on the real training images of the domains.
//!
//! FID on a few hundred images barely separates models; this says directly whether a
//! translation took on the target's style. The classifier is linear discriminant
//! analysis (class means and one pooled covariance) with the covariance shrunk toward a
//! multiple of the identity, which a 2,048-dimensional covariance from a few thousand
//! images needs. The shrinkage is chosen by 5-fold cross-validation on the training
//! images alone, so the validation images stay unseen; everything is closed-form and
//! deterministic.

use tch::{Kind, Tensor};

/// Candidate shrinkage weights (0 = the sample covariance, 1 = a scaled identity).
const SHRINKAGE: [f64; 6] = [0.01, 0.03, 0.1, 0.3, 0.6, 1.0];
const FOLDS: i64 = 5;

pub struct StyleClassifier {
    /// d×K weights and K biases of the linear score x·W + b.
    weight: Tensor,
    bias: Tensor,
    /// The shrinkage chosen by cross-validation.
    pub shrinkage: f64,
    /// Cross-validated accuracy on the training images at that shrinkage.
    pub cv_accuracy: f64,
}

/// Class means (K×d) and the pooled within-class covariance (d×d) of per-class features.
fn moments(per_class: &[Tensor]) -> (Tensor, Tensor) {
    let means: Vec<Tensor> = per_class.iter().map(|f| f.mean_dim([0i64].as_slice(), false, Kind::Double)).collect();
    let centred: Vec<Tensor> = per_class.iter().zip(&means).map(|(f, m)| f.to_kind(Kind::Double) - m).collect();
    let all = Tensor::cat(&centred, 0);
    let n = all.size()[0];
    let dof = (n - per_class.len() as i64).max(1) as f64;
    (Tensor::stack(&means, 0), all.transpose(0, 1).matmul(&all) / dof)
}

/// Linear scores for a covariance given by its eigen-decomposition, shrunk by `alpha`.
fn lda(means: &Tensor, eigvals: &Tensor, eigvecs: &Tensor, alpha: f64) -> (Tensor, Tensor) {
    let d = eigvals.size()[0] as f64;
    let target = eigvals.sum(Kind::Double).double_value(&[]) / d;
    let inv = (eigvals.clamp_min(0.0) * (1.0 - alpha) + alpha * target).reciprocal();
    // Σ⁻¹ μ_kᵀ for every class, through the eigenbasis.
    let proj = eigvecs.transpose(0, 1).matmul(&means.transpose(0, 1));
    let weight = eigvecs.matmul(&(proj * inv.unsqueeze(1)));
    let bias = (means * weight.transpose(0, 1)).sum_dim_intlist([1i64].as_slice(), false, Kind::Double) * -0.5;
    (weight, bias)
}

fn predict_with(weight: &Tensor, bias: &Tensor, features: &Tensor) -> Tensor {
    (features.to_kind(Kind::Double).matmul(weight) + bias).argmax(1, false)
}

impl StyleClassifier {
    /// Fits the classifier on `per_class[k]` = features (n_k × d) of real images of
    /// domain k; every class needs at least `FOLDS` images.
    pub fn fit(per_class: &[Tensor]) -> Self {
        assert!(per_class.len() >= 2, "a style classifier needs at least two domains");
        // Cross-validation: fold i holds the images whose index ≡ i (mod FOLDS).
        let mut correct = [0i64; SHRINKAGE.len()];
        let mut total = 0i64;
        for fold in 0..FOLDS {
            let (mut train, mut held) = (Vec::new(), Vec::new());
            for f in per_class {
                let idx = Tensor::arange(f.size()[0], (Kind::Int64, f.device()));
                let is_held = idx.remainder(FOLDS).eq(fold);
                train.push(f.index_select(0, &idx.masked_select(&is_held.logical_not())));
                held.push(f.index_select(0, &idx.masked_select(&is_held)));
            }
            let (means, cov) = moments(&train);
            let (vals, vecs) = cov.linalg_eigh("L");
            for (a, alpha) in SHRINKAGE.iter().enumerate() {
                let (w, b) = lda(&means, &vals, &vecs, *alpha);
                for (k, h) in held.iter().enumerate() {
                    if h.size()[0] > 0 {
                        correct[a] += i64::try_from(predict_with(&w, &b, h).eq(k as i64).sum(Kind::Int64)).unwrap_or(0);
                    }
                }
            }
            total += held.iter().map(|h| h.size()[0]).sum::<i64>();
        }
        // The best shrinkage; on a tie the larger (more regularised) one: `max_by_key`
        // returns the last of equal maxima, and SHRINKAGE is ascending.
        let best = (0..SHRINKAGE.len()).max_by_key(|&a| correct[a]).unwrap_or(0);
        let (means, cov) = moments(per_class);
        let (vals, vecs) = cov.linalg_eigh("L");
        let (weight, bias) = lda(&means, &vals, &vecs, SHRINKAGE[best]);
        StyleClassifier {
            weight,
            bias,
            shrinkage: SHRINKAGE[best],
            cv_accuracy: correct[best] as f64 / total.max(1) as f64,
        }
    }

    /// The predicted domain of each row of `features` (n×d).
    pub fn predict(&self, features: &Tensor) -> Tensor {
        predict_with(&self.weight, &self.bias, features)
    }

    /// The fraction of rows of `features` classified as each of the `k` domains: where
    /// the outputs that missed their target landed (they sum to 1 for any rows).
    pub fn class_fractions(&self, features: &Tensor, k: usize) -> Vec<f64> {
        let n = features.size()[0];
        if n == 0 {
            return vec![0.0; k];
        }
        let counts = self.predict(features).bincount::<Tensor>(None, k as i64);
        (0..k as i64).map(|c| counts.int64_value(&[c]) as f64 / n as f64).collect()
    }

    /// The fraction of rows of `features` classified as domain `label`.
    pub fn accuracy(&self, features: &Tensor, label: i64) -> f64 {
        let n = features.size()[0];
        if n == 0 {
            return 0.0;
        }
        self.predict(features).eq(label).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn cloud(n: i64, d: i64, centre: f64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let mut f = Tensor::randn([n, d], (Kind::Double, Device::Cpu));
        let shift = Tensor::zeros([d], (Kind::Double, Device::Cpu));
        let _ = shift.narrow(0, 0, 1).fill_(centre);
        f += shift;
        f
    }

    #[test]
    fn separates_shifted_clouds_and_generalises() {
        // Three classes shifted along the first axis, in more dimensions than samples per
        // class: the sample covariance is singular, which shrinkage must handle.
        let d = 60;
        let train: Vec<Tensor> = (0..3).map(|k| cloud(40, d, 4.0 * k as f64, k)).collect();
        let c = StyleClassifier::fit(&train);
        assert!(c.cv_accuracy > 0.9, "cv accuracy {}", c.cv_accuracy);
        for k in 0..3 {
            let fresh = cloud(50, d, 4.0 * k as f64, 100 + k);
            let acc = c.accuracy(&fresh, k);
            assert!(acc > 0.9, "class {k}: accuracy {acc}");
            // Images of another class are not taken for this one.
            assert!(c.accuracy(&fresh, (k + 1) % 3) < 0.1);
            let fractions = c.class_fractions(&fresh, 3);
            assert!((fractions.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{fractions:?}");
            assert_eq!(fractions[k as usize], acc);
        }
    }

    #[test]
    fn indistinguishable_classes_give_chance_level() {
        let d = 20;
        let train: Vec<Tensor> = (0..2).map(|k| cloud(200, d, 0.0, 7 + k)).collect();
        let c = StyleClassifier::fit(&train);
        assert!((c.cv_accuracy - 0.5).abs() < 0.1, "cv accuracy {}", c.cv_accuracy);
    }
}
