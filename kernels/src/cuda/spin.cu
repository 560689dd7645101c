// spin.cu: spin_ns, one thread that busy-waits `ns` nanoseconds of the GPU's global timer.
//
// The profiler's hold (cuda/device.rs, `Timer::hold`): launched first, it keeps the stream
// busy while the host queues a whole run behind it, so the steps then run back to back
// and the events between them time the GPU's work, not the host's ~4 µs per launch.
// Its one parameter is a 64-bit integer, not a float pointer: `Timer::hold` launches it
// itself rather than through `Gpu::launch`. Reads and writes no memory.

extern "C" __global__ void spin_ns(unsigned long long ns)
{
    unsigned long long start, now;
    // %globaltimer: nanoseconds, shared by every SM (PTX ISA 3.1+, sm_30+).
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
