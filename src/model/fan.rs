//! The face-alignment network (FAN, one hourglass, 98 WFLW landmarks + 1 boundary map)
//! and the conversion of its heatmaps into the generator's two face masks.
//!
//! It always runs in evaluation mode and without gradients; its weights come from the
//! official `wing.ckpt` (or the `fan` entry of a CelebA-HQ checkpoint).

use tch::{Kind, Tensor};

use super::generator::Masks;
use super::layers::{avg_pool2, join, resize_bilinear, upsample2, BatchNorm, Conv2d, Init, Module, NamedTensor};

/// Input side of the FAN; masks are always made at this size.
pub const FAN_SIZE: i64 = 256;

/// Conv with coordinate channels (row, column and radius) concatenated to its input.
pub struct CoordConv {
    pub conv: Conv2d,
    /// Offsets, in units in the last place, added to the float32 radius channel (int32,
    /// H×W); `None` in normal use. The radius goes through float32 `sqrt`, whose last bit
    /// differs between CPUs (MKL's vector math), and the official masks inherit that
    /// rounding: the parity tests use this to measure how far it moves the masks.
    pub radius_ulps: Option<Tensor>,
}

impl CoordConv {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
        // Computed in float32 like the official AddCoords, then cast to the input kind.
        let opts = (Kind::Float, x.device());
        let rows =
            (Tensor::arange(h, opts) / (h - 1) as f64 * 2.0 - 1.0).view([1, 1, h, 1]).expand([1, 1, h, w], false);
        let cols =
            (Tensor::arange(w, opts) / (w - 1) as f64 * 2.0 - 1.0).view([1, 1, 1, w]).expand([1, 1, h, w], false);
        let mut rr = (rows.square() + cols.square()).sqrt();
        if let Some(ulps) = &self.radius_ulps {
            rr = (rr.view_dtype(Kind::Int) + ulps.view([1, 1, h, w])).view_dtype(Kind::Float);
        }
        let rr = &rr / rr.max();
        let coords = Tensor::cat(&[rows, cols, rr], 1).to_kind(x.kind()).expand([n, 3, h, w], false);
        self.conv.forward(&Tensor::cat(&[x.shallow_clone(), coords], 1))
    }
}

/// Residual block of three 3×3 convs whose outputs (out/2, out/4, out/4) are concatenated.
pub struct ConvBlock {
    pub bn1: BatchNorm,
    pub conv1: Conv2d,
    pub bn2: BatchNorm,
    pub conv2: Conv2d,
    pub bn3: BatchNorm,
    pub conv3: Conv2d,
    pub downsample: Option<(BatchNorm, Conv2d)>,
}

impl ConvBlock {
    fn new(init: &Init, c_in: i64, c_out: i64) -> Self {
        let (half, quarter) = (c_out / 2, c_out / 4);
        ConvBlock {
            bn1: BatchNorm::new(init, c_in),
            conv1: Conv2d::new(init, c_in, half, 3, 1, 1, false),
            bn2: BatchNorm::new(init, half),
            conv2: Conv2d::new(init, half, quarter, 3, 1, 1, false),
            bn3: BatchNorm::new(init, quarter),
            conv3: Conv2d::new(init, quarter, quarter, 3, 1, 1, false),
            downsample: (c_in != c_out)
                .then(|| (BatchNorm::new(init, c_in), Conv2d::new(init, c_in, c_out, 1, 1, 0, false))),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let o1 = self.conv1.forward(&self.bn1.forward(x).relu());
        let o2 = self.conv2.forward(&self.bn2.forward(&o1).relu());
        let o3 = self.conv3.forward(&self.bn3.forward(&o2).relu());
        let residual = match &self.downsample {
            Some((bn, conv)) => conv.forward(&bn.forward(x).relu()),
            None => x.shallow_clone(),
        };
        Tensor::cat(&[o1, o2, o3], 1) + residual
    }
}

impl Module for ConvBlock {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| join(prefix, n);
        self.bn1.collect(&p("bn1"), out);
        self.conv1.collect(&p("conv1"), out);
        self.bn2.collect(&p("bn2"), out);
        self.conv2.collect(&p("conv2"), out);
        self.bn3.collect(&p("bn3"), out);
        self.conv3.collect(&p("conv3"), out);
        if let Some((bn, conv)) = &self.downsample {
            bn.collect(&p("downsample.0"), out);
            conv.collect(&p("downsample.2"), out);
        }
    }
}

