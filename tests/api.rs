//! The public API's promises that the compiler can check: the types an application keeps
//! are `Send` (training may run on a worker thread), and errors are `Send + Sync` with
//! messages that say what to do.

use wgtrain::{CancelToken, Error, Model, Trainer, TrainerOptions};

fn assert_send<T: Send>() {}
fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn app_types_are_send() {
    assert_send::<Trainer>();
    assert_send::<Model>();
    assert_send_sync::<CancelToken>();
    assert_send_sync::<Error>();
    assert_send::<TrainerOptions>();
}

#[test]
fn a_trainer_moves_to_a_worker_thread_and_can_be_cancelled() {
    let pixels: Vec<u8> = (0..4000u32).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = pixels.chunks(4).map(|p| u8::from(p[1] > 100)).collect();
    let data = wgtrain::data::Dataset::new(pixels, labels, 4, 2).unwrap();
    let options = TrainerOptions {
        spec: wgtrain::Network::classifier(&[4, 8, 2], wgtrain::Activation::Tanh),
        batch_size: 1,
        epochs: 1000,
        backend: wgtrain::Backend::Cpu,
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options).unwrap();
    let cancel = trainer.cancel_token();
    let worker = std::thread::spawn(move || {
        let result = trainer.fit(&data, None, |_| {});
        (result.map(|r| r.epochs_run), trainer.parameters().map(|p| p.len()))
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    cancel.cancel();
    let (result, params) = worker.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "fit should end with Cancelled, got {result:?}");
    assert!(params.is_ok_and(|n| n > 0), "weights stay readable after a cancel");
}

#[test]
fn no_adapter_error_says_what_to_install() {
    let msg = Error::NoAdapter { detail: String::new() }.to_string();
    assert!(msg.contains("mesa-vulkan-drivers"), "{msg}");
}

#[test]
fn fit_can_be_awaited() {
    let pixels: Vec<u8> = (0..800u32).map(|i| (i * 53 % 256) as u8).collect();
    let labels: Vec<u8> = pixels.chunks(4).map(|p| u8::from(p[2] > 90)).collect();
    let data = wgtrain::data::Dataset::new(pixels, labels, 4, 2).unwrap();
    let options = TrainerOptions {
        spec: wgtrain::Network::classifier(&[4, 8, 2], wgtrain::Activation::Relu),
        batch_size: 20,
        epochs: 3,
        backend: wgtrain::Backend::Cpu,
        ..TrainerOptions::default()
    };
    let trainer = Trainer::new(options).unwrap();
    let (trainer, report) = pollster::block_on(trainer.fit_async(data.clone(), None, |_| {}));
    assert_eq!(report.unwrap().epochs_run, 3);
    let (_, eval) = pollster::block_on(trainer.evaluate_async(data));
    assert!(eval.unwrap().get("loss").is_some_and(f32::is_finite));
}
