use tch::{Device, Kind, Tensor};
fn bench(name: &str, f: &dyn Fn() -> Tensor) {
    for _ in 0..2 {
        let _ = f();
    }
    let t = std::time::Instant::now();
    for _ in 0..5 {
        let _ = f();
    }
    println!("{name}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / 5.0);
}
fn main() {
    let o = (Kind::Float, Device::Cpu);
    let (c, hw) = (64i64, 256i64);
    let x = Tensor::randn([1, c, hw, hw], o);
    tch::no_grad(|| {
        bench("up native", &|| x.upsample_nearest2d([2 * hw, 2 * hw], Some(2.0), Some(2.0)));
        bench("up expand", &|| {
            x.unsqueeze(3).unsqueeze(5).expand([1, c, hw, 2, hw, 2], false).reshape([1, c, 2 * hw, 2 * hw])
        });
        bench("up repeat_interleave", &|| {
            x.repeat_interleave_self_int(2, Some(2), None).repeat_interleave_self_int(2, Some(3), None)
        });
        bench("lrelu max", &|| x.maximum(&(&x * 0.2)));
        bench("lrelu where", &|| x.where_self(&x.gt(0.0), &(&x * 0.2)));
        bench("lrelu clamp", &|| &x - x.clamp_max(0.0) * 0.8);
        bench("relu", &|| x.relu());
        bench("copy", &|| x.copy());
        bench("mul", &|| &x * 0.2);
        bench("avgpool", &|| x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>));
        bench("avgpool reshape", &|| {
            x.view([1, c, hw / 2, 2, hw / 2, 2]).mean_dim([3i64, 5].as_slice(), false, None::<Kind>)
        });
    });
}
