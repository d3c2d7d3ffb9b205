//! The bench's `stream` section: what streaming a data set through the device costs against
//! holding it resident. The same rows train on one adapter in the same run, alternately on a
//! device with the adapter's full binding limit (the set is resident) and on a device whose
//! bindings hold [`STREAM_BINDING`] bytes (the set streams in chunks of that size). Both give
//! the same weights, bit for bit, which is checked before any time is reported.
//!
//!     cargo run --release --example bench -- --only stream --adapter vulkan --batches 128

use serde_json::json;

use wgtrain::data::{Dataset, Mnist, Targets};
use wgtrain::gpu::{enumerate, instance, AdapterReport, Gpu};
use wgtrain::{Backend, Error, Trainer, TrainerOptions};

/// The binding limit of the streaming device: MNIST's first 30,000 rows as f32 (94 MB) pass in
/// six chunks, as u8 pixels (23.5 MB packed) in two.
const STREAM_BINDING: u64 = 16 << 20;

/// Rows of MNIST's training set the section trains on.
const ROWS: usize = 30_000;

/// A second device on `report`'s adapter whose storage bindings hold at most `bytes`.
fn device_with_binding(report: &AdapterReport, bytes: u64) -> Result<Gpu, Error> {
    let instance = instance();
    let (adapter, _) = enumerate(&instance)
        .into_iter()
        .find(|(_, r)| r.index == report.index)
        .ok_or_else(|| Error::Config(format!("adapter {} is gone", report.label())))?;
    let limits = wgpu::Limits { max_storage_buffer_binding_size: bytes, ..adapter.limits() };
    let desc = wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc))
        .map_err(|e| Error::DeviceRequest { adapter: report.label(), reason: e.to_string() })?;
    Ok(Gpu::from_device(device, queue))
}

/// Steady epoch seconds (epochs 2..N) and the final weights of one fit on `gpu`.
fn fit(gpu: &Gpu, data: &Dataset, batch: usize, epochs: usize) -> Result<(Vec<f64>, Vec<f32>), Error> {
    let options = TrainerOptions {
        batch_size: batch,
        epochs,
        validation_split: 0.0,
        backend: Backend::Devices(vec![gpu.clone()]),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let report = trainer.fit(data, None, |_| {})?;
    let secs = report.history.epochs.iter().skip(1).map(|e| e.seconds).collect();
    Ok((secs, trainer.parameters()?))
}

/// Fits alternating between the two devices, so that a change in the machine's load hits both.
const PAIRS: usize = 3;

/// Resident against streamed, per data form and batch size: [`PAIRS`] alternating fits of each.
/// Reported: the median steady epoch of each, and the median over pairs of the streamed fit's
/// median epoch over the resident fit's just before it (robust to load that drifts).
pub fn bench_stream(gpu: &Gpu, mnist: &Mnist, args: &crate::Args) -> Result<(), Error> {
    let streaming = device_with_binding(&gpu.report, STREAM_BINDING)?;
    let pixels = mnist.train.take(ROWS);
    let labels = Targets::Classes { labels: pixels.labels().to_vec(), classes: pixels.classes() };
    let values = Dataset::from_values(pixels.to_f32(), pixels.features(), labels)?;
    let epochs = args.epochs.max(3);
    for (form, data) in [("f32", &values), ("u8", &pixels)] {
        for &batch in &args.batches {
            let (mut resident, mut streamed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..PAIRS {
                let (r, a) = fit(gpu, data, batch, epochs)?;
                let (s, b) = fit(&streaming, data, batch, epochs)?;
                if a.iter().zip(&b).any(|(x, y)| x.to_bits() != y.to_bits()) {
                    return Err(Error::Config(format!(
                        "{form} b{batch}: streamed weights differ from resident"
                    )));
                }
                ratios.push(crate::median(s.clone()) / crate::median(r.clone()));
                resident.extend(r);
                streamed.extend(s);
            }
            let (r, s) = (crate::median(resident), crate::median(streamed));
            let overhead = 100.0 * (crate::median(ratios) - 1.0);
            let rep = &gpu.report;
            if args.json {
                println!(
                    "{}",
                    json!({"kernel": "stream_epoch", "adapter": rep.name, "backend": rep.backend, "form": form,
                           "rows": ROWS, "batch": batch, "binding_bytes": STREAM_BINDING,
                           "resident_seconds": r, "streamed_seconds": s, "overhead_percent": overhead})
                );
            } else {
                println!(
                    "{:<34} {:<7} stream {form} {ROWS} rows b{batch:<4} resident {r:>6.3} s/epoch, streamed ({} MiB chunks) {s:>6.3} s/epoch; pairs: {overhead:+.1} %, same bits",
                    rep.name,
                    rep.backend,
                    STREAM_BINDING >> 20
                );
            }
        }
    }
    Ok(())
}
