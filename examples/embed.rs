//! Embedding wgtrain for inference: load a saved model and classify images given on the
//! command line, as PNG files (grayscale or RGB, resized by nearest neighbour to the model's
//! input when it is a square image size) or IDX image files.
//!
//!     cargo run --release --example mnist -- --save model.safetensors
//!     cargo run --release --example embed -- model.safetensors digit.png data/mnist/t10k-images-idx3-ubyte.gz

use std::path::Path;

use wgtrain::data::read_idx_images;
use wgtrain::Model;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: embed MODEL.safetensors IMAGE.png|IMAGES.idx[.gz] ...");
        std::process::exit(2);
    }
    if let Err(e) = run(&args[0], &args[1..]) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(model_path: &str, inputs: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(model_path)?;
    let features = model.spec().inputs();
    for input in inputs {
        let (pixels, count) = if input.ends_with(".png") {
            (load_png(Path::new(input), features)?, 1)
        } else {
            let idx = read_idx_images(input)?;
            // Classify the first 10 images of an IDX file.
            let n = idx.count.min(10);
            (idx.pixels[..n * idx.rows * idx.cols].to_vec(), n)
        };
        let p = model.predict_pixels(&pixels)?;
        for i in 0..count {
            let row = &p.probabilities[i * p.classes..(i + 1) * p.classes];
            println!("{input}[{i}]: class {} (p = {:.3})", p.labels[i], row[p.labels[i]]);
        }
    }
    Ok(())
}

/// A PNG as `features` u8 pixels (grayscale; RGB averaged), nearest-neighbour resized to
/// the model's square input side.
fn load_png(path: &Path, features: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let side = (features as f64).sqrt() as usize;
    if side * side != features {
        return Err(format!("the model takes {features} inputs, not a square image").into());
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(format!("{}: only 8-bit PNGs are supported", path.display()).into());
    }
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let gray = |x: usize, y: usize| -> u8 {
        let px = &buf[(y * w + x) * channels..(y * w + x + 1) * channels];
        let colour = &px[..channels.min(3)];
        (colour.iter().map(|&c| c as u32).sum::<u32>() / colour.len() as u32) as u8
    };
    Ok((0..features).map(|i| gray((i % side) * w / side, (i / side) * h / side)).collect())
}
