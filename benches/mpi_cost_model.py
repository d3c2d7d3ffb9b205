#!/usr/bin/env python3
"""The step-time model of data parallel across hosts (BENCHMARKS.md, "Across processes"):
how many hosts before the gradient exchange costs more than the compute it splits.

    python3 benches/mpi_cost_model.py

Per optimizer step, with the global batch B = 128 split over N hosts of one device each:

    T(N)  = C(N) + T_stage + T_x(N)           (wgtrain does not overlap them)
    C(N)  = max(C_floor, C_128 / N)           compute of B / N rows; C_floor: launch-bound
    T_x(N) = 2 (a + (N - 1) o) + 2 (N - 1) / N * S / BW
            two rounds of direct messages: each rank sends every owner its part of the owner's
            chunk, then every owner sends its sum to all; per round a rank sends and receives
            (N - 1) / N of the S-byte gradient, and injects N - 1 messages of overhead o each
    ring all-reduce, for comparison: 2 (N - 1) a + 2 (N - 1) / N * S / BW
    T_stage = GPU hosts only: the gradient down and up over PCIe 4.0 x16 plus one sync

Speed-up is T_1 / T(N) with T_1 = C_128 (one device: no exchange, no staging). Weak scaling
keeps 128 rows per host instead (a global batch of 128 N): efficiency C_128 / (C_128 +
T_stage + T_x(N)).

Inputs are the measured step times of BENCHMARKS.md and the assumptions named below.
"""

PCIE = 25e9  # bytes/s, PCIe 4.0 x16
SYNC = 50e-6  # s, one host-device synchronisation on a discrete GPU driver

LINKS = {
    # name: (bandwidth in bytes/s, latency a in s, per-message overhead o in s)
    "10 Gb/s Ethernet (TCP)": (10e9 / 8, 20e-6, 1e-6),
    "100 Gb/s InfiniBand/RoCE (RDMA)": (100e9 / 8, 2e-6, 0.3e-6),
}

P = 50_896  # floats in the flat gradient of 784-64-10 (50,890 parameters plus alignment)

# name: (C_128 for this model in s, C_floor in s, GPU host?, C_128 for the 100x model in s)
DEVICES = {
    # 51.7 ms per 469-step epoch (validation included); its 10 launches are launch-bound, so
    # fewer rows do not make a step faster. 100x: 6 * 5.09 M params * 128 rows = 3.9 GFLOP at
    # an assumed 10 TFLOP/s of f32 through wgpu.
    "H100 (wgpu, Vulkan)": (51.7e-3 / 469, 0.10e-3, True, 6 * 100 * P * 128 / 10e12),
    # 0.196 s per epoch; the time is the products', linear in the rows.
    "this VM's CPU backend": (0.196 / 469, 0.0, False, 100 * 0.196 / 469),
    # 3.66 ms of kernel time per 128-row step.
    "lavapipe on this VM": (3.66e-3, 0.0, False, 100 * 3.66e-3),
}


def exchange(n, size, link):
    bw, a, o = link
    return 2 * (a + (n - 1) * o) + 2 * (n - 1) / n * size / bw


def ring(n, size, link):
    bw, a, _ = link
    return 2 * (n - 1) * a + 2 * (n - 1) / n * size / bw


def step(n, c128, floor, gpu, size, link):
    compute = max(floor, c128 / n)
    stage = 2 * size / PCIE + SYNC if gpu else 0.0
    return compute, stage, exchange(n, size, link)


def main():
    hosts = [2, 4, 8, 16, 32, 64]
    for scale, label in [(1, "784-64-10 (203.6 KB of gradient)"), (100, "a model 100x larger (20.4 MB)")]:
        size = 4 * P * scale
        print(f"\n## {label}")
        print("| device | link | exchange ms at N = 2 / 8 / 32 (ring) | compute ms per host at N = 2 / 8 / 32 | "
              "first N where the exchange exceeds the compute | best speed-up, N <= 64 (at N) | "
              "efficiency at N = 8, 128 rows per host |")
        print("|---|---|---|---|---|---|---|")
        for dname, (c128, floor, gpu, c128_big) in DEVICES.items():
            c = c128 if scale == 1 else c128_big
            for lname, link in LINKS.items():
                xs = " / ".join(f"{exchange(n, size, link) * 1e3:.3g}" for n in (2, 8, 32))
                rs = " / ".join(f"{ring(n, size, link) * 1e3:.3g}" for n in (2, 8, 32))
                cs = " / ".join(f"{max(floor, c / n) * 1e3:.3g}" for n in (2, 8, 32))
                cross = next((n for n in range(2, 1025) if exchange(n, size, link) > max(floor, c / n)), None)
                t1 = c  # one device, no exchange, no staging
                speed = {n: t1 / sum(step(n, c, floor, gpu, size, link)) for n in hosts}
                best = max(speed, key=speed.get)
                cross_s = f"{cross}" if cross else "> 1024"
                # Weak scaling: every host keeps 128 rows, the global batch grows with N.
                weak = c / (c + (2 * size / PCIE + SYNC if gpu else 0.0) + exchange(8, size, link))
                print(f"| {dname} | {lname} | {xs} ({rs}) | {cs} | {cross_s} | {speed[best]:.2f}x ({best}) | {weak:.2f} |")


if __name__ == "__main__":
    main()