const HOURGLASS_DEPTH: usize = 4;

/// Hourglass of depth 4 over 256 channels: level L has blocks b1_L, b2_L, b3_L, and the
/// innermost level also b2_plus_1.
pub struct HourGlass {
    pub coordconv: CoordConv,
    /// (b1, b2, b3) for levels 4, 3, 2, 1 (outermost first).
    pub levels: Vec<(ConvBlock, ConvBlock, ConvBlock)>,
    pub b2_plus_1: ConvBlock,
}

impl HourGlass {
    fn new(init: &Init) -> Self {
        HourGlass {
            coordconv: CoordConv { conv: Conv2d::new(init, 256 + 3, 256, 1, 1, 0, true), radius_ulps: None },
            levels: (0..HOURGLASS_DEPTH)
                .map(|_| {
                    (ConvBlock::new(init, 256, 256), ConvBlock::new(init, 256, 256), ConvBlock::new(init, 256, 256))
                })
                .collect(),
            b2_plus_1: ConvBlock::new(init, 256, 256),
        }
    }

    fn level(&self, i: usize, x: &Tensor) -> Tensor {
        let (b1, b2, b3) = &self.levels[i];
        let up1 = b1.forward(x);
        let low1 = b2.forward(&avg_pool2(x));
        let low2 = if i + 1 < self.levels.len() { self.level(i + 1, &low1) } else { self.b2_plus_1.forward(&low1) };
        up1 + upsample2(&b3.forward(&low2))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.level(0, &self.coordconv.forward(x))
    }
}

impl Module for HourGlass {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| join(prefix, n);
        self.coordconv.conv.collect(&p("coordconv.conv"), out);
        // Registration order of the official recursive builder: b1_L, b2_L, (recurse
        // or b2_plus_1), b3_L.
        fn walk(hg: &HourGlass, i: usize, prefix: &str, out: &mut Vec<NamedTensor>) {
            let level = HOURGLASS_DEPTH - i;
            let (b1, b2, b3) = &hg.levels[i];
            b1.collect(&join(prefix, &format!("b1_{level}")), out);
            b2.collect(&join(prefix, &format!("b2_{level}")), out);
            if i + 1 < hg.levels.len() {
                walk(hg, i + 1, prefix, out);
            } else {
                hg.b2_plus_1.collect(&join(prefix, &format!("b2_plus_{level}")), out);
            }
            b3.collect(&join(prefix, &format!("b3_{level}")), out);
        }
        walk(self, 0, prefix, out);
    }
}

pub struct Fan {
    pub conv1: CoordConv,
    pub bn1: BatchNorm,
    pub conv2: ConvBlock,
    pub conv3: ConvBlock,
    pub conv4: ConvBlock,
    pub m0: HourGlass,
    pub top_m_0: ConvBlock,
    pub conv_last0: Conv2d,
    pub bn_end0: BatchNorm,
    pub l0: Conv2d,
}

impl Fan {
    pub fn new(init: &Init) -> Self {
        Fan {
            conv1: CoordConv { conv: Conv2d::new(init, 3 + 3, 64, 7, 2, 3, true), radius_ulps: None },
            bn1: BatchNorm::new(init, 64),
            conv2: ConvBlock::new(init, 64, 128),
            conv3: ConvBlock::new(init, 128, 128),
            conv4: ConvBlock::new(init, 128, 256),
            m0: HourGlass::new(init),
            top_m_0: ConvBlock::new(init, 256, 256),
            conv_last0: Conv2d::new(init, 256, 256, 1, 1, 0, true),
            bn_end0: BatchNorm::new(init, 256),
            l0: Conv2d::new(init, 256, 99, 1, 1, 0, true),
        }
    }

    /// Raw heatmaps, N×99×64×64, of images N×3×256×256 in [0, 1].
    pub fn forward(&self, x01: &Tensor) -> Tensor {
        let h = self.bn1.forward(&self.conv1.forward(x01)).relu();
        let h = avg_pool2(&self.conv2.forward(&h));
        let h = self.conv4.forward(&self.conv3.forward(&h));
        let ll = self.top_m_0.forward(&self.m0.forward(&h));
        let ll = self.bn_end0.forward(&self.conv_last0.forward(&ll)).relu();
        self.l0.forward(&ll)
    }

