//! Inception (FID) throughput on the CPU in CPU seconds per image, NCHW against
//! channels-last: `OMP_NUM_THREADS=1 cargo run --release --example inception_speed -- WEIGHTS.pt [N]`.
use tch::{Device, Kind, Tensor};

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: i64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(16);
    tch::jit::set_profiling_mode(false);
    tch::jit::set_graph_executor_optimize(false);
    let mut m = tch::CModule::load_on_device(&args[0], Device::Cpu).unwrap();
    m.set_eval();
    let params = m.named_parameters().unwrap();
    println!("{} named parameters", params.len());
    tch::manual_seed(0);
    let x = Tensor::rand([n, 3, 299, 299], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let run = |m: &tch::CModule, x: &Tensor| -> (f64, Tensor) {
        let _ = tch::no_grad(|| m.forward_ts(&[x.narrow(0, 0, 2)]).unwrap());
        let t0 = cpu_seconds();
        let y = tch::no_grad(|| m.forward_ts(&[x]).unwrap());
        ((cpu_seconds() - t0) / n as f64, y)
    };
    let (t_nchw, y0) = run(&m, &x);
    println!("NCHW: {t_nchw:.3} CPU s/image");
    let xl = stargan::model::layers::to_channels_last(&x);
    let (t_cl, y1) = run(&m, &xl);
    println!("channels-last input: {t_cl:.3} CPU s/image, max diff {:.2e}", (&y1 - &y0).abs().max().double_value(&[]));
    tch::no_grad(|| {
        for (_, mut p) in m.named_parameters().unwrap() {
            if p.dim() == 4 {
                let cl = stargan::model::layers::to_channels_last(&p);
                p.set_data(&cl);
            }
        }
    });
    let (t_w, y2) = run(&m, &xl);
    println!(
        "channels-last input and weights: {t_w:.3} CPU s/image, max diff {:.2e}",
        (&y2 - &y0).abs().max().double_value(&[])
    );
}
