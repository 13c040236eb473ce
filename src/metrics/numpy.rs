//! Pickled numpy arrays (as `pickle.dump` writes them) → tensors, without executing the
//! pickle: the `_reconstruct` / `BUILD` records are interpreted as data.

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use crate::checkpoint::pickle::{self, Value};

/// Nested dicts of arrays, flattened to `a/b/c` paths.
pub fn read_arrays(data: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let (root, _) = pickle::read(data, 0).context("not a readable pickle")?;
    let mut out = Vec::new();
    walk(&root, "", &mut out)?;
    Ok(out)
}

fn walk(v: &Value, prefix: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
    if let Value::Dict(d) = v {
        for (k, val) in d.borrow().iter() {
            let key = k.as_str().context("non-string dict key")?;
            let path = if prefix.is_empty() { key.to_string() } else { format!("{prefix}/{key}") };
            walk(val, &path, out)?;
        }
        return Ok(());
    }
    out.push((prefix.to_string(), array(v).with_context(|| format!("entry {prefix}"))?));
    Ok(())
}

/// One `numpy.ndarray`: BUILD(_reconstruct(ndarray, (0,), b'b'), (version, shape, dtype,
/// fortran_order, raw bytes)).
pub fn array(v: &Value) -> Result<Tensor> {
    let Value::Build(obj, state) = v else { bail!("not a numpy array") };
    match obj.as_ref() {
        Value::Call(f, _)
            if f.is_global("numpy.core.multiarray", "_reconstruct")
                || f.is_global("numpy._core.multiarray", "_reconstruct") => {}
        _ => bail!("not a numpy array"),
    }
    let st = state.items().context("array state is not a tuple")?;
    if st.len() < 5 {
        bail!("array state too short");
    }
    let shape: Vec<i64> =
        st[1].items().context("shape")?.iter().map(|x| x.as_int().context("shape entry")).collect::<Result<_>>()?;
    let descr = match &st[2] {
        Value::Build(d, dstate) => {
            let Value::Call(_, args) = d.as_ref() else { bail!("dtype") };
            let code = args.first().and_then(Value::as_str).context("dtype code")?.to_string();
            let order = dstate
                .items()
                .and_then(|s| s.get(1).and_then(|o| o.as_str().map(String::from)))
                .unwrap_or_else(|| "<".into());
            (code, order)
        }
        // A memoised dtype comes back as the bare call (BUILD state not repeated).
        Value::Call(f, args) if f.is_global("numpy", "dtype") => {
            (args.first().and_then(Value::as_str).context("dtype code")?.to_string(), "<".to_string())
        }
        _ => bail!("dtype is not a numpy dtype"),
    };
    let (kind, size) = match descr.0.as_str() {
        "f4" => (Kind::Float, 4),
        "f8" => (Kind::Double, 8),
        "f2" => (Kind::Half, 2),
        "i8" => (Kind::Int64, 8),
        "i4" => (Kind::Int, 4),
        other => bail!("unsupported dtype {other}"),
    };
    if descr.1 == ">" {
        bail!("big-endian arrays are not supported");
    }
    let fortran = matches!(st[3], Value::Bool(true));
    let Value::Bytes(raw) = &st[4] else { bail!("array data is not bytes") };
    // Checked: a shape from the file must not overflow into a size that happens to match.
    let expected = shape
        .iter()
        .try_fold(size as usize, |acc: usize, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)))
        .with_context(|| format!("invalid array shape {shape:?}"))?;
    if raw.len() != expected {
        bail!("array data has {} bytes, expected {expected} for shape {shape:?}", raw.len());
    }
    if fortran {
        let rev: Vec<i64> = shape.iter().rev().copied().collect();
        let perm: Vec<i64> = (0..shape.len() as i64).rev().collect();
        return Ok(Tensor::from_data_size(raw, &rev, kind).permute(perm.as_slice()).contiguous());
    }
    Ok(Tensor::from_data_size(raw, &shape, kind))
}