    /// The 98 landmark heatmaps of images in [-1, 1] at 256×256 (bilinear ×4 upsampling
    /// with align_corners = true), without gradient.
    pub fn heatmaps(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = resize_bilinear(x, FAN_SIZE);
            let x01 = x * 0.5 + 0.5;
            let out = self.forward(&x01);
            let hm = out.narrow(1, 0, out.size()[1] - 1);
            let scale = FAN_SIZE / hm.size()[2];
            let size = hm.size()[2] * scale;
            hm.upsample_bilinear2d([size, size], true, Some(scale as f64), Some(scale as f64))
        })
    }

    /// The generator's masks for images in [-1, 1].
    pub fn masks(&self, x: &Tensor) -> Masks {
        tch::no_grad(|| heatmaps_to_masks(&self.heatmaps(x)))
    }
}

impl Module for Fan {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let p = |n: &str| join(prefix, n);
        self.conv1.conv.collect(&p("conv1.conv"), out);
        self.bn1.collect(&p("bn1"), out);
        self.conv2.collect(&p("conv2"), out);
        self.conv3.collect(&p("conv3"), out);
        self.conv4.collect(&p("conv4"), out);
        self.m0.collect(&p("m0"), out);
        self.top_m_0.collect(&p("top_m_0"), out);
        self.conv_last0.collect(&p("conv_last0"), out);
        self.bn_end0.collect(&p("bn_end0"), out);
        self.l0.collect(&p("l0"), out);
    }
}

/// Circular shift along H: content moves up by `k` rows (down for k < 0).
fn shift(x: &Tensor, k: i64) -> Tensor {
    x.roll([-k], [2])
}

/// Turns 98 heatmaps (N×98×H×W, H = 256) into the coarse and fine face masks: threshold
/// at 0.1, per-channel min-max normalisation, then per facial part a vertical shift and a
/// power that shape the region, as the official `preprocess`.
pub fn heatmaps_to_masks(heatmaps: &Tensor) -> Masks {
    let h = heatmaps.size()[2];
    let sw = h / 256;
    let (n, c) = (heatmaps.size()[0], heatmaps.size()[1]);
    let x = heatmaps.where_scalarother(&heatmaps.ge(0.1), 0.0);
    let flat = x.reshape([n * c, -1]);
    let max = flat.amax([1], true);
    let min = flat.amin([1], true);
    let x = ((&flat - &min) / (max - &min + 1e-6)).reshape(heatmaps.size());

    // Channels of the parts, as [start, end).
    let mut chans: Vec<Tensor> = (0..c).map(|i| x.narrow(1, i, 1)).collect();
    let range = |chans: &[Tensor], s: i64, e: i64| Tensor::cat(&chans[s as usize..e as usize], 1);
    let assign = |chans: &mut Vec<Tensor>, s: i64, t: Tensor| {
        for i in 0..t.size()[1] {
            chans[(s + i) as usize] = t.narrow(1, i, 1);
        }
    };
    // (start, end, shift, power) in the official order: chin, eyebrows, nostrils, upper
    // lip, lower lip, inner lip.
    for (s, e, k, p) in [
        (8, 25, 0, 3.0),
        (33, 51, -7 * sw, 2.0),
        (55, 60, 8 * sw, 4.0),
        (77, 82, -8 * sw, 4.0),
        (83, 88, 8 * sw, 4.0),
        (88, 96, -2 * sw, 3.0),
    ] {
        let t = shift(&range(&chans, s, e), k).pow_tensor_scalar(p);
        assign(&mut chans, s, t);
    }
    let zero = chans[0].zeros_like();
    for i in (0..8).chain(25..33).chain([33, 46, 76, 82]) {
        chans[i] = zero.shallow_clone();
    }
    // Nose (51..55): all but the first channel move up by 4·sw.
    let t = shift(&range(&chans, 52, 55), 4 * sw);
    assign(&mut chans, 52, t);
    // Eyes (60..76).
    let eyes = range(&chans, 60, 76);
    let t = shift(&eyes, -8).pow_tensor_scalar(3.0) + shift(&eyes, -24);
    assign(&mut chans, 60, t);

    let coarse = Tensor::cat(&chans, 1).sum_dim_intlist([1i64].as_slice(), true, x.kind());
    for i in (8..25).chain(76..96).chain(33..51) {
        chans[i] = zero.shallow_clone();
    }
    let fine = Tensor::cat(&chans, 1).sum_dim_intlist([1i64].as_slice(), true, x.kind());
    let clean = |m: Tensor| m.nan_to_num(0.0, None, None).clamp(0.0, 1.0);
    Masks { coarse: clean(coarse), fine: clean(fine) }
}
