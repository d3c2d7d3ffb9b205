#!/bin/bash
# Prepares benches/gpu_call.sh's one call on a lent GPU, here on the dev machine (the device has no
# Rust toolchain and no network; ../shared/GPU.md): builds the bench, the demo and the GPU test
# binaries in release mode and copies them, stripped, into .gpu/; downloads the Vulkan/GL loader
# packages into .gl/; keeps both out of git (.git/info/exclude). Prints what the call will carry,
# which must stay under the device tool's 64 MiB with the working tree.
#     bash benches/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=.git/info/exclude
mkdir -p "$(dirname $exclude)"
for d in /.gpu/ /.gl/; do grep -qxF "$d" $exclude 2>/dev/null || echo "$d" >>$exclude; done

cargo build --release --example bench --example mnist
rm -rf .gpu && mkdir -p .gpu
cp target/release/examples/bench target/release/examples/mnist .gpu/
# The test binaries that use an adapter: the library's unit tests (kernels, matmul variants,
# fusion) and the training tests (GPU against the CPU reference). Cargo prints each one's path.
for target in --lib "--test training"; do
  exe=$(cargo test --release $target --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | tail -1)
  name=${target#--}; name=${name#test }
  cp "$exe" ".gpu/test_$name"
done
strip .gpu/*

if [ ! -d .gl ] || [ -z "$(ls .gl/*.deb 2>/dev/null)" ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .gpu .gl
echo "working tree that travels: $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1) tracked, plus .gpu and .gl"
